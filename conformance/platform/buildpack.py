"""Buildpack descriptors (`buildpack.toml`) and the registry composite buildpacks are resolved from.

Validation follows the lifecycle where it has a rule (supported APIs, `[[targets]]` inference,
target matching with empty-means-any) and the buildpack spec where the lifecycle is lenient but a
mistake would only surface later as a confusing container failure (missing or non-executable
`bin/detect`, a composite buildpack that also ships `bin/build`).
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from conformance.errors import ConformanceError, PlatformError
from conformance.platform import spec
from conformance.tomlcompat import load_toml

SUPPORTED_APIS = ("0.7", "0.8", "0.9", "0.10", "0.11", "0.12")
"""Buildpack APIs the embedded platform implements: the lifecycle's list (api/apis.go:19). For 0.x
APIs only an exact match is supported (api/version.go:115-120, `IsSupersetOf`); a 1.x API would be
supported by a 1.y entry with y >= x, and there is none."""


DEFAULT_EXEC_ENV = "production"
"""`CNB_EXEC_ENV` when the platform is given none (platform/defaults.go:133-135)."""

_API_VERSION = re.compile(r"v?(\d+)\.?(\d*)")
"""The lifecycle's version syntax (api/version.go:11): "0.10", "v0.9", and "1" (= 1.0)."""

_LEGACY_BIONIC_STACK = "io.buildpacks.stacks.bionic"


def parse_api(api: str) -> tuple[int, int]:
    """`"0.10"` -> `(0, 10)`: API versions compare numerically, never as strings ("0.9" < "0.10").

    The lifecycle's syntax: an optional `v`, a major and an optional minor (`"1"` is 1.0). An unparseable
    version is the lifecycle's "incompatible buildpack API" (exit 12), as in cmd/apis.go:40-46.
    """
    match = _API_VERSION.fullmatch(api) if isinstance(api, str) else None
    if match is None:
        raise PlatformError(
            f"invalid buildpack API version {api!r}",
            'write it as "<major>.<minor>", e.g. "0.10"',
            spec.ExitCode.INCOMPATIBLE_BUILDPACK_API,
        )
    return int(match.group(1)), int(match.group(2) or 0)


def api_at_least(api: str, minimum: str) -> bool:
    return parse_api(api) >= parse_api(minimum)


@dataclass(frozen=True)
class Target:
    """One `[[targets]]` entry; `None` (or a missing key) matches anything, as in the lifecycle."""

    os: str | None = None
    arch: str | None = None
    variant: str | None = None
    distros: tuple[tuple[str, str | None], ...] = ()

    def matches(self, os: str, arch: str, distro: str, version: str, variant: str | None = None) -> bool:
        if not (_field_matches(os, self.os) and _field_matches(arch, self.arch)):
            return False
        if not _field_matches(variant, self.variant):
            return False
        if not self.distros:
            return True
        return any(_field_matches(distro, name) and _field_matches(version, wanted) for name, wanted in self.distros)


def _field_matches(actual: str | None, wanted: str | None) -> bool:
    return not actual or not wanted or actual == wanted


@dataclass(frozen=True)
class RunTarget:
    """The target of the run image, what `CNB_TARGET_*` describe and buildpack targets are matched to."""

    os: str
    arch: str
    distro_name: str
    distro_version: str
    arch_variant: str | None = None

    def env(self) -> dict[str, str]:
        """The `CNB_TARGET_*` variables detect and build receive (Buildpack API >= 0.10)."""
        env = {
            "CNB_TARGET_OS": self.os,
            "CNB_TARGET_ARCH": self.arch,
            "CNB_TARGET_DISTRO_NAME": self.distro_name,
            "CNB_TARGET_DISTRO_VERSION": self.distro_version,
        }
        if self.arch_variant:
            env["CNB_TARGET_ARCH_VARIANT"] = self.arch_variant
        return env


@dataclass(frozen=True)
class GroupEntry:
    """A reference to a buildpack in an order (`order.toml` or a composite's `[[order.group]]`)."""

    id: str
    version: str | None
    optional: bool = False

    def __str__(self) -> str:
        return f"{self.id}@{self.version}" if self.version else self.id


