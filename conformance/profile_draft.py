"""`bpconform profile init`: draft a profile for a Python buildpack by building a sample app with it.

Writing a profile by hand means reading a buildpack's source for its layer names, their `[types]`,
its log wording and its launch environment. All of that is observable: build a sample app, look at
the layers the buildpack left and at the image, build it again and see what the log says about
reuse. This module does exactly that, in three separate parts:

- *inference*, pure functions over a layers tree (`scan_layer` -> `LayerTree` -> `layer_facts`) and
  over build logs (`reuse_lines`, `line_to_template`): unit-testable without Docker;
- *building*, through the platform's public API (`conformance.platform.creator.create`, as
  `bpconform build` does), with a throwaway image name and build cache;
- *writing*, a commented TOML draft: each value says how it was found and what to check by hand;
  a key that could not be inferred is written commented out with a TODO, never guessed.

The lock-file package managers (`[package-managers.*]`), `[sbom]` and the one-package-manager
rule's messages are learnt the same way in `conformance.profile_draft_managers`.

Trust: the layers tree was written by the buildpack. It is only listed (`lstat`, never following a
link, never opening a file), after the build container is gone, and a link is only resolved by
string arithmetic inside the layer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from conformance.errors import ConformanceError

EntryKind = Literal["dir", "file", "link", "other"]
MAX_ENTRIES = 300_000  # a CPython tree is ~10k entries; past this the scan stops (and says so)
MAX_DEPTH = 16
PATH_LIKE = frozenset({"PATH", "LD_LIBRARY_PATH", "LIBRARY_PATH", "CPATH", "PKG_CONFIG_PATH"})
ENV_SUFFIXES = (".override", ".default", ".prepend", ".append")
PIP_CACHE_DIRS = ("http-v2", "http", "wheels", "selfcheck")
# Words that say a layer was kept. A line of the second build that is new and has one of these is a reuse line.
REUSE_WORDS = re.compile(
    r"\b(reus\w*|cached|cache hit|keep\w*|kept|restor\w*|unchanged|up[- ]to[- ]date|skip\w*|already|valid)\b",
    re.IGNORECASE,
)
# Words that say a layer was thrown away (the invalidation lines, learnt from a changed input).
DISCARD_WORDS = re.compile(
    r"\b(discard\w*|invalidat\w*|clear\w*|remov\w*|rebuil\w*|changed|stale|outdated|mismatch\w*|differ\w*)\b",
    re.IGNORECASE,
)
_REGEX_SPECIAL = re.compile(r"([.^$*+?{}\[\]\\|()])")
_DIGITS = re.compile(r"\d+")
_HEX_DIGEST = re.compile(r"^(sha\d+:)?[0-9a-f]{32,}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_DIST_INFO = re.compile(r"(?:^|/)pip-(\d+(?:\.\d+)*)\.dist-info$")
_PIP_WHEEL = re.compile(r"(?:^|/)pip-(\d+(?:\.\d+)*)-py3-none-any\.whl$")
_PIP_PACKAGE = re.compile(r"(?:^|/)pip/__init__\.py$")
_ENSUREPIP = re.compile(r"^lib/python3\.\d+/ensurepip/")
_STDLIB = re.compile(r"^lib/python(3\.\d+)/os\.py$")
_SITE_PACKAGES = re.compile(r"^lib/python3\.\d+/site-packages/")
BUILD_STEP = "-----> "
PHASE = "===> "


# ------------------------------------------------------------------------------------------------
# Inference: a layers tree
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One path in a layer, as `lstat` saw it (a link is never followed)."""

    kind: EntryKind
    executable: bool = False
    target: str = ""  # a link's text


@dataclass(frozen=True)
class LayerTree:
    """A layer's `[types]` and `[metadata]` (from the platform) and its listing (from `scan_layer`)."""

    name: str
    types: dict[str, bool]
    metadata: dict[str, Any] = field(default_factory=dict)
    entries: dict[str, Entry] = field(default_factory=dict)  # posix path relative to the layer -> entry
    truncated: bool = False


def scan_layer(
    path: Path, name: str, types: Mapping[str, bool], metadata: Mapping[str, Any] | None = None
) -> LayerTree:
    """List a layer directory without following links (a missing directory lists as empty)."""
    entries: dict[str, Entry] = {}
    truncated = False
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return LayerTree(name, dict(types), dict(metadata or {}))
    except FileNotFoundError:
        return LayerTree(name, dict(types), dict(metadata or {}))
    pending: list[tuple[str, str, int]] = [(str(path), "", 0)]
    while pending and not truncated:
        directory, prefix, depth = pending.pop()
        try:
            listing = sorted(os.scandir(directory), key=lambda item: item.name)
        except OSError:
            continue  # unreadable: listed as an empty directory
        for item in listing:
            if len(entries) >= MAX_ENTRIES:
                truncated = True
                break
            rel = f"{prefix}{item.name}"
            try:
                info = item.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISLNK(info.st_mode):
                entries[rel] = Entry("link", target=os.readlink(item.path))
            elif stat.S_ISDIR(info.st_mode):
                entries[rel] = Entry("dir")
                if depth < MAX_DEPTH:
                    pending.append((item.path, rel + "/", depth + 1))
            elif stat.S_ISREG(info.st_mode):
                entries[rel] = Entry("file", executable=bool(info.st_mode & 0o111))
            else:
                entries[rel] = Entry("other")
    return LayerTree(name, dict(types), dict(metadata or {}), entries, truncated)


def resolve_in_layer(tree: LayerTree, rel: str, hops: int = 10) -> Entry | None:
    """What `rel` is once its links are resolved *inside the layer*; None if it is missing or leaves it.

    Resolution is string arithmetic on the listing, never a filesystem lookup: an absolute link (such
    as a venv's `bin/python3` pointing at the runtime layer) is not this layer's file.
    """
    current = PurePosixPath(rel)
    for _ in range(hops):
        entry = tree.entries.get(str(current))
        if entry is None or entry.kind != "link":
            return entry
        if entry.target.startswith("/"):
            return None
        parts: list[str] = []
        for part in (*current.parent.parts, *PurePosixPath(entry.target).parts):
            if part == "..":
                if not parts:
                    return None
                parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        current = PurePosixPath(*parts) if parts else PurePosixPath(".")
    return None


@dataclass(frozen=True)
class LayerFacts:
    """What a layer holds, as far as a profile cares, with the evidence for each fact."""

    name: str
    types: dict[str, bool]
    metadata: dict[str, Any]
    interpreter: str | None = None  # evidence, e.g. "bin/python3 (executable) + lib/python3.13/os.py"
    python_minor: str | None = None
    venv: bool = False  # a pyvenv.cfg at the layer's root
    pip: str | None = None  # evidence, e.g. "lib/python3.13/site-packages/pip-25.3.dist-info"
    pip_version: str | None = None
    pip_user_install: bool = False  # pip under lib/python3.X/site-packages of a layer with no interpreter
    pip_cache: str | None = None  # evidence, e.g. "http-v2/"
    env_build: tuple[
        str, ...
    ] = ()  # variables the layer sets at build only (env.build/, or env/ of a build-only layer)
    env_launch: tuple[str, ...] = ()  # variables it sets at launch (env/ and env.launch/ of a launch layer)
    executables: tuple[str, ...] = ()  # names in bin/ that are executable files or links (`uv`, `poetry`)
    truncated: bool = False

    @property
    def cache_only(self) -> bool:
        return self.types.get("cache", False) and not self.types.get("build") and not self.types.get("launch")


