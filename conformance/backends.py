"""Build backends: how the suite turns an app dir into an app image, behind one interface.

Three things were called "platform" here before; they are kept apart by name now:

- the *embedded CNB platform* is the package `conformance.platform` (detect, build, export...);
- a *build backend* is how one build is run: `EmbeddedBackend` (the embedded platform) or
  `PackBackend` (the real `pack` CLI); the `--platform embedded|pack` option picks one;
- the `AppBuilder` is a test session's builder: it prepares the stack, runtimes and package access
  once, names images, adds the probe buildpack, and hands each build to the backend. (Its fixture
  is `app_builder`; `platform` is its old name, kept for existing checks.)

Each build is described by a typed `BuildOptions` record, not by free keyword arguments.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from conformance.engine import SESSION_ID, ensure_engine
from conformance.errors import ConformanceError, HarnessError, PlatformError
from conformance.image import AppImage, ImageLayer
from conformance.probe_record import probe_record
from conformance.profile import Profile
from conformance.shared_builds import is_shared_image, remove_image
from conformance.tomlcompat import tomllib

if TYPE_CHECKING:
    from conformance.access import PackageAccess
    from conformance.settings import Settings
    from conformance.stacks import Stack

PROBE_DIR = Path(__file__).parent / "suite" / "probe"
PROBE_ID = "bpconform/probe"
EMBEDDED, PACK = "embedded", "pack"
BACKENDS = (EMBEDDED, PACK)
# Apps whose builds must fail: their requirements are not for the wheelhouse (one names no real package)
BROKEN_ON_PURPOSE = ("missing-dependency", "invalid-version", "not-python")


class BuildFailed(Exception):
    """A build that was expected to succeed failed; carries the platform's message and output."""

    def __init__(self, app: str, message: str, output: str, exit_code: int) -> None:
        super().__init__(f"building {app} failed (exit {exit_code}): {message}")
        self.app, self.message, self.output, self.exit_code = app, message, output, exit_code


@dataclass
class Build:
    """One successful build of an app: the image plus what the build printed."""

    app: str
    app_dir: Path
    image: AppImage
    output: str
    profile: Profile
    layer_actions: dict[str, str] = field(default_factory=dict)

    @cached_property
    def probe(self) -> dict[str, Any]:
        """What the probe buildpack recorded, checked (`probe_record`): a record that is missing or
        cannot be trusted is the harness's problem, never a pass, a skip or the buildpack's FAIL."""
        return probe_record(self)

    def layer(self, role: str) -> ImageLayer | None:
        """The image's layer for a profile role (None when it is not in the image)."""
        spec = self.profile.require_role(role)  # ProfileGap when the profile has none (checks ask first)
        return self.image.layer(self.profile.buildpack_id, spec.name)

    def layer_toml(self, role: str) -> dict[str, Any] | None:
        """`<layer>.toml` as a later buildpack saw it at build time (covers non-launch layers)."""
        spec = self.profile.require_role(role)  # ProfileGap when the profile has none (checks ask first)
        escaped = self.profile.buildpack_id.replace("/", "_")
        text = self.probe.get("layer_tomls", {}).get(escaped, {}).get(spec.name)
        return None if text is None else tomllib.loads(text)


@dataclass(frozen=True)
class BuildOptions:
    """How to build an app; every field has the default a plain session build uses.

    `image`: the image name (default: a fresh name for this session); `buildpacks`: instead of the
    buildpacks under test; `with_probe`: add the probe buildpack last; `user_env`: variables for
    `<platform>/env/`; `clear_cache`: ignore the build cache; `env_order`: "sorted" or
    "lifecycle-1393" (default: the session's); `label`: the app's name in reports; `session_id`:
    the run that owns a shared image (None: this process, which removes it).
    """

    image: str | None = None
    buildpacks: tuple[Path, ...] | None = None
    with_probe: bool = True
    user_env: Mapping[str, str] = field(default_factory=dict)
    clear_cache: bool = False
    env_order: str | None = None
    label: str | None = None
    session_id: str | None = None

    @classmethod
    def of(
        cls,
        *,
        image: str | None = None,
        buildpacks: Sequence[Path] | None = None,
        with_probe: bool = True,
        user_env: Mapping[str, str] | None = None,
        clear_cache: bool = False,
        env_order: str | None = None,
        label: str | None = None,
        session_id: str | None = None,
    ) -> BuildOptions:
        """The record from keyword arguments as the fixtures take them (lists, None for empty)."""
        return cls(
            image=image,
            buildpacks=tuple(buildpacks) if buildpacks is not None else None,
            with_probe=with_probe,
            user_env=dict(user_env or {}),
            clear_cache=clear_cache,
            env_order=env_order,
            label=label,
            session_id=session_id,
        )