@dataclass(frozen=True)
class Buildpack:
    path: Path
    api: str
    id: str
    version: str
    name: str
    clear_env: bool
    targets: tuple[Target, ...]
    order: tuple[tuple[GroupEntry, ...], ...]
    homepage: str | None
    exec_env: tuple[str, ...] = ()
    """`[buildpack] exec-env`: the execution environments it is for (empty = all). The lifecycle honours it
    only from Platform API 0.15 and Buildpack API 0.12 (phase/detector.go:229-279); this platform speaks
    Platform API 0.13, so it is read and validated, and every buildpack runs in every exec env."""
    sbom_formats: tuple[str, ...] = ()  # `[buildpack] sbom-formats`: the SBOM media types it may write

    @property
    def escaped_id(self) -> str:
        """The directory name of this buildpack under `/layers` and `/cnb/buildpacks`."""
        return spec.escape_id(self.id)

    @property
    def is_composite(self) -> bool:
        return bool(self.order)

    @property
    def key(self) -> tuple[str, str]:
        return (self.id, self.version)

    def __str__(self) -> str:
        return f"{self.id}@{self.version}"

    def supports(self, os: str, arch: str, distro: str, version: str, variant: str | None = None) -> bool:
        """Whether this buildpack may run on that target; no targets at all matches anything."""
        if not self.targets:
            return True
        return any(target.matches(os, arch, distro, version, variant) for target in self.targets)


def buildpack_dir(bp: Buildpack) -> str:
    """Where a buildpack is mounted in the build container (the lifecycle's `/cnb/buildpacks/<id>/<version>`)."""
    return f"{spec.BUILDPACKS_DIR}/{bp.escaped_id}/{bp.version}"


Phase = Literal["detect", "build"]


def interface_env(
    bp: Buildpack,
    phase: Phase,
    *,
    plan_path: str,
    layers_dir: str | None = None,
    target: RunTarget | None = None,
    exec_env: str = DEFAULT_EXEC_ENV,
) -> dict[str, str]:
    """The `CNB_*` variables bin/detect or bin/build gets on top of its environment, per its Buildpack API.

    As the lifecycle (buildpack/detect.go:177-190, buildpack/build.go:147-160): `CNB_BUILDPACK_DIR` always;
    from API 0.8 `CNB_PLATFORM_DIR` and the plan path (`CNB_BUILD_PLAN_PATH` at detect, `CNB_BP_PLAN_PATH`
    at build) and, at build, `CNB_LAYERS_DIR`; from API 0.10 the `CNB_TARGET_*` variables; from API 0.12
    `CNB_EXEC_ENV` (the platform's, `production` by default; an empty one is not passed). A 0.7 buildpack
    gets only its directory: its paths come as arguments. These are added after the user's platform env,
    so they win over a user variable of the same name, as with Go's exec.Cmd (last duplicate wins).
    The buildpack and platform dirs are where the build container mounts them (`buildpack_dir`, spec.py).
    """
    env = {"CNB_BUILDPACK_DIR": buildpack_dir(bp)}
    if api_at_least(bp.api, "0.8"):
        env["CNB_PLATFORM_DIR"] = spec.PLATFORM_DIR
        if phase == "detect":
            env["CNB_BUILD_PLAN_PATH"] = plan_path
        else:
            env["CNB_BP_PLAN_PATH"] = plan_path
            if layers_dir is None:
                raise PlatformError("interface_env: the build phase needs layers_dir", "this is a platform bug")
            env["CNB_LAYERS_DIR"] = layers_dir
    if target is not None and api_at_least(bp.api, "0.10"):
        env.update(target.env())
    if exec_env and api_at_least(bp.api, "0.12"):
        env["CNB_EXEC_ENV"] = exec_env
    return env