def _env_names(tree: LayerTree, directory: str) -> set[str]:
    names = set()
    prefix = directory + "/"
    for rel, entry in tree.entries.items():
        if not rel.startswith(prefix) or "/" in rel[len(prefix) :] or entry.kind != "file":
            continue
        name = rel[len(prefix) :]
        if name.endswith(".delim"):
            continue
        for suffix in ENV_SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        names.add(name)
    return names


def layer_facts(tree: LayerTree) -> LayerFacts:
    """Read a layer's listing for an interpreter, pip, a venv, a pip cache and env files."""
    minors = sorted({m.group(1) for rel in tree.entries if (m := _STDLIB.match(rel))})
    interpreter = None
    python_minor = None
    python3 = resolve_in_layer(tree, "bin/python3")
    if python3 is not None and python3.kind == "file" and python3.executable and minors:
        python_minor = minors[-1]
        how = (
            "bin/python3 (executable)"
            if tree.entries["bin/python3"].kind == "file"
            else "bin/python3 (link in the layer)"
        )
        interpreter = f"{how} + lib/python{python_minor}/os.py"
    venv = tree.entries.get("pyvenv.cfg", Entry("other")).kind == "file"

    pip = pip_version = None
    for rel in sorted(tree.entries):
        if _ENSUREPIP.match(rel):
            continue  # the wheel CPython bundles for ensurepip is not an installed pip
        if (m := _DIST_INFO.search(rel)) or (m := _PIP_WHEEL.search(rel)):
            pip, pip_version = rel, m.group(1)
            break
    if pip is None:
        pip = next((r for r in sorted(tree.entries) if _PIP_PACKAGE.search(r) and not _ENSUREPIP.match(r)), None)
    if pip is None:
        for rel in ("bin/pip", "bin/pip3"):
            found = resolve_in_layer(tree, rel) or tree.entries.get(rel)
            if found is not None and found.kind in ("file", "link"):
                pip = rel
                break
    user_install = bool(pip and _SITE_PACKAGES.match(pip) and interpreter is None and not venv)

    pip_cache = None
    for rel, entry in sorted(tree.entries.items()):
        parts = rel.split("/")
        if entry.kind == "dir" and len(parts) <= 2 and parts[-1] in PIP_CACHE_DIRS and not rel.startswith("lib/"):
            pip_cache = rel + "/"
            break

    executables = sorted(
        rel[len("bin/") :]
        for rel, entry in tree.entries.items()
        if rel.startswith("bin/")
        and "/" not in rel[len("bin/") :]
        and (entry.kind == "link" or (entry.kind == "file" and entry.executable))
    )

    launch = tree.types.get("launch", False)
    shared = _env_names(tree, "env")
    env_build = _env_names(tree, "env.build") | (set() if launch else shared)
    env_launch = (_env_names(tree, "env.launch") | shared) if launch else set()
    return LayerFacts(
        name=tree.name,
        types=dict(tree.types),
        metadata=dict(tree.metadata),
        interpreter=interpreter,
        python_minor=python_minor,
        venv=venv,
        pip=pip,
        pip_version=pip_version,
        pip_user_install=user_install,
        pip_cache=pip_cache,
        env_build=tuple(sorted(env_build)),
        env_launch=tuple(sorted(env_launch)),
        executables=tuple(executables),
        truncated=tree.truncated,
    )


@dataclass(frozen=True)
class RoleGuess:
    role: str
    layer: str
    types: dict[str, bool]
    evidence: str


@dataclass
class RoleInference:
    roles: dict[str, RoleGuess] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what to check by hand (ambiguities, gaps)


def _pick(candidates: list[LayerFacts], role: str, notes: list[str]) -> LayerFacts | None:
    if len(candidates) > 1:
        others = ", ".join(c.name for c in candidates[1:])
        notes.append(f"{role}: several candidate layers; took {candidates[0].name!r}, also possible: {others}")
    return candidates[0] if candidates else None


def infer_roles(facts: Sequence[LayerFacts]) -> RoleInference:
    """Map layers to the profile's roles, from what they hold (never from their names)."""
    result = RoleInference()
    notes = result.notes
    runtime = _pick([f for f in facts if f.interpreter and not f.venv], "runtime", notes)
    if runtime is not None:
        result.roles["runtime"] = RoleGuess("runtime", runtime.name, runtime.types, f"holds {runtime.interpreter}")
    deps = _pick([f for f in facts if f.venv], "app-deps", notes)
    if deps is not None:
        result.roles["app-deps"] = RoleGuess(
            "app-deps", deps.name, deps.types, "holds pyvenv.cfg (a virtual environment)"
        )
    taken = {guess.layer for guess in result.roles.values()}

    if runtime is not None and runtime.pip:
        notes.append(
            f"package-manager: pip is inside the runtime layer {runtime.name!r} ({runtime.pip}); a profile cannot"
            " give two roles one layer, so there is no package-manager role (test_runtime_layer_has_no_pip will fail)"
        )
    pip_layers = [f for f in facts if f.pip and f.name not in taken]
    pip_layers.sort(key=lambda f: (not f.pip_user_install, f.name))
    manager = _pick(pip_layers, "package-manager", notes)
    if manager is not None:
        how = "a user install (PYTHONUSERBASE layout)" if manager.pip_user_install else "pip"
        if not manager.pip_user_install and manager.pip and "/" in manager.pip and not manager.pip.startswith("bin/"):
            how = f"pip installed under {manager.pip.rsplit('/', 1)[0]}/"
        version = f" {manager.pip_version}" if manager.pip_version else ""
        result.roles["package-manager"] = RoleGuess(
            "package-manager", manager.name, manager.types, f"holds {how}{version}: {manager.pip}"
        )
        taken.add(manager.name)

    caches = [f for f in facts if f.name not in taken and (f.pip_cache or f.cache_only)]
    caches.sort(key=lambda f: (f.pip_cache is None, f.name))
    cache = _pick(caches, "package-cache", notes)
    if cache is not None:
        why = f"holds pip's cache ({cache.pip_cache})" if cache.pip_cache else "cache = true, not build, not launch"
        result.roles["package-cache"] = RoleGuess("package-cache", cache.name, cache.types, why)
    for role in ("runtime", "package-manager", "app-deps"):
        if role not in result.roles:
            notes.append(f"{role}: no layer found; its checks will be skipped until you add [layers.{role}]")
    if any(f.truncated for f in facts):
        notes.append(f"a layer had more than {MAX_ENTRIES} entries: its listing was cut, facts may be missing")
    return result


def required_launch_env(
    facts: Sequence[LayerFacts], launch_env: Mapping[str, str], raw_env: Mapping[str, str]
) -> list[str]:
    """Variables the buildpack gives the app's processes: set by a launch layer's env files, or added
    by the launcher (exec.d, absent without it), and present in the launch environment. Path-like variables the
    platform derives from layer dirs and the platform's own `CNB_*` are left out."""
    names = {name for f in facts for name in f.env_launch}
    names |= {name for name in launch_env if name not in raw_env}  # not HOSTNAME: each container has its own
    return sorted(n for n in names if n in launch_env and n not in PATH_LIKE and not n.startswith("CNB_"))