@dataclass(frozen=True)
class BuildJob:
    """One build, resolved: what a backend receives."""

    app_dir: Path
    image: str
    buildpacks: list[Path]
    env: dict[str, str]
    clear_cache: bool
    env_order: str
    label: str
    session_id: str | None = None  # the run that owns a shared image; None: this process


@dataclass(frozen=True)
class BackendResult:
    output: str
    layer_actions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Provisions:
    """What every build of a session shares: the stack, the runtimes and the package access."""

    stack: Stack
    runtimes_dir: Path
    access: PackageAccess | None  # None: nothing mounted, nothing added to <platform>/env (plain `bpconform build`)


class BuildBackend(Protocol):
    def build(self, job: BuildJob) -> BackendResult:
        """Build `job`; raise BuildFailed (with the output) when the build fails."""
        ...


@dataclass
class EmbeddedBackend:
    """Builds with the embedded CNB platform (`conformance.platform.creator`)."""

    provisions: Provisions
    workdir: Path

    def build(self, job: BuildJob) -> BackendResult:
        from conformance.platform.cache import BuildCache
        from conformance.platform.creator import create
        from conformance.platform_inputs import stack_build_request
        from conformance.project import ProjectError, read_project

        cache = BuildCache(self.workdir / "caches" / re.sub(r"[^A-Za-z0-9_.-]", "_", job.image))
        chunks: list[str] = []
        try:  # the app's project.toml, as `pack build` (the other backend) applies it
            project = read_project(job.app_dir)
            buildpacks = list(job.buildpacks) or project.buildpack_dirs()
        except ProjectError as exc:
            raise BuildFailed(job.label, exc.message, "", 1) from None
        try:
            result = create(
                stack_build_request(
                    image=job.image,
                    app_dir=job.app_dir,
                    buildpacks=buildpacks,
                    stack=self.provisions.stack,
                    access=self.provisions.access,
                    runtimes_dir=self.provisions.runtimes_dir,
                    user_env=project.build_env(job.env),
                    app_filter=project.copy_filter,
                    env_order=job.env_order,
                    cache=cache,
                    clear_cache=job.clear_cache,
                    on_output=chunks.append,
                    session_id=job.session_id,
                )
            )
        except PlatformError as exc:
            output = "".join(chunks) or exc.build_output
            if engine_fault(exc):
                raise HarnessError(
                    f"building {job.label} failed for a reason outside the buildpack: {exc.message}",
                    "the Docker engine failed, restarted or killed the build container; this is not the buildpack's"
                    " fault: check the engine (`docker info`) and run again",
                ) from None
            raise BuildFailed(job.label, exc.message, output, exc.exit_code) from None
        return BackendResult(result.output, {f"{r.buildpack_id}:{r.name}": r.action for r in result.layers})


def engine_fault(error: PlatformError) -> bool:
    """Whether a failed build failed because of the engine, not the buildpack: the platform says so
    (`harness_fault`), the build container was stopped from outside (an engine restart, `docker
    kill`), or the engine no longer answers."""
    if getattr(error, "harness_fault", False) or "stopped from outside" in error.message:
        return True
    try:
        ensure_engine(auto_start=False).ping()
    except Exception:
        return True
    return False


@dataclass
class PackBackend:
    """Drives the real `pack` CLI: same app, buildpacks, env and package access as the embedded run."""

    provisions: Provisions
    builder: str | None
    lifecycle_image: str | None

    def build(self, job: BuildJob) -> BackendResult:
        if job.env_order != "sorted":
            pytest.skip("lifecycle emulation is an embedded-platform setting; with pack, pick a --lifecycle-image")
        pack = shutil.which("pack")
        if pack is None or not self.builder:
            raise pytest.UsageError(
                "bpconform: --platform pack needs the `pack` CLI on PATH and --builder IMAGE"
                " (use --platform embedded when neither is available)"
            )
        access = self.provisions.access
        command = [pack, "build", job.image, "--path", str(job.app_dir), "--builder", self.builder]
        command += ["--pull-policy", "if-not-present", "--trust-builder"]
        if self.lifecycle_image:
            command += ["--lifecycle-image", self.lifecycle_image]
        for buildpack in job.buildpacks:
            command += ["--buildpack", str(buildpack)]
        for name, value in {**(access.platform_env() if access else {}), **job.env}.items():
            command += ["--env", f"{name}={value}"]
        for mount in access.mounts() if access else ():
            command += ["--volume", f"{mount.source}:{mount.target}:{'ro' if mount.read_only else 'rw'}"]
        command += ["--volume", f"{self.provisions.runtimes_dir}:/bpconform/runtimes:ro"]
        if job.clear_cache:
            command.append("--clear-cache")
        proc = subprocess.run(command, capture_output=True, text=True)
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise BuildFailed(job.label, f"pack build exited with {proc.returncode}", output, proc.returncode)
        return BackendResult(output)