def load_buildpack(path: Path) -> Buildpack:
    """Read and validate `<path>/buildpack.toml`; every problem is a `PlatformError` with a hint."""
    path = Path(path)
    descriptor = path / "buildpack.toml"
    if not descriptor.is_file():
        raise PlatformError(
            f"no buildpack.toml in {path}",
            "point the platform at a buildpack directory (one containing buildpack.toml, bin/detect, bin/build)",
        )
    try:
        data = load_toml(descriptor, what="buildpack descriptor")
    except ConformanceError as exc:
        raise PlatformError(exc.message, exc.hint) from None

    info = data.get("buildpack")
    if not isinstance(info, dict):
        raise PlatformError(f"{descriptor} has no [buildpack] table", "add [buildpack] with id, version and name")
    bp_id = _required_string(info, "id", descriptor)
    version = _required_string(info, "version", descriptor)
    spec.check_buildpack_id(bp_id, descriptor)  # before either becomes a path or a mount target
    spec.check_buildpack_version(version, descriptor)
    api = _check_api(data.get("api"), descriptor)

    clear_env = info.get("clear-env", False)
    if not isinstance(clear_env, bool):
        raise PlatformError(f"{descriptor}: buildpack.clear-env must be true or false, not {clear_env!r}")
    name = info.get("name", "")
    homepage = info.get("homepage")
    if not isinstance(name, str) or (homepage is not None and not isinstance(homepage, str)):
        raise PlatformError(f"{descriptor}: buildpack.name and buildpack.homepage must be strings")

    # The lifecycle reads `[buildpack] exec-env` as an array of strings (buildpack/descriptor.go:26); the
    # spec's `[[buildpack.exec-env]] name = ...` tables (buildpack.md, buildpack.toml) fail its TOML
    # decoding, so they are refused here too. `exec-env` in an order group entry it ignores, as we do.
    exec_env = info.get("exec-env", [])
    if not isinstance(exec_env, list) or not all(isinstance(e, str) and e for e in exec_env):
        raise PlatformError(
            f"{descriptor}: buildpack.exec-env must be an array of names, not {exec_env!r}",
            'write exec-env = ["production"] under [buildpack] (or ["*"] for every execution environment);'
            " the lifecycle cannot read [[buildpack.exec-env]] tables",
        )

    sbom_formats = info.get("sbom-formats", [])
    if not isinstance(sbom_formats, list) or not all(isinstance(f, str) for f in sbom_formats):
        raise PlatformError(
            f"{descriptor}: buildpack.sbom-formats must be an array of media types",
            'write sbom-formats = ["application/vnd.cyclonedx+json"]',
        )
    order = _parse_order(data.get("order", []), descriptor)
    _check_bins(path, descriptor, composite=bool(order))
    targets = _parse_targets(data, path, descriptor, api)
    return Buildpack(
        path=path,
        api=api,
        id=bp_id,
        version=version,
        name=name,
        clear_env=clear_env,
        targets=targets,
        order=order,
        homepage=homepage,
        exec_env=tuple(exec_env),
        sbom_formats=tuple(sbom_formats),
    )


def _required_string(table: dict[str, Any], key: str, descriptor: Path) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PlatformError(
            f"{descriptor}: [buildpack] {key} is missing or empty",
            f'add {key} = "..." under [buildpack] (id like "example/python", version like "1.0.0")',
        )
    return value


def _check_api(api: Any, descriptor: Path) -> str:
    """The descriptor's `api`, normalised to "X.Y"; anything the lifecycle would not run exits 12."""
    supported = ", ".join(SUPPORTED_APIS)
    if not isinstance(api, str):
        raise PlatformError(
            f"{descriptor}: missing api (the Buildpack API version)",
            f'add a top-level api = "{SUPPORTED_APIS[-1]}" (supported: {supported})',
            spec.ExitCode.INCOMPATIBLE_BUILDPACK_API,
        )
    try:
        version = parse_api(api)
    except PlatformError as exc:
        raise PlatformError(
            f"{descriptor}: {exc.message}",
            f"{exc.hint} (supported: {supported})",
            spec.ExitCode.INCOMPATIBLE_BUILDPACK_API,
        ) from None
    if not api_supported(version):
        raise PlatformError(
            f"{descriptor}: Buildpack API {api} is not supported (the lifecycle supports {supported})",
            f"set api in buildpack.toml to one of {supported}, porting the buildpack to it if needed",
            spec.ExitCode.INCOMPATIBLE_BUILDPACK_API,
        )
    return f"{version[0]}.{version[1]}"


