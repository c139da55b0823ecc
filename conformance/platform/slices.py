"""App slices: `[[slices]] paths = [globs]` of launch.toml split the app dir into extra image layers.

Mirrors the lifecycle's `SliceLayers` (layers/slices.go, v0.21.17), which the exporter calls with
every buildpack's slices in group order (phase/exporter.go:450-491):

- n slices give n + 1 layers: slice i holds what its globs match, the last layer the rest.
- Each glob is cleaned (`filepath.Clean`) and matched with `filepath.Match` against every path
  relative to the app dir (`*` and `?` never cross a `/`); a matched directory takes its whole
  subtree; a path already taken by an earlier slice stays there (slices.go:160-181).
- A slice layer also holds the parent directories of what it took (the app dir itself included),
  and a parent whose children all went to slices is left out of the final layer (slices.go:183-228).
- A slice that matches nothing is an empty layer; so is the final layer when slices took everything.
- All app layers are listed, in order, in the label's `app` array.

`plan_slices` is pure: it takes the app dir's paths (relative, with whether each is a directory) and
returns each layer's set of paths; export.py writes the tars.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from conformance.errors import PlatformError
from conformance.platform import spec


@dataclass(frozen=True)
class AppPath:
    rel: str  # relative to the app dir; "" is the app dir itself
    is_dir: bool


def go_match_regex(pattern: str) -> re.Pattern[str]:
    """Go's `filepath.Match` pattern as a regex: `*` and `?` never match `/`, `[^...]` negates a
    class of chars and `lo-hi` ranges, `\\` escapes. A malformed pattern (an empty or unclosed
    class, an unescaped `-` or `]` in one, a trailing `\\`) raises ValueError, as Match returns
    ErrBadPattern (path/filepath/match.go `matchChunk`, `getEsc`)."""
    out, i, n = [], 0, len(pattern)

    def esc(j: int) -> tuple[str, int]:  # getEsc: one (maybe escaped) class char
        if j >= n or pattern[j] in "-]":
            raise ValueError("syntax error in pattern")
        if pattern[j] == "\\":
            j += 1
            if j >= n:
                raise ValueError("syntax error in pattern")
        return pattern[j], j + 1

    while i < n:
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "\\":
            if i + 1 >= n:
                raise ValueError("syntax error in pattern")
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif char == "[":
            i += 1
            negated = i < n and pattern[i] == "^"
            i += negated
            ranges: list[str] = []
            while True:
                if i < n and pattern[i] == "]" and ranges:
                    i += 1
                    break
                lo, i = esc(i)
                hi = lo
                if i < n and pattern[i] == "-":
                    hi, i = esc(i + 1)
                ranges.append(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}")
            out.append(f"[{'^' if negated else ''}{''.join(ranges)}]")
        else:
            out.append(re.escape(char))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def _depth(rel: str) -> int:
    return rel.count("/") + 1 if rel else 0


def _parents(rel: str) -> list[str]:
    """The app dir, then each ancestor of `rel` down to its parent (slices.go:246-257 `fileParents`)."""
    parts = rel.split("/")[:-1]
    return ["", *("/".join(parts[: i + 1]) for i in range(len(parts)))]


def plan_slices(paths: Sequence[AppPath], slices: Iterable[Sequence[str]]) -> list[frozenset[str]]:
    """Each app layer's paths: one set per slice, then the rest (see the module docstring)."""
    sliced = {p.rel: False for p in paths}
    children: dict[str, list[str]] = {}
    for p in paths:
        if p.rel:
            children.setdefault(posixpath.dirname(p.rel), []).append(p.rel)
    dirs = {p.rel for p in paths if p.is_dir}
    layers: list[frozenset[str]] = []
    for number, globs in enumerate(slices, start=1):
        matches: list[str] = []
        for glob in globs:
            try:
                regex = go_match_regex(posixpath.normpath(glob) if glob else ".")
            except ValueError:
                raise PlatformError(
                    f"exporting app layers: slice {number}: bad glob {glob!r} (syntax error in pattern)",
                    "slices[].paths are Go filepath.Match globs relative to the app dir, e.g. 'static/*'",
                    spec.ExitCode.EXPORT_ERROR,
                ) from None
            matches += [p.rel for p in paths if p.rel and regex.fullmatch(p.rel)]
        taken: set[str] = set()

        def take(rel: str, taken: set[str] = taken) -> None:
            if sliced.get(rel, True):  # outside the app dir, or in an earlier slice already
                return
            for child in children.get(rel, []) if rel in dirs else []:
                take(child)
            taken.add(rel)
            sliced[rel] = True

        for rel in matches:
            take(rel)
        files = set(taken)
        to_check: list[str] = []
        for rel in taken:
            for parent in _parents(rel):
                if parent in taken or parent in files:
                    continue
                files.add(parent)
                to_check.append(parent)
        for parent in sorted(to_check, key=_depth, reverse=True):  # children first
            sliced[parent] = all(sliced.get(child, True) for child in children.get(parent, []))
        layers.append(frozenset(files))
    layers.append(frozenset(rel for rel, done in sliced.items() if not done))
    return layers
