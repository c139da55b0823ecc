"""`project.toml`, the app's project descriptor, read as `pack build` reads it (issue 13 item 13).

The lifecycle never reads `project.toml`; the platform does, before the build. `pack` (pkg/project,
pkg/client/build.go) applies three things from it, and so does `bpconform build`:

- `include` / `exclude` (gitignore patterns; at most one of them): which files of the app dir are
  copied into `/workspace` (pkg/client/build.go:897-910 `getFileFilter`). The matching is pack's
  library's (sabhiram/go-gitignore `getPatternFromLine`), re-expressed in `GitIgnore` below, and,
  as in pack's copy (pkg/archive/archive.go:164-190, a `filepath.Walk` that returns nil for a
  filtered path), every path is tested on its own: an excluded directory's files are tested too,
  and an included file keeps its parent directories even when they are not included themselves.
- build env (`[[io.buildpacks.build.env]]`, or the deprecated `[[io.buildpacks.env.build]]`; v0.1
  `[[build.env]]`): `<platform>/env` files, under the user's own `--env`/`--env-file` values
  (pkg/client/build.go:558-565: project values first, then the user's override them).
- buildpacks (`[[io.buildpacks.group]]`; v0.1 `[[build.buildpacks]]`): used only when no
  `--buildpack` is given (pkg/client/build.go:1233-1245). Without a builder there is nothing an
  `id`/`version` can name, so only `uri` entries that are local buildpack directories (relative to
  the descriptor's directory, or `file://` URIs) are supported; anything else is a clear error.

Schema versions (pkg/project/project.go): `[_] schema-version = "0.2"` or "0.1" (the default, with
pack's warning, when `[_]` has none); 0.3 and unknown versions are refused with a clear error.
This module only reads; it hands plain values (a path filter, env, buildpack dirs) to the platform.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from conformance.errors import ConformanceError
from conformance.tomlcompat import load_toml

PROJECT_FILE = "project.toml"
SCHEMAS = ("0.1", "0.2")


class ProjectError(ConformanceError):
    """project.toml is malformed or asks for something this platform cannot do."""


# ------------------------------------------------------------------------------------------------
# gitignore patterns, as pack's library matches them
# ------------------------------------------------------------------------------------------------

_MAGIC_STAR = "#$~"


def _pattern(line: str) -> tuple[re.Pattern[str], bool] | None:
    """One pattern line as (regex, negated), None for a comment or blank line.

    The same steps as go-gitignore's `getPatternFromLine`, in order (its quirks included, since pack
    users see them: only `.` is escaped, other regex characters in a pattern keep their meaning; a
    `foo/*.ext` pattern is anchored at the root; `/` at the end means "this and anything below").
    """
    line = line.rstrip("\r")
    if line.startswith("#"):
        return None
    line = line.strip(" ")
    if not line:
        return None
    negate = line.startswith("!")
    if negate:
        line = line[1:]
    if re.match(r"^(\#|\!)", line):
        line = line[1:]
    if re.search(r"([^\/+])/.*\*\.", line) and not line.startswith("/"):
        line = "/" + line
    line = line.replace(".", r"\.")
    if line.startswith("/**/"):
        line = line[1:]
    line = line.replace("/**/", "(/|/.+/)")
    line = line.replace("**/", f"(|.{_MAGIC_STAR}/)")
    line = line.replace("/**", f"(|/.{_MAGIC_STAR})")
    line = line.replace("\\*", "\\" + _MAGIC_STAR)
    line = line.replace("*", "([^/]*)")
    line = line.replace("?", r"\?")
    line = line.replace(_MAGIC_STAR, "*")
    expr = line + ("(|.*)" if line.endswith("/") else "(|/.*)")
    expr = "^(|/)" + expr[1:] if expr.startswith("/") else "^(|.*/)" + expr
    try:
        return re.compile(expr + r"\Z", re.DOTALL), negate
    except re.error as exc:
        raise ProjectError(
            f"project.toml: the pattern {line!r} cannot be used: {exc}",
            "pack's gitignore matching treats characters like ( [ + as regular-expression syntax; simplify the pattern",
        ) from None


@dataclass(frozen=True)
class GitIgnore:
    """A compiled list of gitignore lines; `matches(path)` as go-gitignore's `MatchesPath`: the last
    matching plain pattern sets it, a later matching `!pattern` clears it again."""

    lines: tuple[str, ...]
    patterns: tuple[tuple[re.Pattern[str], bool], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = tuple(p for p in (_pattern(line) for line in self.lines) if p is not None)
        object.__setattr__(self, "patterns", compiled)

    def matches(self, path: str) -> bool:
        matched = False
        for pattern, negate in self.patterns:
            if pattern.search(path):
                if not negate:
                    matched = True
                elif matched:
                    matched = False
        return matched


@dataclass(frozen=True)
class AppFilter:
    """Which app paths (relative, `/`-separated, e.g. `docs/README.md`) are copied into /workspace:
    with `exclude`, those it does not match; with `include`, those it matches; else all."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    _matcher: GitIgnore = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_matcher", GitIgnore(self.exclude or self.include))

    def __call__(self, rel: str) -> bool:
        if self.exclude:
            return not self._matcher.matches(rel)
        if self.include:
            return self._matcher.matches(rel)
        return True

    @property
    def active(self) -> bool:
        return bool(self.include or self.exclude)