def api_supported(version: tuple[int, int]) -> bool:
    """The lifecycle's `IsSupersetOf` over the supported list (api/version.go:115-120): a 0.x entry
    supports exactly itself, an X.Y entry (X >= 1) supports X.0 to X.Y."""
    for entry in (parse_api(known) for known in SUPPORTED_APIS):
        if entry[0] == 0 and entry == version:
            return True
        if entry[0] != 0 and entry[0] == version[0] and entry[1] >= version[1]:
            return True
    return False


def bin_problem(bp: Buildpack, name: str) -> str | None:
    """Why `bin/<name>` of `bp` cannot be started, or None: asked after it failed, to tell "could not be
    run" (the lifecycle's exec error, `DetectOutputs{Code: -1}` in buildpack/detect.go:192-198, and
    `ErrTypeBuildpack` in buildpack/build.go:162-164) from "ran and exited non-zero". Names the
    in-image path. The buildpack dir is the user's input (mounted read-only), not buildpack output."""
    executable = bp.path / "bin" / name
    shown = f"{buildpack_dir(bp)}/bin/{name}"
    try:
        st = executable.stat()
    except FileNotFoundError:
        return f"{shown} does not exist"
    except OSError as exc:
        return f"{shown} cannot be read: {exc.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return f"{shown} is not a regular file"
    if not st.st_mode & 0o111:
        return f"{shown} is not executable (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _check_bins(path: Path, descriptor: Path, *, composite: bool) -> None:
    bins = [path / "bin" / "detect", path / "bin" / "build"]
    if composite:
        present = [str(b.relative_to(path)) for b in bins if b.exists()]
        if present:
            raise PlatformError(
                f"{descriptor} declares [[order]] (a composite buildpack) but also has {', '.join(present)}",
                "a buildpack is either composite ([[order]], no bin/) or component (bin/detect and bin/build)",
            )
        return
    # A component buildpack's bin/detect and bin/build are not checked here: the lifecycle only finds
    # out when it runs them, and the outcome is its exit code (21 when no group passes because a
    # bin/detect could not run, 51 for a bin/build) - see `bin_problem`, which names the reason then.


def _parse_order(raw: Any, descriptor: Path) -> tuple[tuple[GroupEntry, ...], ...]:
    if not isinstance(raw, list):
        raise PlatformError(f"{descriptor}: order must be an array of tables ([[order]])")
    groups = []
    for index, group in enumerate(raw):
        entries = group.get("group") if isinstance(group, dict) else None
        if not isinstance(entries, list) or not entries:
            raise PlatformError(
                f"{descriptor}: [[order]] #{index + 1} has no [[order.group]] entries",
                'list buildpacks as [[order.group]] id = "..." version = "..."',
            )
        groups.append(tuple(parse_group_entry(entry, descriptor) for entry in entries))
    return tuple(groups)


def parse_group_entry(entry: Any, source: Path | str) -> GroupEntry:
    """One `{id, version, optional}` table of an order; shared with `order.toml` readers."""
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry["id"]:
        raise PlatformError(f"{source}: every order group entry needs an id", 'write id = "example/python"')
    version = entry.get("version")
    optional = entry.get("optional", False)
    if version is not None and not isinstance(version, str):
        raise PlatformError(f"{source}: version of {entry['id']} must be a string")
    spec.check_buildpack_id(entry["id"], source)
    if version:
        spec.check_buildpack_version(version, source)
    if not isinstance(optional, bool):
        raise PlatformError(f"{source}: optional of {entry['id']} must be true or false")
    return GroupEntry(id=entry["id"], version=version or None, optional=optional)


