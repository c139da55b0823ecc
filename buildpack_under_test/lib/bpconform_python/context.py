"""What the lifecycle hands a buildpack: directories, target, the user's env and buildpack.toml."""

from __future__ import annotations

import platform
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bpconform_python.output import BuildpackError

_MACHINE_TO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class Target:
    """The build's target; recorded in layer metadata because a runtime only runs where it was built."""

    os: str
    arch: str
    distro_name: str
    distro_version: str

    def describe(self) -> str:
        return f"{self.distro_name} {self.distro_version} ({self.arch})"


def _os_release(path: Path = Path("/etc/os-release")) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return values
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip()] = value.strip().strip('"')
    return values


def target_from_env(environ: Mapping[str, str], os_release: Path = Path("/etc/os-release")) -> Target:
    """CNB_TARGET_* from the lifecycle; /etc/os-release and the machine type when a platform omits them."""
    release = _os_release(os_release) if not environ.get("CNB_TARGET_DISTRO_NAME") else {}
    machine = platform.machine()
    return Target(
        os=environ.get("CNB_TARGET_OS") or "linux",
        arch=environ.get("CNB_TARGET_ARCH") or _MACHINE_TO_ARCH.get(machine, machine),
        distro_name=environ.get("CNB_TARGET_DISTRO_NAME") or release.get("ID", "unknown"),
        distro_version=environ.get("CNB_TARGET_DISTRO_VERSION") or release.get("VERSION_ID", "unknown"),
    )


def read_platform_env(platform_dir: Path) -> dict[str, str]:
    """The user's variables as files in `<platform>/env/<NAME>`, values taken verbatim (like the lifecycle)."""
    env_dir = platform_dir / "env"
    values: dict[str, str] = {}
    if not env_dir.is_dir():
        return values
    for entry in sorted(env_dir.iterdir()):
        if entry.is_file():
            try:
                values[entry.name] = entry.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
    return values


def effective_env(process_env: Mapping[str, str], platform_env: Mapping[str, str]) -> dict[str, str]:
    """The environment for pip and friends: the process env, plus platform env files it lacks.

    The lifecycle already exports `<platform>/env` to buildpacks (unless `clear-env = true`), prepending
    path-like values, so a name present in both is kept from the process env; reading the files as
    well makes the buildpack behave the same when run directly or by a platform that does not export.
    """
    merged = dict(process_env)
    for name, value in platform_env.items():
        merged.setdefault(name, value)
    return merged


@dataclass(frozen=True)
class BuildpackConfig:
    """`buildpack.toml`: identity and the pinned versions."""

    id: str
    version: str
    pip_version: str
    default_python_version: str
    runtime_manifest: str
    uv_version: str = "0.13.9"
    poetry_version: str = "2.5.1"


def load_buildpack_config(buildpack_dir: Path) -> BuildpackConfig:
    path = buildpack_dir / "buildpack.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        meta = data["metadata"]
        return BuildpackConfig(
            id=data["buildpack"]["id"],
            version=data["buildpack"]["version"],
            pip_version=str(meta["pip-version"]),
            default_python_version=str(meta["default-python-version"]),
            runtime_manifest=str(meta["runtime-manifest"]),
            uv_version=str(meta["uv-version"]),
            poetry_version=str(meta["poetry-version"]),
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise BuildpackError(
            "Broken buildpack.toml", f"Could not read the buildpack's own {path}: {exc}. Reinstall the buildpack."
        ) from exc


def buildpack_dir_from(environ: Mapping[str, str]) -> Path:
    if environ.get("CNB_BUILDPACK_DIR"):
        return Path(environ["CNB_BUILDPACK_DIR"])
    return Path(__file__).resolve().parents[2]