# ------------------------------------------------------------------------------------------------
# The descriptor
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectBuildpack:
    id: str = ""
    version: str = ""
    uri: str = ""
    has_script: bool = False


@dataclass(frozen=True)
class Project:
    """What `pack build` takes from project.toml (see the module docstring)."""

    path: Path | None = None  # None: the app has no project.toml
    schema: str = ""
    app_filter: AppFilter = field(default_factory=AppFilter)
    env: tuple[tuple[str, str], ...] = ()  # in file order; a later entry of the same name wins
    buildpacks: tuple[ProjectBuildpack, ...] = ()
    warnings: tuple[str, ...] = ()

    def build_env(self, user_env: dict[str, str]) -> dict[str, str]:
        """`<platform>/env` as pack makes it: the project's build env, then the user's values over it."""
        return {**dict(self.env), **user_env}

    @property
    def copy_filter(self) -> AppFilter | None:
        """The app filter for the platform, or None when project.toml has no include/exclude."""
        return self.app_filter if self.app_filter.active else None

    def buildpack_dirs(self) -> list[Path]:
        """The group's buildpacks as local directories (only used when no --buildpack is given)."""
        assert self.path is not None or not self.buildpacks
        return [_buildpack_dir(bp, self.path.parent) for bp in self.buildpacks]  # type: ignore[union-attr]


def read_project(app_dir: Path, descriptor: Path | None = None) -> Project:
    """The app's project.toml (or `descriptor`, pack's `--descriptor`); a missing default file is no project."""
    path = Path(descriptor) if descriptor is not None else Path(app_dir) / PROJECT_FILE
    if not path.is_file():
        if descriptor is not None:
            raise ProjectError(f"project descriptor {path} does not exist", "pass the path of a project.toml")
        return Project()
    try:
        data = load_toml(path, what="project descriptor")
    except ConformanceError as exc:
        raise ProjectError(exc.message, exc.hint) from None
    return parse_project(data, path)