class AppBuilder:
    """A test session's builder of app images, on the backend the settings choose."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self._backend: BuildBackend | None = None
        self._counter = 0
        self.images: set[str] = set()  # this process's images, not the run's shared ones

    def _prepare(self) -> BuildBackend:
        """Stack, runtimes and package access, made (or found current) once per session."""
        if self._backend is not None:
            return self._backend
        from conformance import access, runtimes, stacks
        from conformance.base_images import stack_for

        ensure_engine()
        stack = stack_for(self.settings.stack_name, self.settings.build_image, self.settings.run_image)
        if stack.name in stacks.STACK_NAMES:  # our runtimes exist for our distros only
            runtimes.ensure_default_runtimes(stack.name)
        if self.settings.online:
            package_access = access.online(self.settings.ca_bundle)
        else:
            apps = self.settings.profile.apps
            broken = [apps[purpose] for purpose in BROKEN_ON_PURPOSE if purpose in apps]
            package_access = access.offline(access.ensure_apps_wheelhouse(self.settings.apps_dir, exclude=broken))
        provisions = Provisions(stack, runtimes.runtimes_dir(), package_access)
        if self.settings.platform == PACK:
            self._backend = PackBackend(provisions, self.settings.builder, self.settings.lifecycle_image)
        else:
            self._backend = EmbeddedBackend(provisions, self.workdir)
        return self._backend

    def image_name(self, label: str) -> str:
        self._counter += 1
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "app"
        return f"bpconform-app/{slug}-{self._counter}:{SESSION_ID}"

    def build(
        self,
        app_dir: Path,
        options: BuildOptions | None = None,
        *,
        image: str | None = None,
        buildpacks: Sequence[Path] | None = None,
        with_probe: bool = True,
        user_env: Mapping[str, str] | None = None,
        clear_cache: bool = False,
        env_order: str | None = None,
        label: str | None = None,
        session_id: str | None = None,
    ) -> Build:
        """Build `app_dir` (never modified); raises BuildFailed with the output when it fails.

        Give either a `BuildOptions` record or its fields as keywords. With `session_id` the image
        belongs to that session (a run shared by workers), which removes it; without, to this
        builder, which removes it in `remove_images`.
        """
        if options is None:
            options = BuildOptions.of(
                image=image,
                buildpacks=buildpacks,
                with_probe=with_probe,
                user_env=user_env,
                clear_cache=clear_cache,
                env_order=env_order,
                label=label,
                session_id=session_id,
            )
        return self.build_with(app_dir, options)

    def build_with(self, app_dir: Path, options: BuildOptions) -> Build:
        backend = self._prepare()
        label = options.label or app_dir.name
        image = options.image or self.image_name(label)
        chosen = list(options.buildpacks or self.settings.buildpacks) + ([PROBE_DIR] if options.with_probe else [])
        env = {"BPCONFORM_PROBE_IMPORT": first_requirement(app_dir)} if options.with_probe else {}
        env.update(options.user_env)
        if options.session_id is None:
            self.images.add(image)
        order = options.env_order or self.settings.env_order
        job = BuildJob(app_dir, image, chosen, env, options.clear_cache, order, label, options.session_id)
        result = backend.build(job)
        return Build(
            app=label,
            app_dir=app_dir,
            image=AppImage.load(image),
            output=result.output,
            profile=self.settings.profile,
            layer_actions=dict(result.layer_actions),
        )

    def rebuild(self, previous: Build, app_dir: Path | None = None, options: BuildOptions | None = None) -> Build:
        """Build again under the same image name, so the previous image and cache are reused."""
        if is_shared_image(previous.image.reference):  # other tests, maybe in other workers, use it as it is
            raise ConformanceError(
                f"the build of {previous.app} from built_app is shared by the whole test run and must not be rebuilt",
                "rebuild a private build instead: `first = build_app(app_dir(name))`, then `rebuild(first)`",
            )
        options = replace(options or BuildOptions(), image=previous.image.reference, label=previous.app)
        return self.build_with(app_dir or previous.app_dir, options)

    def remove_images(self) -> None:
        """Images of this session (pack does not label them, so they are removed by name)."""
        for image in self.images:
            remove_image(image)


def first_requirement(app_dir: Path) -> str:
    """The module the probe imports: the app's first requirement (a name like `six`)."""
    requirements = app_dir / "requirements.txt"
    if not requirements.is_file():
        return ""
    for line in requirements.read_text().splitlines():
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match and not line.lstrip().startswith("#") and match.group(1).lower() != "pip":
            return match.group(1).lower().replace("-", "_")
    return ""
