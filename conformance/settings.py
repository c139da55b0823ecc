"""A suite run's settings, read once from the pytest options (and ini keys) the plugin declares.

Where inputs come from is decided here, once, for every check: the apps dir (`--apps`, else the
profile's `apps-dir`, else the sample apps shipped with the package) and the snapshot dir (see
`snapshot_root`). The profile handed to the checks carries the same apps dir, so the error checks
(`profile.require_app`) and the build checks (`app_dir`) look in one place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance import profile as profiles
from conformance.data import reference_snapshots, sample_apps_dir
from conformance.profile import Profile, load_profile

DEFAULT_STACK = "bookworm"
REFERENCE_PROFILE = "reference"


@dataclass(frozen=True)
class Settings:
    buildpacks: tuple[Path, ...]
    stack_name: str
    platform: str  # the build backend: embedded | pack
    profile: Profile
    online: bool
    ca_bundle: Path | None
    env_order: str
    apps_dir: Path
    builder: str | None
    lifecycle_image: str | None
    snapshot_dir: Path | None = None  # --snapshot-dir, if given
    snapshot_update: bool = False
    build_image: str | None = None  # --build-image/--run-image: any pair meeting the contract, not a stack
    run_image: str | None = None

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        def option(name: str, default: Any = None) -> Any:
            value = config.getoption(f"bpconform_{name}", default=None)
            if value in (None, []):
                value = config.getini(f"bpconform_{name}") or default
            return value

        buildpacks = option("buildpack") or []
        if not buildpacks:
            raise pytest.UsageError("bpconform: no buildpack under test; pass --buildpack DIR (repeatable)")
        root = Path(str(config.rootpath))
        loaded = load_profile(option("profile", REFERENCE_PROFILE))
        apps_dir = apps_dir_for(loaded, _resolve(root, option("apps")) if option("apps") else None)
        snapshot_dir = option("snapshot_dir")
        return cls(
            buildpacks=tuple(_buildpack_path(root, p) for p in buildpacks),
            stack_name=option("stack", DEFAULT_STACK),
            platform=option("platform", "embedded"),
            profile=dataclasses.replace(loaded, apps_dir=apps_dir),
            online=bool(config.getoption("bpconform_online", default=None)),
            ca_bundle=_resolve(root, option("ca_bundle")) if option("ca_bundle") else None,
            env_order="lifecycle-1393" if config.getoption("bpconform_emulate_1393", default=False) else "sorted",
            apps_dir=apps_dir,
            builder=option("builder"),
            lifecycle_image=option("lifecycle_image"),
            snapshot_dir=Path(snapshot_dir).resolve() if snapshot_dir else None,
            snapshot_update=bool(config.getoption("update_snapshots", default=False)),
            build_image=option("build_image"),
            run_image=option("run_image"),
        )

    def snapshot_root(self) -> Path:
        """The directory holding `<profile>/<stack>/` snapshot dirs: `--snapshot-dir`; else, for the
        built-in reference profile, the snapshots shipped with the package (read-only: updating
        them writes to `./snapshots` instead); else `./snapshots` in the user's project."""
        if self.snapshot_dir is not None:
            return self.snapshot_dir
        if self.profile.name == REFERENCE_PROFILE and self.profile_is_builtin and not self.snapshot_update:
            return reference_snapshots()
        return Path.cwd() / "snapshots"

    def snapshot_directory(self) -> Path:
        return self.snapshot_root() / self.profile.name / self.stack_name

    @property
    def profile_is_builtin(self) -> bool:
        builtin = Path(profiles.__file__).resolve().parent / "profiles"
        return self.profile.path.resolve().parent == builtin


SETTINGS = pytest.StashKey["Settings"]()


def settings_of(config: pytest.Config) -> Settings:
    """The run's Settings, read once per process (hooks and fixtures all ask)."""
    if SETTINGS not in config.stash:
        config.stash[SETTINGS] = Settings.from_config(config)
    return config.stash[SETTINGS]


def apps_dir_for(profile: Profile, explicit: Path | None) -> Path:
    """`--apps DIR`, else the profile's `apps-dir`, else the sample apps shipped with the package."""
    if explicit is not None:
        return explicit
    if profile.apps_dir != profiles.DEFAULT_APPS_DIR:  # the profile names its own
        return profile.apps_dir
    return sample_apps_dir()


def _resolve(root: Path, value: str | Path) -> Path:
    path = Path(value)
    if not path.is_absolute():
        path = (Path.cwd() / path) if (Path.cwd() / path).exists() else (root / path)
    return path.resolve()


def _buildpack_path(root: Path, value: str) -> Path:
    """`reference` (when no such directory exists) is the shipped reference buildpack, as for `bpconform run`."""
    from conformance.data import reference_buildpack

    path = _resolve(root, value)
    return reference_buildpack() if str(value) == "reference" and not path.exists() else path