def forbidden_launch_env(facts: Sequence[LayerFacts], launch_env: Mapping[str, str]) -> list[str]:
    """PYTHONPATH/PYTHONHOME (they would outrank or replace the standard library) and every variable a
    layer sets at build only, when absent at launch: the image must keep them out."""
    names = {"PYTHONPATH", "PYTHONHOME"} | {name for f in facts for name in f.env_build}
    return sorted(n for n in names if n not in launch_env and n not in PATH_LIKE and not n.startswith("CNB_"))


def volatile_metadata(*metadatas: Mapping[str, Any]) -> list[str]:
    """Metadata keys whose values are digests or timestamps, or differ between the given builds."""
    found: set[str] = set()

    def walk(values: list[Any], key: str | None) -> None:
        dicts = [v for v in values if isinstance(v, dict)]
        if dicts and len(dicts) == len(values):
            for sub in sorted({k for d in dicts for k in d}):
                walk([d.get(sub) for d in dicts], sub)
            return
        if key is None:
            return
        if any(v != values[0] for v in values):
            found.add(key)
        for v in values:
            if isinstance(v, str) and (_HEX_DIGEST.match(v) or _TIMESTAMP.match(v)):
                found.add(key)

    walk(list(metadatas), None)
    return sorted(found)


def version_constraint(version: str) -> str:
    """`0.1.0` -> `>=0.1.0, <1`: this release line up to the next major; a non-numeric version is pinned."""
    match = re.fullmatch(r"(\d+)(?:\.\d+)*", version.strip())
    if not match:
        numbers = re.match(r"\d+(?:\.\d+)*", version.strip())
        return f"=={numbers.group(0)}" if numbers else ""
    return f">={version.strip()}, <{int(match.group(1)) + 1}"


def python_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


# ------------------------------------------------------------------------------------------------
# Inference: build logs
# ------------------------------------------------------------------------------------------------


def buildpack_output(log: str, buildpack_id: str, version: str) -> list[str]:
    """The lines one buildpack printed: from the platform's `-----> <id> <version>` to the next phase."""
    lines: list[str] = []
    inside = False
    for line in log.splitlines():
        if line.startswith(BUILD_STEP):
            inside = line[len(BUILD_STEP) :].strip() == f"{buildpack_id} {version}"
            continue
        if line.startswith(PHASE):
            inside = False
            continue
        if inside and line.strip():
            lines.append(line.rstrip())
    return lines


def _shape(line: str) -> str:
    return _DIGITS.sub("#", line.strip())


def new_lines(before: Iterable[str], after: Iterable[str]) -> list[str]:
    """Lines of `after` with no line of the same shape (digits aside) in `before`, in order, once each."""
    seen = {_shape(line) for line in before}
    result: list[str] = []
    for line in after:
        if _shape(line) not in seen and line.strip() not in result:
            result.append(line.strip())
    return result


def line_role(line: str, layers: Mapping[str, str], keywords: Mapping[str, tuple[str, ...]]) -> str | None:
    """Which layer role a log line is about: the layer name or role keyword (e.g. `pip`, a version) that
    comes first in the line, since a line's subject comes before its reason ("Discarding cached pip
    since: the Python version changed" is about pip). At the same position the longer word wins, so
    `pip-cache` is not `pip`; a role's words never match inside a longer name or version."""
    hits: list[tuple[int, int, str]] = []
    words = [(name, role) for name, role in layers.items()]
    words += [(word, role) for role, options in keywords.items() for word in options if word]
    for word, role in words:
        match = re.search(rf"(?<![\w.-]){re.escape(word)}(?![\w-]|\.\d)", line, re.IGNORECASE)
        if match:
            hits.append((match.start(), -len(word), role))
    return min(hits)[2] if hits else None


def _escape(text: str) -> str:
    """Regex-escape without escaping spaces (the draft stays readable); digits become `\\d+`, since
    they are versions or counts that change with the stack and runtime."""
    return _DIGITS.sub(r"\\d+", _REGEX_SPECIAL.sub(r"\\\1", text))


def line_to_template(line: str, values: Mapping[str, str]) -> str:
    """A message template matching `line`: each value becomes its `{placeholder}`, the rest literal,
    other numbers generalised, and a parenthesis after the last value (a timing, the versions this
    machine has) left out. Longer values are replaced first (`3.13.5` before `3.13`)."""
    text = line.strip()
    present = sorted(((v, k) for k, v in values.items() if v and v in text), key=lambda item: -len(item[0]))
    if not present:
        return _escape(text)
    pattern = re.compile("|".join(re.escape(v) for v, _ in present))
    names = dict(present)
    spans = [m for m in pattern.finditer(text) if _bounded(text, m.start(), m.end())]
    if spans:  # a parenthesis after the last value is detail, not wording
        tail = re.search(r"\s\(", text[spans[-1].end() :])
        if tail:
            text = text[: spans[-1].end() + tail.start()]
    out: list[str] = []
    last = 0
    for match in spans:
        out.append(_escape(text[last : match.start()]))
        out.append("{" + names[match.group(0)] + "}")
        last = match.end()
    out.append(_escape(text[last:]))
    return "".join(out)


def _bounded(text: str, start: int, end: int) -> bool:
    """A version inside a longer number (`3.13` in `3.13.5`) is not that version."""
    before = text[start - 1] if start else ""
    after = text[end : end + 2]
    return not (before.isdigit() or before == ".") and not (after[:1].isdigit() or re.match(r"\.\d", after))


@dataclass(frozen=True)
class LearntMessage:
    key: str
    template: str
    line: str  # the log line it was made from
    alternatives: tuple[str, ...] = ()  # other candidate lines, for the comment
    output: str = ""  # the buildpack's output it was learnt from (a failing app's), for checking the template


def learn_message(
    key: str,
    candidates: Sequence[str],
    role: str,
    layers: Mapping[str, str],
    keywords: Mapping[str, tuple[str, ...]],
    values: Mapping[str, str],
    words: re.Pattern[str],
    *,
    require_values: Iterable[str] = (),
) -> LearntMessage | None:
    """The candidate line about `role` that best states the decision, turned into a template.

    A line must be about `role` and hold every `require_values` value. Lines holding *all* the values
    (an invalidation line naming the old and the new version) come first, then lines with one of
    `words`: wording such as "thrown away" is not in any list, but naming both versions is telling.
    """
    about = [
        line
        for line in candidates
        if line_role(line, layers, keywords) == role
        and all(values[name] in line for name in require_values if values.get(name))
    ]
    present = [v for v in values.values() if v]

    def rank(line: str) -> tuple[int, int]:
        return (-sum(v in line for v in present), 0 if words.search(line) else 1)

    chosen = sorted((line for line in about if words.search(line) or all(v in line for v in present)), key=rank)
    if not chosen:
        return None
    template = line_to_template(chosen[0], values)
    return LearntMessage(key, template, chosen[0], tuple(chosen[1:]))


# ------------------------------------------------------------------------------------------------
# The draft: gathered facts -> commented TOML
# ------------------------------------------------------------------------------------------------


