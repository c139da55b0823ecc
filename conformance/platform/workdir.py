"""The build's own work dir on the host: the app copy, layers, platform and plan dirs, tars.

Each build gets a fresh directory under the harness's work root; the build container sees the
first four as bind mounts at their in-image paths (spec.py). Nothing outside it is written.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from conformance.engine import Mount
from conformance.errors import PlatformError
from conformance.paths import discard_tree, work_root
from conformance.platform import spec
from conformance.platform.appdir import AppPathFilter, copy_app


@dataclass(frozen=True)
class WorkDirs:
    root: Path

    @classmethod
    def fresh(cls) -> WorkDirs:
        return cls(work_root() / uuid.uuid4().hex[:12])

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    @property
    def layers(self) -> Path:
        return self.root / "layers"

    @property
    def platform(self) -> Path:
        return self.root / "platform"

    @property
    def plans(self) -> Path:
        return self.root / "plans"

    @property
    def tars(self) -> Path:
        return self.root / "tars"

    def scratch(self, kind: str) -> Path:
        """A new dir no buildpack can reach (not mounted), e.g. to extract a cached layer into."""
        return self.root / kind / uuid.uuid4().hex[:12]

    def mounts(self) -> list[Mount]:
        """The work dirs the build container sees, at their in-image paths (spec.py): the one
        table of host dir -> in-image path. The platform dir is read-only: it holds the user's env,
        which no buildpack may change."""
        return [
            Mount(self.workspace, spec.APP_DIR),
            Mount(self.layers, spec.LAYERS_DIR),
            Mount(self.platform, spec.PLATFORM_DIR, read_only=True),
            Mount(self.plans, spec.PLANS_DIR),
        ]

    def writable(self) -> list[Path]:
        """The mounted work dirs buildpacks write to (all but the read-only ones)."""
        return [mount.source for mount in self.mounts() if not mount.read_only]

    def in_container(self, host_dir: Path) -> str:
        """The in-image path of a mounted work dir."""
        for mount in self.mounts():
            if mount.source == host_dir:
                return mount.target
        raise PlatformError(f"{host_dir} is not a mounted work dir of {self.root}", "this is a platform bug: report it")

    def in_image_text(self, text: str) -> str:
        """`text` (an error message) with every host path of a mounted work dir replaced by its
        in-image path: the lifecycle runs inside the build container and names files as buildpacks
        see them (`/layers/<bp>/launch.toml`), and a host path under the work dir means nothing to a
        buildpack author (and is gone once the build ends)."""
        for mount in self.mounts():
            text = text.replace(str(mount.source), mount.target)
        return text

    def prepare(self, app_dir: Path, platform_env: dict[str, str], app_filter: AppPathFilter | None = None) -> None:
        """Make the dirs, copy the app (never modifying it; only what `app_filter` keeps) and write
        `<platform>/env/` files."""
        for directory in (self.layers, self.platform / "env", self.plans, self.tars):
            directory.mkdir(parents=True)
        copy_app(app_dir, self.workspace, app_filter)
        for name, value in platform_env.items():
            if not spec.ENV_NAME.fullmatch(name):
                raise PlatformError(
                    f"{name!r} is not a valid environment variable name for <platform>/env",
                    "use letters, digits and underscores, not starting with a digit",
                    spec.ExitCode.BUILD_ERROR,
                )
            (self.platform / "env" / name).write_text(value)

    def remove(self, *, now: bool = False) -> None:
        discard_tree(self.root, now=now)