def _parse_targets(data: dict[str, Any], path: Path, descriptor: Path, api: str) -> tuple[Target, ...]:
    raw = data.get("targets", [])
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise PlatformError(f"{descriptor}: targets must be an array of tables ([[targets]])")
    targets = [_parse_target(t, descriptor) for t in raw]
    if targets:
        return tuple(targets)
    # The lifecycle infers targets when none are declared (buildpack/bp_descriptor.go:70-97): from legacy
    # [[stacks]], else linux when the buildpack has bin/build (composites infer nothing: they match any
    # target). The bionic stack becomes a target only for Buildpack API >= 0.10 or when it is the only
    # stack listed (bp_descriptor.go:73): an older buildpack listing several stacks runs anywhere.
    stacks = data.get("stacks", []) or []
    for stack in stacks:
        stack_id = stack.get("id") if isinstance(stack, dict) else None
        if stack_id == _LEGACY_BIONIC_STACK:
            if api_at_least(api, "0.10") or len(stacks) == 1:
                targets.append(Target(os="linux", arch="amd64", distros=(("ubuntu", "18.04"),)))
        elif stack_id == "*":
            targets.append(Target())
    if not targets and (path / "bin" / "build").exists():
        targets.append(Target(os="linux"))
    return tuple(targets)


def _parse_target(raw: dict[str, Any], descriptor: Path) -> Target:
    def text(table: dict[str, Any], key: str) -> str | None:
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            raise PlatformError(f"{descriptor}: targets.{key} must be a string, not {value!r}")
        return value or None

    distros = raw.get("distros", [])
    if not isinstance(distros, list) or not all(isinstance(d, dict) for d in distros):
        raise PlatformError(f"{descriptor}: targets.distros must be an array of tables ([[targets.distros]])")
    return Target(
        os=text(raw, "os"),
        arch=text(raw, "arch"),
        variant=text(raw, "arch-variant"),
        distros=tuple((text(d, "name") or "", text(d, "version")) for d in distros),
    )


class BuildpackRegistry:
    """All buildpacks the platform knows, by (id, version): what order entries are resolved against."""

    def __init__(self, buildpacks: Iterable[Buildpack] = ()) -> None:
        self._by_key: dict[tuple[str, str], Buildpack] = {}
        for buildpack in buildpacks:
            self.add(buildpack)

    @classmethod
    def from_paths(cls, paths: Iterable[Path]) -> BuildpackRegistry:
        return cls(load_buildpack(Path(p)) for p in paths)

    def add(self, buildpack: Buildpack) -> None:
        existing = self._by_key.get(buildpack.key)
        if existing is not None and existing.path != buildpack.path:
            raise PlatformError(
                f"two buildpacks claim {buildpack}: {existing.path} and {buildpack.path}",
                "give each buildpack directory a distinct id or version",
            )
        for other in self._by_key.values():  # a/b and a_b would share /layers/a_b
            if other.id != buildpack.id and other.escaped_id == buildpack.escaped_id:
                raise PlatformError(
                    f"buildpacks {other.id} and {buildpack.id} would share the layers directory {buildpack.escaped_id}",
                    "ids that differ only in '/' versus '_' cannot be built together: rename one",
                )
        self._by_key[buildpack.key] = buildpack

    def __iter__(self):
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, bp_id: str, version: str | None = None) -> Buildpack:
        """The buildpack `bp_id@version`; without a version, the only one with that id."""
        if version:
            found = self._by_key.get((bp_id, version))
            if found is not None:
                return found
        candidates = sorted(v for (i, v) in self._by_key if i == bp_id)
        if version is None and len(candidates) == 1:
            return self._by_key[(bp_id, candidates[0])]
        if not candidates:
            known = ", ".join(sorted(f"{i}@{v}" for i, v in self._by_key)) or "none"
            raise PlatformError(
                f"unknown buildpack {bp_id}{'@' + version if version else ''}",
                f"add its directory to the buildpacks given to the platform (known: {known})",
            )
        if version is None:
            raise PlatformError(
                f"buildpack {bp_id} is available in several versions ({', '.join(candidates)})",
                "say which one with a version in the order entry",
            )
        raise PlatformError(
            f"buildpack {bp_id}@{version} is not available (have: {', '.join(candidates)})",
            "fix the version in the order entry or add that version's directory",
        )