@dataclass
class Draft:
    """Everything `profile init` found, with the notes that go into the draft's comments."""

    buildpack_dir: Path
    buildpack_id: str
    buildpack_version: str
    stack: str
    app: str
    roles: RoleInference
    python_version: str | None = None  # full, from the built image
    runtime_minor: str | None = None  # from the runtime layer's lib/python3.X
    pip_version: str | None = None
    pip_other: str | None = None
    pip_source: dict[str, str] | None = None
    pip_source_note: str = ""
    python_alternative: str | None = None
    alternative_note: str = ""
    version_file: str | None = None
    messages: dict[str, LearntMessage] = field(default_factory=dict)
    message_notes: dict[str, str] = field(default_factory=dict)  # key -> why it is missing
    launch_required: list[str] = field(default_factory=list)
    launch_forbidden: list[str] = field(default_factory=list)
    volatile: list[str] = field(default_factory=list)
    other_layers: list[str] = field(default_factory=list)  # layers no role took, with their types
    apps_note: str = ""
    # [package-managers.*] and [sbom] (conformance.profile_draft_managers.ManagersDraft); None: not tried
    managers: Any = None
    managers_tried: bool = False


def _toml_string(value: str) -> str:
    """A literal string when possible (backslashes reach the regex unchanged), else a basic one."""
    if "'" not in value and "\n" not in value and not any(ord(c) < 32 for c in value):
        return f"'{value}'"
    return json.dumps(value)  # a JSON string of printable text is a valid TOML basic string


def _comment(text: str, prefix: str = "# ") -> list[str]:
    return [f"{prefix}{line}".rstrip() for line in text.splitlines()]


def _flags(types: Mapping[str, bool]) -> str:
    return ", ".join(name for name in ("build", "launch", "cache") if types.get(name)) or "no types"


MESSAGE_HELP: dict[str, str] = {
    "runtime-reused": "a rebuild with no change reuses the runtime layer",
    "package-manager-reused": "a rebuild with no change reuses the package-manager layer",
    "runtime-invalidated": "a change of the app's Python version discards the runtime layer",
    "package-manager-invalidated": "a change of the buildpack's pip version discards the package-manager layer",
    "detect-fail": "detection fails on a non-Python app",
    "invalid-version": "the build fails on an unsupported Python version",
    "missing-dependency": "the build fails on a requirement that does not exist",
    "two-package-managers": "the build fails on an app with files of two package managers",
    "requires-python-mismatch": "the build fails on a .python-version outside requires-python",
    "refused-variables": "the build fails on a user variable such as PIP_TARGET, naming it ({variable})",
}
# The one-package-manager rule's messages, learnt from the suite's failing apps by
# `profile_draft_managers.learn_failing_apps` (with the `[package-managers.<name>]` tables and `[sbom]`).
RULE_MESSAGES: tuple[str, ...] = ("two-package-managers", "requires-python-mismatch", "refused-variables")


def render_draft(draft: Draft) -> str:
    """The draft profile: values with how they were found; unknowns commented out with a TODO."""
    out: list[str] = []
    add = out.append
    add(f"# Draft profile for {draft.buildpack_id} {draft.buildpack_version}, written by `bpconform profile init`")
    add(f"# from builds of the sample app {draft.app!r} on stack {draft.stack} with {draft.buildpack_dir}.")
    add("# Every value below was observed; each comment says how and what to check by hand. Keys that could")
    add("# not be observed are commented out with a TODO: until you fill them in, the checks needing them are")
    add("# skipped with a reason naming this profile. Schema: `bpconform docs profiles`;")
    add("# this command: `bpconform docs profile-init`.")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", draft.buildpack_id).strip("-")
    add(f"name = {_toml_string(slug + '-draft')}")
    add(f"description = {_toml_string(f'{draft.buildpack_id}: drafted by bpconform profile init')}")
    add("")
    add("[buildpack]")
    add("# From buildpack.toml [buildpack] id and version.")
    add(f"id = {_toml_string(draft.buildpack_id)}")
    constraint = version_constraint(draft.buildpack_version)
    if constraint:
        add(f"# The built version was {draft.buildpack_version}; this accepts its release line up to the next")
        add('# major. Tighten it (e.g. "==X") to pin the profile to one release.')
        add(f"version = {_toml_string(constraint)}")
    else:
        add(f"# TODO: version {draft.buildpack_version!r} is not numeric; write a constraint by hand.")
        add('# version = ">=0.1, <1"')
    _render_layers(draft, add)
    _render_python(draft, add)
    _render_pip(draft, add)
    _render_messages(draft, add)
    from conformance.profile_draft_managers import ManagersDraft, render_managers

    render_managers(draft.managers or ManagersDraft(), add, learnt=draft.managers_tried)
    add("")
    add("[launch-env]")
    add("# required: variables a launch layer's env files set (env/, env.launch/) or the launcher adds, seen in")
    add("# `env` run through the image's launcher. Path-like ones are checked by the PATH checks instead.")
    add(f"required = {_toml_list(draft.launch_required)}")
    add("# forbidden: PYTHONPATH/PYTHONHOME, and every variable a layer sets for the build only (env.build/ or")
    add("# env/ of a non-launch layer) that is indeed absent at launch. Check that none of them is meant to leak.")
    add(f"forbidden = {_toml_list(draft.launch_forbidden)}")
    add("")
    add("[snapshot]")
    add("# Layer metadata keys whose values are digests or timestamps or changed between the two builds.")
    add(f"volatile-metadata = {_toml_list(draft.volatile)}")
    add("normalise-patch-versions = true")
    add("")
    add("# [apps]: the sample apps per purpose default to the packaged testapps/ (`bpconform docs profiles`).")
    if draft.apps_note:
        out.extend(_comment(draft.apps_note))
    return "\n".join(out) + "\n"


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_toml_string(v) for v in values) + "]"


def _render_layers(draft: Draft, add: Callable[[str], None]) -> None:
    add("")
    add("# Layer roles, found from what each layer holds (not from its name); [types] from <layer>.toml.")
    for role in ("runtime", "package-manager", "package-cache", "app-deps"):
        guess = draft.roles.roles.get(role)
        add("")
        if guess is None:
            add(f"# TODO: no {role} layer found (see the notes below); add it by hand if the buildpack has one.")
            add(f"# [layers.{role}]")
            add('# name = "..."')
            continue
        add(f"# {guess.layer}: {guess.evidence}; [types] {_flags(guess.types)}.")
        add(f"[layers.{role}]")
        add(f"name = {_toml_string(guess.layer)}")
        for flag in ("build", "launch", "cache"):
            add(f"{flag} = {'true' if guess.types.get(flag) else 'false'}")
    notes = list(draft.roles.notes)
    if draft.other_layers:
        notes.append("layers no role took (not checked by role): " + ", ".join(draft.other_layers))
    if notes:
        add("")
        for note in notes:
            add(f"# NOTE {note}")


def _render_python(draft: Draft, add: Callable[[str], None]) -> None:
    add("")
    add("[python]")
    if draft.python_version:
        add(
            f"# `python` in the built image reported {draft.python_version}",
        )
        if draft.runtime_minor and draft.runtime_minor != python_minor(draft.python_version):
            add(f"# NOTE the runtime layer holds lib/python{draft.runtime_minor}: check which Python the app gets.")
        add(f"default = {_toml_string(python_minor(draft.python_version))}")
    else:
        add("# TODO: `python` did not run in the built image; write the default version line by hand.")
        add('default = "3.13"  # TODO: not observed')
    if draft.python_alternative:
        add(f"# {draft.alternative_note}")
        add(f"alternative = {_toml_string(draft.python_alternative)}")
    else:
        add(f"# TODO: {draft.alternative_note or 'no other Python version was tried'}")
        add('# alternative = "3.11"')
    if draft.version_file:
        add("# The alternative build chose its version from this file.")
        add(f"version-file = {_toml_string(draft.version_file)}")
    else:
        add("# TODO: not verified which file selects the version (the suite's default is .python-version).")
        add('# version-file = ".python-version"')