def parse_project(data: dict[str, Any], path: Path) -> Project:
    warnings: list[str] = []
    header = data.get("_", {})
    schema = header.get("schema-version", "") if isinstance(header, dict) else ""
    if not schema:
        warnings.append("No schema version declared in project.toml, defaulting to schema version 0.1")
        schema = "0.1"
    if schema not in SCHEMAS:
        raise ProjectError(
            f"{path}: project descriptor schema version {schema!r} is not supported (supported: {', '.join(SCHEMAS)})",
            'write [_] schema-version = "0.2" (pack pkg/project; 0.3 is not read by this platform)',
        )
    if schema == "0.2":
        table = _table(_table(data, "io", path), "buildpacks", path, "io.")
        where = "io.buildpacks"
        env_entries = _table(table, "build", path, f"{where}.").get("env")
        if env_entries is None:  # pack's backward compatibility for the old key (v02/project.go)
            env_entries = _table(table, "env", path, f"{where}.").get("build")
        group = table.get("group", [])
    else:
        table = _table(data, "build", path)
        where = "build"
        env_entries = table.get("env")
        group = table.get("buildpacks", [])
    include = _strings(table.get("include"), f"{where}.include", path)
    exclude = _strings(table.get("exclude"), f"{where}.exclude", path)
    if "include" in table and "exclude" in table:  # pkg/project/project.go validate
        raise ProjectError(
            f"{path}: cannot have both include and exclude defined", f"keep only one of {where}.include/exclude"
        )
    return Project(
        path=path,
        schema=schema,
        app_filter=AppFilter(tuple(include), tuple(exclude)),
        env=tuple(_env(env_entries, f"{where}.env" if schema == "0.1" else f"{where}.build.env", path)),
        buildpacks=tuple(_group(group, f"{where}.group" if schema == "0.2" else f"{where}.buildpacks", path)),
        warnings=tuple(warnings),
    )


def _table(data: dict[str, Any], key: str, path: Path, prefix: str = "") -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ProjectError(f"{path}: {prefix}{key} must be a table", f"write [{prefix}{key}]")
    return value


def _strings(value: Any, where: str, path: Path) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProjectError(f"{path}: {where} must be an array of strings", f'write {where.split(".")[-1]} = ["..."]')
    return list(value)


def _tables(value: Any, where: str, path: Path) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ProjectError(f"{path}: {where} must be an array of tables", f"write [[{where}]]")
    return value


def _env(value: Any, where: str, path: Path) -> list[tuple[str, str]]:
    found = []
    for index, entry in enumerate(_tables(value, where, path)):
        name, text = entry.get("name", ""), entry.get("value", "")
        if not isinstance(name, str) or not name or not isinstance(text, str):
            raise ProjectError(
                f"{path}: {where}[{index}] needs a string name and value", f'write [[{where}]] name = "X" value = "y"'
            )
        found.append((name, text))
    return found


def _group(value: Any, where: str, path: Path) -> list[ProjectBuildpack]:
    found = []
    for index, entry in enumerate(_tables(value, where, path)):
        bp = ProjectBuildpack(
            id=str(entry.get("id", "")), version=str(entry.get("version", "")), uri=str(entry.get("uri", ""))
        )
        bp = ProjectBuildpack(bp.id, bp.version, bp.uri, has_script="script" in entry)
        if not bp.id and not bp.uri:  # pkg/project/project.go validate
            raise ProjectError(f"{path}: {where}[{index}]: buildpacks must have an id or uri defined")
        if bp.uri and bp.version:
            raise ProjectError(f"{path}: {where}[{index}]: buildpacks cannot have both uri and version defined")
        found.append(bp)
    return found


def _buildpack_dir(bp: ProjectBuildpack, base: Path) -> Path:
    hint = (
        'list local buildpack directories as uri = "path/to/buildpack" (relative to project.toml), or pass'
        " --buildpack DIR, which overrides the project's group"
    )
    if bp.has_script:
        raise ProjectError(f"project.toml: inline buildpack {bp.id!r} (script) is not supported", hint)
    if not bp.uri:
        raise ProjectError(
            f"project.toml: buildpack {bp.id}{'@' + bp.version if bp.version else ''} names a builder's buildpack,"
            " and this platform has no builder",
            hint,
        )
    parsed = urlparse(bp.uri)
    if parsed.scheme not in ("", "file"):
        raise ProjectError(f"project.toml: buildpack uri {bp.uri!r} is not a local directory", hint)
    location = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(bp.uri)
    directory = location if location.is_absolute() else base / location
    if not directory.is_dir():
        raise ProjectError(f"project.toml: buildpack uri {bp.uri!r} is not a directory ({directory})", hint)
    return directory
