"""`pyproject.toml`'s `requires-python`, checked against the Python the build chose.

Only the PEP 440 operators a `requires-python` uses in practice are understood (`>=`, `>`, `<=`,
`<`, `==`, `!=` with an optional `.*`, `~=`); anything else is an error rather than a guess, because
a silently ignored constraint is how an app ends up on a Python it does not support.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from bpconform_python.output import BuildpackError
from bpconform_python.versions import Version

_CLAUSE = re.compile(r"^(~=|==|!=|<=|>=|<|>)\s*(\d+(?:\.\d+)*)(\.\*)?$")


@dataclass(frozen=True)
class Clause:
    operator: str
    release: tuple[int, ...]
    wildcard: bool


def parse_specifier(text: str) -> list[Clause]:
    clauses = []
    for raw in text.split(","):
        part = raw.strip()
        match = _CLAUSE.match(part)
        if not match or (match.group(3) and match.group(1) not in ("==", "!=")):
            raise ValueError(part)
        release = tuple(int(n) for n in match.group(2).split("."))
        if match.group(1) == "~=" and len(release) < 2:
            raise ValueError(part)
        clauses.append(Clause(match.group(1), release, bool(match.group(3))))
    return clauses


def _pad(release: tuple[int, ...], length: int) -> tuple[int, ...]:
    return release + (0,) * (length - len(release))


def clause_allows(clause: Clause, version: Version) -> bool:
    full = (version.major, version.minor, version.patch)
    if clause.wildcard:
        prefix_matches = full[: len(clause.release)] == _pad(clause.release, 3)[: len(clause.release)]
        return prefix_matches if clause.operator == "==" else not prefix_matches
    length = max(3, len(clause.release))
    wanted, have = _pad(clause.release, length), _pad(full, length)
    if clause.operator == "~=":
        prefix = clause.release[:-1]
        return have >= wanted and full[: len(prefix)] == prefix
    return {
        "==": have == wanted,
        "!=": have != wanted,
        "<=": have <= wanted,
        ">=": have >= wanted,
        "<": have < wanted,
        ">": have > wanted,
    }[clause.operator]


def allows(specifier: str, version: Version) -> bool:
    return all(clause_allows(clause, version) for clause in parse_specifier(specifier))


def read_requires_python(pyproject: Path) -> str | None:
    """`[project] requires-python`, or None when the file or the key is absent."""
    if not pyproject.is_file():
        return None
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BuildpackError("Invalid pyproject.toml", f"pyproject.toml could not be read as TOML: {exc}") from exc
    project = data.get("project")
    value = project.get("requires-python") if isinstance(project, dict) else None
    if value is not None and not isinstance(value, str):
        raise BuildpackError("Invalid pyproject.toml", "[project] requires-python in pyproject.toml must be a string.")
    return value


def check_requires_python(specifier: str, chosen: Version, version_origin: str) -> None:
    """Fail when the chosen Python is outside `requires-python`, naming where each side came from."""
    try:
        ok = allows(specifier, chosen)
    except ValueError as exc:
        raise BuildpackError(
            "Unsupported requires-python in pyproject.toml",
            f"The clause '{exc}' of requires-python = '{specifier}' in pyproject.toml is not understood; "
            "use comparisons such as '>=3.11' or '==3.13.*'.",
        ) from exc
    if ok:
        return
    if version_origin == ".python-version":
        raise BuildpackError(
            "Python version conflict",
            f"The Python version {chosen} requested in .python-version is not allowed by requires-python = "
            f"'{specifier}' in pyproject.toml. Change one of the two files so that they agree.",
        )
    raise BuildpackError(
        "Python version conflict",
        f"The default Python version {chosen} is not allowed by requires-python = '{specifier}' in "
        "pyproject.toml. Add a .python-version file naming a version that requires-python allows.",
    )