def _render_pip(draft: Draft, add: Callable[[str], None]) -> None:
    add("")
    add("[pip]")
    if draft.pip_version:
        add("# The version of the pip distribution found in the package-manager layer.")
        add(f"current = {_toml_string(draft.pip_version)}")
    else:
        add("# TODO: no pip version found in the layers.")
        add('# current = "25.3"')
    if draft.pip_other and draft.pip_source:
        add(f"# {draft.pip_source_note}")
        add(f"other = {_toml_string(draft.pip_other)}")
        source = ", ".join(f"{k} = {_toml_string(v)}" for k, v in draft.pip_source.items())
        add(f"version-source = {{ {source} }}")
    else:
        add(f"# TODO: {draft.pip_source_note or 'the pip version bump was not tried'}")
        add("# Without other + version-source the pip bump check is skipped. Either name them:")
        add('# other = "25.2"')
        add('# version-source = { file = "buildpack.toml", toml-key = "metadata.pip-version" }')
        add("# or say why the version cannot be changed from outside:")
        add('# version-source = { unsupported = "pip is pinned in the buildpack\'s source" }')


def _render_messages(draft: Draft, add: Callable[[str], None]) -> None:
    add("")
    add("[messages]")
    add("# Regexes searched in the build output, each made from one line the buildpack printed: literal text,")
    add("# other numbers as \\d+, the values the suite fills as {placeholders}. Check that each names the reason.")
    for key in (
        "runtime-reused",
        "package-manager-reused",
        "runtime-invalidated",
        "package-manager-invalidated",
        "detect-fail",
        "invalid-version",
        "missing-dependency",
        *RULE_MESSAGES,
    ):
        learnt = draft.messages.get(key)
        add("")
        if learnt is None:
            note = draft.message_notes.get(key, "not observed")
            add(f"# TODO {key} ({MESSAGE_HELP[key]}): {note}")
            add(f"# {key} = '...'")
            continue
        add(f"# {MESSAGE_HELP[key]}; from the line: {learnt.line}")
        for other in learnt.alternatives[:3]:
            add(f"#   other candidate line: {other}")
        add(f"{key} = {_toml_string(learnt.template)}")


# ------------------------------------------------------------------------------------------------
# pip's version source: where in the buildpack's TOML files the installed pip version is written
# ------------------------------------------------------------------------------------------------


def find_version_keys(data: Mapping[str, Any], version: str, prefix: str = "") -> list[str]:
    """Dotted keys of `data` whose string value is exactly `version`."""
    found: list[str] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            found += find_version_keys(value, version, dotted + ".")
        elif isinstance(value, str) and value.strip() == version:
            found.append(dotted)
    return found


def version_sources(buildpack_dir: Path, version: str) -> list[dict[str, str]]:
    """Every (TOML file, key) in the buildpack (top two levels) holding exactly `version`."""
    from conformance.tomlcompat import load_toml

    sources = []
    files = sorted({*buildpack_dir.glob("*.toml"), *buildpack_dir.glob("*/*.toml")})
    for path in files:
        if path.is_symlink() or not path.is_file():
            continue
        try:
            data = load_toml(path)
        except ConformanceError:
            continue
        for key in find_version_keys(data, version):
            sources.append({"file": path.relative_to(buildpack_dir).as_posix(), "toml-key": key})
    return sources


def set_toml_key(path: Path, dotted: str, value: str) -> None:
    from conformance.tomlcompat import dump_toml, load_toml

    data = load_toml(path)
    table: Any = data
    keys = dotted.split(".")
    for key in keys[:-1]:
        table = table[key]
    table[keys[-1]] = value
    dump_toml(data, path)


def wheel_versions(wheelhouse: Path | None, distribution: str) -> list[str]:
    """Versions of `distribution` the offline wheelhouse holds, newest first."""
    if wheelhouse is None or not wheelhouse.is_dir():
        return []
    pattern = re.compile(rf"^{re.escape(distribution)}-(\d+(?:\.\d+)*)-")
    versions = {m.group(1) for p in wheelhouse.iterdir() if (m := pattern.match(p.name))}
    return sorted(versions, key=lambda v: tuple(int(x) for x in v.split(".")), reverse=True)


@dataclass(frozen=True)
class VersionBump:
    """Where a tool's version is written in the buildpack, and another version the wheelhouse holds."""

    file: str
    toml_key: str
    other: str

    @property
    def source(self) -> dict[str, str]:
        """As the profile's `version-source` table writes it."""
        return {"file": self.file, "toml-key": self.toml_key}


def plan_version_bump(
    tool: str, current: str, buildpack_dir: Path, wheelhouse: Path | None, *, online: bool
) -> VersionBump | str:
    """The one TOML key holding `tool`'s version and an alternative to try, or why there is none (the
    note the draft writes instead of the keys it could not learn)."""
    sources = version_sources(buildpack_dir, current)
    if len(sources) != 1:
        where = ", ".join(f"{s['file']}:{s['toml-key']}" for s in sources) or "none"
        return (
            f"{tool} {current} is written in {len(sources)} TOML keys of the buildpack ({where}), not exactly one;"
            " if it is pinned in source code, say so with version-source.unsupported"
        )
    [source] = sources
    others = [v for v in wheel_versions(wheelhouse, tool) if v != current]
    if online or not others:
        return (
            f"{tool} {current} is set in {source['file']} {source['toml-key']}, but no other {tool} version is in"
            " the offline wheelhouse to try"
        )
    return VersionBump(source["file"], source["toml-key"], others[0])


def bumped_buildpack(buildpack_dir: Path, scratch: Path, tool: str, bump: VersionBump) -> Path:
    """A copy of the buildpack (under `scratch`) with `tool`'s version set to `bump.other`."""
    bumped = _copy_tree(buildpack_dir, scratch / f"{tool}-{bump.other}")
    set_toml_key(bumped / bump.file, bump.toml_key, bump.other)
    return bumped


# ------------------------------------------------------------------------------------------------
# Building: the platform's public API, a throwaway image and cache
# ------------------------------------------------------------------------------------------------


@dataclass
class Observed:
    """One build as `profile init` saw it."""

    ok: bool
    output: str
    layers: list[LayerFacts] = field(default_factory=list)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)  # layer -> [metadata]
    python_version: str | None = None
    launch_env: dict[str, str] = field(default_factory=dict)
    raw_env: dict[str, str] = field(default_factory=dict)
    exit_code: int = 0
    message: str = ""
    observer: dict[str, Any] | None = None  # the observer buildpack's record (`observe=True`), when it is sound


# The observer buildpack (conformance/draft_observer) and where its record is in the image.
OBSERVER_DIR = Path(__file__).parent / "draft_observer"
OBSERVER_RECORD = "/layers/bpconform_draft-observer/record/record.json"


class Builder:
    """Builds apps with one buildpack into one image name with its own build cache, like successive
    `bpconform build` runs; everything it made is removed by `close`."""

    def __init__(
        self, buildpack: Path, stack_name: str, *, online: bool, ca_bundle: Path | None, say: Callable[[str], None]
    ) -> None:
        from conformance import access, runtimes, stacks
        from conformance.platform.buildpack import load_buildpack
        from conformance.platform.cache import BuildCache

        self.say = say
        self.descriptor = load_buildpack(buildpack.resolve())
        self.stack = stacks.ensure_stack(stack_name, on_output=say)
        self.runtimes_dir = runtimes.runtimes_dir()
        self.work = Path(tempfile.mkdtemp(prefix="bpconform-profile-init-"))
        self.cache = BuildCache(self.work / "cache")
        self.image = f"bpconform-profile-init/{uuid.uuid4().hex[:12]}:latest"
        self.online = online
        self.ca_bundle = ca_bundle
        self.wheelhouse: Path | None = None
        self._access_module: Any = access
        self._access: Any = None

    def access(self, app: Path):  # -> PackageAccess
        """Package access, made once from the sample app's requirements and shared by every later build:
        a failing app (a requirement that does not exist) must fail in the build, not in the download."""
        if self._access is None:
            access = self._access_module
            if self.online:
                self._access = access.online(self.ca_bundle)
            else:
                requirements = [app / "requirements.txt"] if (app / "requirements.txt").is_file() else []
                self.wheelhouse = access.ensure_sample_wheelhouse(requirements, on_output=self.say)
                self._access = access.offline(self.wheelhouse)
        return self._access

    def build(
        self,
        app: Path,
        buildpack: Path | None = None,
        *,
        inspect: bool = True,
        observe: bool = False,
        user_env: Mapping[str, str] | None = None,
    ) -> Observed:
        """One build into the draft's image and cache. `observe` adds the observer buildpack after the
        buildpack under test (what a later buildpack sees); `user_env` goes to `<platform>/env`."""
        from conformance.errors import PlatformError
        from conformance.image import AppImage
        from conformance.platform.creator import create
        from conformance.platform_inputs import stack_build_request

        seen: dict[str, LayerTree] = {}
        escaped = self.descriptor.id.replace("/", "_")

        def inspect_layers(layers_root: Path) -> None:
            root = layers_root / escaped
            if root.is_symlink() or not root.is_dir():  # the buildpack replaced its own layers dir: list nothing
                return
            for toml_path in sorted(root.glob("*.toml")):
                name = toml_path.stem
                if name not in ("launch", "build", "store"):
                    seen[name] = scan_layer(root / name, name, {})

        request = stack_build_request(
            image=self.image,
            app_dir=app,
            buildpacks=[buildpack or self.descriptor.path, *([OBSERVER_DIR] if observe else [])],
            stack=self.stack,
            access=self.access(app),
            user_env=dict(user_env or {}),
            runtimes_dir=self.runtimes_dir,
            cache=self.cache,
            on_output=lambda text: None,
            inspect_layers=inspect_layers,
        )
        try:
            result = create(request)
        except PlatformError as exc:
            return Observed(False, exc.build_output, exit_code=exc.exit_code, message=exc.message)
        observed = Observed(True, result.output)
        for report in result.layers:
            if report.buildpack_id != self.descriptor.id:
                continue
            tree = seen.get(report.name, LayerTree(report.name, {}))
            tree = LayerTree(report.name, dict(report.types), dict(report.metadata), tree.entries, tree.truncated)
            observed.layers.append(layer_facts(tree))
            observed.metadata[report.name] = dict(report.metadata)
        if observe:
            observed.observer = read_observer_record(AppImage.load(self.image).read_file(OBSERVER_RECORD))
        if inspect:
            image = AppImage.load(self.image)
            run = image.run(["python", "-c", "import platform; print(platform.python_version())"])
            lines = run.stdout.strip().splitlines()
            if run.exit_code == 0 and lines and re.fullmatch(r"3\.\d+\.\d+\S*", lines[-1].strip()):
                observed.python_version = lines[-1].strip()
            observed.launch_env = image.launch_env()
            raw = image.run(["env", "-0"], via_launcher=False)
            observed.raw_env = dict(item.split("=", 1) for item in raw.stdout.split("\0") if "=" in item)
        return observed

    def image_json(self, code: str, *args: str) -> dict[str, Any] | None:
        """Run `python -c code args` at launch in the image just built; its last stdout line as a JSON
        object, or None when it did not run (the caller says what could not be observed)."""
        from conformance.image import AppImage

        result = AppImage.load(self.image).run(["python", "-c", code, *args])
        lines = result.stdout.strip().splitlines()
        if result.exit_code != 0 or not lines:
            return None
        try:
            value = json.loads(lines[-1])
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def scratch(self, name: str) -> Path:
        path = self.work / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self) -> None:
        from conformance.engine import ensure_engine

        with contextlib.suppress(Exception):  # never built, or already gone
            ensure_engine().images.remove(self.image, force=True)
        shutil.rmtree(self.work, ignore_errors=True)


def read_observer_record(text: str | None) -> dict[str, Any] | None:
    """The observer's record if it is complete and of the expected shape, else None (not observed)."""
    if text is None:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("format") != 1 or record.get("complete") is not True:
        return None
    if not isinstance(record.get("env"), dict) or not isinstance(record.get("tools"), dict):
        return None
    return record


def _copy_tree(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, symlinks=True)
    return dest


def _roles_layers(roles: RoleInference) -> dict[str, str]:
    return {guess.layer: guess.role for guess in roles.roles.values()}


def _keywords(draft: Draft) -> dict[str, tuple[str, ...]]:
    pip = ("pip", draft.pip_version or "")
    python = ("python", "cpython", "interpreter", draft.python_version or "")
    return {"package-manager": pip, "runtime": python}


def draft_profile(
    buildpack: Path,
    app: Path,
    *,
    stack: str = "bookworm",
    online: bool = False,
    ca_bundle: Path | None = None,
    learn: bool = True,
    apps_dir: Path | None = None,
    package_managers: bool = True,
    say: Callable[[str], None] = lambda text: None,
) -> Draft:
    """Build `app` twice (and, with `learn`, the version changes and failing apps, and with
    `package_managers` too the uv and Poetry apps) and infer a Draft."""
    if not (buildpack / "buildpack.toml").is_file():
        raise ConformanceError(
            f"{buildpack} is not a buildpack directory (no buildpack.toml)",
            "pass the directory that holds buildpack.toml and bin/",
        )
    if not app.is_dir():
        raise ConformanceError(f"sample app {app} is not a directory", "pass --app DIR, an app the buildpack builds")
    builder = Builder(buildpack, stack, online=online, ca_bundle=ca_bundle, say=say)
    try:
        return _draft_with(
            builder, app, stack, learn=learn, apps_dir=apps_dir, package_managers=package_managers, say=say
        )
    finally:
        builder.close()


def _draft_with(
    builder: Builder,
    app: Path,
    stack: str,
    *,
    learn: bool,
    apps_dir: Path | None,
    package_managers: bool = True,
    say: Callable[[str], None],
) -> Draft:
    bp = builder.descriptor
    say(f"profile init: building {app.name} with {bp.id} {bp.version} on {stack}")
    first = builder.build(app)
    if not first.ok:
        raise ConformanceError(
            f"the sample app {app} did not build with {bp.id}: {first.message}\n{first.output[-3000:]}",
            "profile init needs an app the buildpack builds; pass --app DIR",
        )
    say("profile init: rebuilding to learn the reuse lines")
    second = builder.build(app)
    if not second.ok:
        raise ConformanceError(
            f"the rebuild of {app} with {bp.id} failed: {second.message}\n{second.output[-3000:]}",
            "a buildpack must rebuild an unchanged app; fix the buildpack, then run profile init again",
        )
    roles = infer_roles(first.layers)
    facts = {f.name: f for f in first.layers}
    manager = roles.roles.get("package-manager")
    runtime = roles.roles.get("runtime")
    draft = Draft(
        buildpack_dir=bp.path,
        buildpack_id=bp.id,
        buildpack_version=bp.version,
        stack=stack,
        app=app.name,
        roles=roles,
        python_version=second.python_version,
        runtime_minor=facts[runtime.layer].python_minor if runtime else None,
        pip_version=facts[manager.layer].pip_version if manager else None,
    )
    draft.other_layers = [f"{f.name} ({_flags(f.types)})" for f in first.layers if f.name not in _roles_layers(roles)]
    draft.launch_required = required_launch_env(second.layers, second.launch_env, second.raw_env)
    draft.launch_forbidden = forbidden_launch_env(second.layers, second.launch_env)
    draft.volatile = volatile_metadata(first.metadata, second.metadata)
    if learn and package_managers and "app-deps" in roles.roles:
        from conformance.profile_draft_managers import ManagersDraft, image_facts, sbom_files

        draft.managers = ManagersDraft()  # the pip app's venv, looked at before the next build replaces the image
        venv = roles.roles["app-deps"].layer
        draft.managers.sbom_listings[f"venv of the pip app {app.name}"] = sbom_files(image_facts(builder, "pip"), venv)

    layers, keywords = _roles_layers(roles), _keywords(draft)
    before = buildpack_output(first.output, bp.id, bp.version)
    after = buildpack_output(second.output, bp.id, bp.version)
    fresh = new_lines(before, after)
    for key, role, value in (
        ("runtime-reused", "runtime", draft.python_version),
        ("package-manager-reused", "package-manager", draft.pip_version),
    ):
        if role not in roles.roles:
            draft.message_notes[key] = f"there is no {role} layer"
            continue
        learnt = learn_message(key, fresh, role, layers, keywords, {"version": value or ""}, REUSE_WORDS)
        if learnt is None:
            draft.message_notes[key] = "no line new in the rebuild says that layer was reused"
        else:
            draft.messages[key] = learnt
    if learn:
        # pip first: its baseline is the rebuild's cache (default Python, current pip), so the only change is pip's
        _learn_pip_change(builder, app, draft, after, layers, keywords, say)
        _learn_python_change(builder, app, draft, after, layers, keywords, say)
        _learn_failures(builder, draft, apps_dir or _default_apps_dir(), say)
        from conformance.profile_draft_managers import learn_failing_apps, learn_managers

        learn_failing_apps(builder, draft, apps_dir or _default_apps_dir(), say)
        if package_managers:
            learn_managers(builder, draft, apps_dir or _default_apps_dir(), say)
            draft.managers_tried = True
    else:
        for key in (
            "runtime-invalidated",
            "package-manager-invalidated",
            "detect-fail",
            "invalid-version",
            "missing-dependency",
            *RULE_MESSAGES,
        ):
            draft.message_notes[key] = "not tried (--no-learn)"
        draft.alternative_note = "not tried (--no-learn)"
        draft.pip_source_note = "not tried (--no-learn)"
    return draft


def _default_apps_dir() -> Path:
    from conformance.profile import DEFAULT_APPS_DIR

    return DEFAULT_APPS_DIR


def _learn_python_change(
    builder: Builder,
    app: Path,
    draft: Draft,
    baseline: list[str],
    layers: Mapping[str, str],
    keywords: Mapping[str, tuple[str, ...]],
    say: Callable[[str], None],
) -> None:
    """Rebuild with another Python version in `.python-version`: learns the alternative and the
    runtime invalidation line (`{old}` = the default's full version, `{new}` = the alternative's)."""
    from conformance import runtimes

    key = "runtime-invalidated"
    if draft.python_version is None or "runtime" not in draft.roles.roles:
        draft.alternative_note = "the default Python version or the runtime layer is unknown"
        draft.message_notes[key] = draft.alternative_note
        return
    default = python_minor(draft.python_version)
    try:  # the runtimes this machine has for the stack (what the embedded platform mounts), newest first
        have = [a.version for a in runtimes.read_manifest() if a.stack == draft.stack]
    except (OSError, ConformanceError):
        have = []
    have = sorted(set(have or runtimes.DEFAULT_VERSIONS), key=lambda v: tuple(map(int, re.findall(r"\d+", v))))
    candidates = [v for v in reversed(have) if python_minor(v) != default]
    if not candidates:
        draft.alternative_note = f"no runtime other than {default} is set up on this machine"
        draft.message_notes[key] = draft.alternative_note
        return
    alternative = python_minor(candidates[0])
    version_file = ".python-version"
    changed = _copy_tree(app, builder.scratch("apps") / f"{app.name}-{alternative}")
    (changed / version_file).write_text(alternative + "\n")
    say(f"profile init: rebuilding with {version_file} = {alternative} to learn the runtime invalidation line")
    observed = builder.build(changed)
    if not observed.ok:
        draft.alternative_note = f"a build with {version_file} = {alternative} failed: {observed.message}"
        draft.message_notes[key] = draft.alternative_note
        return
    if observed.python_version is None or python_minor(observed.python_version) != alternative:
        draft.alternative_note = (
            f"with {version_file} = {alternative} the image ran Python {observed.python_version}: the buildpack reads"
            " its version elsewhere; set version-file and alternative by hand"
        )
        draft.message_notes[key] = draft.alternative_note
        return
    draft.python_alternative = alternative
    draft.version_file = version_file
    draft.alternative_note = f"{version_file} = {alternative} built Python {observed.python_version}"
    fresh = new_lines(baseline, buildpack_output(observed.output, draft.buildpack_id, draft.buildpack_version))
    values = {"old": draft.python_version, "new": observed.python_version}
    learnt = learn_message(key, fresh, "runtime", layers, keywords, values, DISCARD_WORDS, require_values=("new",))
    if learnt is None:
        draft.message_notes[key] = "no new line of that build says the runtime layer was discarded"
    else:
        draft.messages[key] = learnt


def _learn_pip_change(
    builder: Builder,
    app: Path,
    draft: Draft,
    baseline: list[str],
    layers: Mapping[str, str],
    keywords: Mapping[str, tuple[str, ...]],
    say: Callable[[str], None],
) -> None:
    """Rebuild with a copy of the buildpack whose pip version is another one the wheelhouse holds:
    learns version-source, other and the package-manager invalidation line."""
    key = "package-manager-invalidated"
    current = draft.pip_version
    if current is None or "package-manager" not in draft.roles.roles:
        draft.pip_source_note = "no package-manager layer with a pip version was found"
        draft.message_notes[key] = draft.pip_source_note
        return
    bump = plan_version_bump("pip", current, draft.buildpack_dir, builder.wheelhouse, online=builder.online)
    if isinstance(bump, str):
        draft.pip_source_note = bump
        draft.message_notes[key] = bump
        return
    other = bump.other
    bumped = bumped_buildpack(draft.buildpack_dir, builder.scratch("buildpacks"), "pip", bump)
    say(f"profile init: rebuilding with pip {other} ({bump.file} {bump.toml_key})")
    observed = builder.build(app, bumped, inspect=False)
    if not observed.ok:
        draft.pip_source_note = f"a build with pip {other} failed: {observed.message}"
        draft.message_notes[key] = draft.pip_source_note
        return
    bumped_facts = {f.name: f for f in observed.layers}
    manager = draft.roles.roles["package-manager"].layer
    got = bumped_facts.get(manager).pip_version if manager in bumped_facts else None
    if got != other:
        draft.pip_source_note = f"setting {bump.toml_key} = {other} in {bump.file} installed pip {got}, not {other}"
        draft.message_notes[key] = draft.pip_source_note
        return
    draft.pip_other, draft.pip_source = other, bump.source
    draft.pip_source_note = (
        f"pip {current} is written in {bump.file} {bump.toml_key}; a copy with {other} there installed pip {other}"
    )
    fresh = new_lines(baseline, buildpack_output(observed.output, draft.buildpack_id, draft.buildpack_version))
    values = {"old": current, "new": other}
    learnt = learn_message(
        key, fresh, "package-manager", layers, keywords, values, DISCARD_WORDS, require_values=("new",)
    )
    if learnt is None:
        draft.message_notes[key] = "no new line of that build says the package-manager layer was discarded"
    else:
        draft.messages[key] = learnt


def _learn_failures(builder: Builder, draft: Draft, apps_dir: Path, say: Callable[[str], None]) -> None:
    """Build the suite's failing sample apps and take the buildpack's own explanation from each."""
    from conformance.profile import DEFAULT_APPS

    scenarios = (
        ("detect-fail", "not-python"),
        ("invalid-version", "invalid-version"),
        ("missing-dependency", "missing-dependency"),
    )
    for key, purpose in scenarios:
        app = apps_dir / DEFAULT_APPS[purpose]
        if not app.is_dir():
            draft.message_notes[key] = f"the sample app {app} does not exist"
            continue
        say(f"profile init: building {app.name} to learn the {key} message")
        observed = builder.build(_copy_tree(app, builder.scratch("apps") / f"fail-{app.name}"), inspect=False)
        if observed.ok:
            draft.message_notes[key] = f"the sample app {app.name} built successfully instead of failing"
            continue
        learnt = _failure_message(key, app, draft, observed)
        if isinstance(learnt, str):
            draft.message_notes[key] = learnt
        else:
            draft.messages[key] = learnt


def _failure_message(key: str, app: Path, draft: Draft, observed: Observed) -> LearntMessage | str:
    """The line of a failed build that carries the buildpack's explanation, or why there is none."""
    if key == "detect-fail":
        if observed.exit_code != 20:
            return f"expected detection to fail (exit 20), the build exited {observed.exit_code}: {observed.message}"
        # the platform quotes each buildpack's detect output as "    | <line>" in its failure message
        said = [ln.split("| ", 1)[1].strip() for ln in observed.message.splitlines() if ln.startswith("    | ")]
        said = [ln for ln in said if ln]
        if not said:
            return "detection failed but the buildpack's bin/detect printed nothing to match"
        return LearntMessage(key, _escape_tail(said[0]), said[0], tuple(said[1:]))
    lines = buildpack_output(observed.output, draft.buildpack_id, draft.buildpack_version)
    if key == "invalid-version":
        value = (app / ".python-version").read_text().strip()
        quoting = [ln for ln in lines if value in ln]
        if not quoting:
            return f"no line of the failed build quotes the invalid version {value!r}"
        chosen = next((ln for ln in quoting if ".python-version" in ln), quoting[0])
        template = line_to_template(chosen, {"value": value, "file": ".python-version"})
        if "{file}" not in template:
            template = f"(?s)(?=.*{{file}})(?=.*{template})"
        return LearntMessage(key, template, chosen)
    # missing-dependency: the buildpack's own words, not pip's ("ERROR: ..." lines and their context)
    own = [
        ln.strip()
        for ln in lines
        if not re.match(
            r"\s*(ERROR|WARNING|DEPRECATION|Looking in|Collecting|Processing|Requirement|Using|Installing collected)\b",
            ln,
        )
        and not ln.startswith((" ", "\t"))
        and re.search(r"depend|requirement|install|package", ln, re.IGNORECASE)
        and re.search(r"fail|could not|cannot|can't|error|unable", ln, re.IGNORECASE)
    ]
    if not own:
        return "no line of the failed build, other than pip's own, explains the failure"
    return LearntMessage(key, _escape(own[0]), own[0], tuple(own[1:]))


def _escape_tail(line: str) -> str:
    """A detect line often goes on with a path and a list of files (`No Python app detected in
    /workspace: looked for ...`): keep the words before the first absolute path."""
    match = re.search(r"(?<=\s)/", line)
    return _escape(line[: match.start()] if match else line)


# ------------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------------


def _default_app() -> Path:
    return _default_apps_dir() / "minimal"


def cmd_profile_init(args: argparse.Namespace) -> int:
    """Draft a profile and write it (to --output, else stdout); check that it loads."""
    from conformance.profile import load_profile

    say = (lambda text: print(text, file=sys.stderr, flush=True)) if not args.quiet else (lambda text: None)
    app = args.app or _default_app()
    output: Path | None = args.output
    if output is not None and output.exists() and not args.force:
        raise ConformanceError(f"{output} exists", "pass --force to overwrite it, or another --output")
    draft = draft_profile(
        args.buildpack,
        app,
        stack=args.stack,
        online=args.online,
        ca_bundle=args.ca_bundle,
        learn=not args.no_learn,
        say=say,
    )
    if args.app is not None and args.app.resolve() != _default_app().resolve():
        draft.apps_note = (
            f"TODO: the draft was learnt from {args.app}; the suite's default app is still testapps/minimal unless"
            " you set apps-dir and [apps] default."
        )
    text = render_draft(draft)
    with tempfile.TemporaryDirectory(prefix="bpconform-draft-") as tmp:
        check = Path(tmp) / "draft.toml"
        check.write_text(text)
        load_profile(check)  # a draft that does not load is a bug here, not the user's to fix
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        say(f"profile init: wrote {output}; read its TODO and NOTE comments, then run bpconform run --profile {output}")
    return 0


def add_profile_command(subparsers: argparse._SubParsersAction) -> None:
    """`bpconform profile init`: registered by conformance.cli.build_parser."""
    profile = subparsers.add_parser("profile", help="profiles").add_subparsers(dest="profile_command", required=True)
    init = profile.add_parser(
        "init",
        help="draft a profile for a buildpack by building a sample app with it",
        description="Build a sample app with the buildpack (twice, plus learning builds: version changes, failing apps,"
        " the uv and Poetry apps), infer its layer roles, versions, launch env and log wording, and write a commented"
        " draft profile. See `bpconform docs profile-init`.",
    )
    init.add_argument(
        "--buildpack",
        type=Path,
        required=True,
        metavar="DIR",
        help="the buildpack directory; `reference`: the reference buildpack shipped with the suite",
    )
    init.add_argument(
        "--app", type=Path, metavar="DIR", help="sample app to build (default: the packaged testapps/minimal)"
    )
    init.add_argument("--stack", default="bookworm", help="stack to build on (default: bookworm)")
    init.add_argument("--output", type=Path, metavar="FILE", help="where to write the draft (default: stdout)")
    init.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    init.add_argument("--online", action="store_true", help="let pip reach the index (default: offline wheelhouse)")
    init.add_argument("--ca-bundle", type=Path, help="CA bundle for --online (default: the host's)")
    init.add_argument(
        "--no-learn",
        action="store_true",
        help="only the build and the rebuild: skip the version-change, failing-app and uv/Poetry builds (their keys"
        " become TODOs)",
    )
    init.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    init.set_defaults(func=cmd_profile_init)
