"""Fixtures: build sample apps into images once per session, rebuild them, and read the results.

A test asks for an app by name (`built_app("minimal")`) and gets a `Build`: the image, the build
output and, when the probe buildpack ran after the buildpacks under test, what a later buildpack
saw at build time. Builds are shared by every test in the run, also across pytest-xdist workers
(`conformance.shared_builds`); scenarios that change an app or rebuild use `build_app`, which gives
each test its own image name and cache.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from conformance.engine import SESSION_ID, ensure_engine
from conformance.errors import ConformanceError, PlatformError
from conformance.image import AppImage, ImageLayer
from conformance.paths import REPO_ROOT, cache_dir
from conformance.profile import Profile, load_profile
from conformance.shared_builds import (
    SESSIONS_DIR,
    BuildRecord,
    SharedBuilds,
    is_shared_image,
    remove_image,
    run_id,
)
from conformance.tomlcompat import tomllib

PROBE_DIR = Path(__file__).parent / "suite" / "probe"
PROBE_ID = "bpconform/probe"
PROBE_RECORD = "/layers/bpconform_probe/record/record.json"
DEFAULT_STACK = "bookworm"


class BuildFailed(Exception):
    """A build that was expected to succeed failed; carries the platform's message and output."""

    def __init__(self, app: str, message: str, output: str, exit_code: int) -> None:
        super().__init__(f"building {app} failed (exit {exit_code}): {message}")
        self.app, self.message, self.output, self.exit_code = app, message, output, exit_code


@dataclass(frozen=True)
class Settings:
    buildpacks: tuple[Path, ...]
    stack_name: str
    platform: str
    profile: Profile
    online: bool
    ca_bundle: Path | None
    env_order: str
    apps_dir: Path
    builder: str | None
    lifecycle_image: str | None

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
        return cls(
            buildpacks=tuple(_resolve(root, p) for p in buildpacks),
            stack_name=option("stack", DEFAULT_STACK),
            platform=option("platform", "embedded"),
            profile=load_profile(option("profile", "reference")),
            online=bool(config.getoption("bpconform_online", default=None)),
            ca_bundle=_resolve(root, option("ca_bundle")) if option("ca_bundle") else None,
            env_order="lifecycle-1393" if config.getoption("bpconform_emulate_1393", default=False) else "sorted",
            apps_dir=_resolve(root, option("apps")) if option("apps") else REPO_ROOT / "testapps",
            builder=option("builder"),
            lifecycle_image=option("lifecycle_image"),
        )


def _resolve(root: Path, value: str | Path) -> Path:
    path = Path(value)
    if not path.is_absolute():
        path = (Path.cwd() / path) if (Path.cwd() / path).exists() else (root / path)
    return path.resolve()


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
        text = self.image.read_file(PROBE_RECORD)
        if text is None:
            pytest.skip("the probe buildpack did not run in this build")
        return json.loads(text)

    def layer(self, role: str) -> ImageLayer | None:
        """The image's layer for a profile role (None when it is not in the image)."""
        spec = self.profile.require_role(role)
        return self.image.layer(self.profile.buildpack_id, spec.name)

    def layer_toml(self, role: str) -> dict[str, Any] | None:
        """`<layer>.toml` as a later buildpack saw it at build time (covers non-launch layers)."""
        spec = self.profile.require_role(role)
        escaped = self.profile.buildpack_id.replace("/", "_")
        text = self.probe.get("layer_tomls", {}).get(escaped, {}).get(spec.name)
        return None if text is None else tomllib.loads(text)


def build_record(outcome: Build | BuildFailed, app_dir: Path) -> BuildRecord:
    """What another process needs to share this build or failure (`build_outcome` reverses it)."""
    if isinstance(outcome, BuildFailed):
        return BuildRecord(
            app=outcome.app,
            app_dir=str(app_dir),
            output=outcome.output,
            failure=outcome.message,
            exit_code=outcome.exit_code,
            built_by=SESSION_ID,
        )
    return BuildRecord(
        app=outcome.app,
        app_dir=str(app_dir),
        image=outcome.image.reference,
        output=outcome.output,
        layer_actions=dict(outcome.layer_actions),
        built_by=SESSION_ID,
    )


def build_outcome(record: BuildRecord, profile: Profile) -> Build | BuildFailed:
    if record.failure is not None:
        return BuildFailed(record.app, record.failure, record.output, record.exit_code)
    return Build(
        app=record.app,
        app_dir=Path(record.app_dir),
        image=AppImage.load(record.image),
        output=record.output,
        profile=profile,
        layer_actions=dict(record.layer_actions),
    )


@dataclass(frozen=True)
class _BuildJob:
    """One build, as either backend (embedded or pack) receives it."""

    app_dir: Path
    image: str
    buildpacks: list[Path]
    env: dict[str, str]
    clear_cache: bool
    env_order: str
    label: str
    session_id: str | None = None  # the run that owns a shared image; None: this process


class Platform:
    """Builds apps for a test session with the embedded platform (or `pack`)."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self._stack = None
        self._access = None
        self._runtimes_dir: Path | None = None
        self._counter = 0
        self.images: set[str] = set()  # this process's images, not the run's shared ones

    def _prepare(self) -> None:
        if self._stack is not None:
            return
        from conformance import access, runtimes, stacks

        ensure_engine()
        self._stack = stacks.ensure_stack(self.settings.stack_name)
        runtimes.ensure_default_runtimes(self.settings.stack_name)
        self._runtimes_dir = runtimes.runtimes_dir()
        if self.settings.online:
            self._access = access.online(self.settings.ca_bundle)
        else:
            self._access = access.offline(access.ensure_sample_wheelhouse())

    def image_name(self, label: str) -> str:
        self._counter += 1
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "app"
        return f"bpconform-app/{slug}-{self._counter}:{SESSION_ID}"

    def build(
        self,
        app_dir: Path,
        *,
        image: str | None = None,
        buildpacks: list[Path] | None = None,
        with_probe: bool = True,
        user_env: dict[str, str] | None = None,
        clear_cache: bool = False,
        env_order: str | None = None,
        label: str | None = None,
        session_id: str | None = None,
    ) -> Build:
        """Build `app_dir` (never modified); raises BuildFailed with the output when it fails.

        With `session_id` the image belongs to that session (a run shared by workers), which removes
        it; without, to this platform, which removes it in `remove_images`.
        """
        self._prepare()
        label = label or app_dir.name
        image = image or self.image_name(label)
        chosen = list(buildpacks or self.settings.buildpacks) + ([PROBE_DIR] if with_probe else [])
        env = {"BPCONFORM_PROBE_IMPORT": _first_requirement(app_dir)} if with_probe else {}
        env.update(user_env or {})
        if session_id is None:
            self.images.add(image)
        order = env_order or self.settings.env_order
        job = _BuildJob(app_dir, image, chosen, env, clear_cache, order, label, session_id)
        if self.settings.platform == "pack":
            output, actions = self._pack_build(job), {}
        else:
            output, actions = self._embedded_build(job)
        return Build(
            app=label,
            app_dir=app_dir,
            image=AppImage.load(image),
            output=output,
            profile=self.settings.profile,
            layer_actions=actions,
        )

    def _embedded_build(self, job: _BuildJob) -> tuple[str, dict[str, str]]:
        from conformance.platform.cache import BuildCache
        from conformance.platform.creator import BuildRequest, create

        cache = BuildCache(self.workdir / "caches" / re.sub(r"[^A-Za-z0-9_.-]", "_", job.image))
        chunks: list[str] = []
        try:
            result = create(
                BuildRequest(
                    image=job.image,
                    app_dir=job.app_dir,
                    buildpacks=job.buildpacks,
                    stack=self._stack,
                    access=self._access,
                    runtimes_dir=self._runtimes_dir,
                    user_env=job.env,
                    env_order=job.env_order,
                    cache=cache,
                    clear_cache=job.clear_cache,
                    on_output=chunks.append,
                    session_id=job.session_id,
                )
            )
        except PlatformError as exc:
            raise BuildFailed(job.label, exc.message, "".join(chunks), exc.exit_code) from None
        return result.output, {f"{r.buildpack_id}:{r.name}": r.action for r in result.layers}

    def _pack_build(self, job: _BuildJob) -> str:
        """Drive the real `pack` CLI: same app, buildpacks, env and package access as the embedded run."""
        if job.env_order != "sorted":
            pytest.skip("lifecycle emulation is an embedded-platform setting; with pack, pick a --lifecycle-image")
        pack = shutil.which("pack")
        if pack is None or not self.settings.builder:
            raise pytest.UsageError(
                "bpconform: --platform pack needs the `pack` CLI on PATH and --builder IMAGE"
                " (use --platform embedded when neither is available)"
            )
        command = [pack, "build", job.image, "--path", str(job.app_dir), "--builder", self.settings.builder]
        command += ["--pull-policy", "if-not-present", "--trust-builder"]
        if self.settings.lifecycle_image:
            command += ["--lifecycle-image", self.settings.lifecycle_image]
        for buildpack in job.buildpacks:
            command += ["--buildpack", str(buildpack)]
        for name, value in {**(self._access.platform_env() if self._access else {}), **job.env}.items():
            command += ["--env", f"{name}={value}"]
        for mount in self._access.mounts() if self._access else []:
            command += ["--volume", f"{mount.source}:{mount.target}:{'ro' if mount.read_only else 'rw'}"]
        if self._runtimes_dir is not None:
            command += ["--volume", f"{self._runtimes_dir}:/bpconform/runtimes:ro"]
        if job.clear_cache:
            command.append("--clear-cache")
        proc = subprocess.run(command, capture_output=True, text=True)
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise BuildFailed(job.label, f"pack build exited with {proc.returncode}", output, proc.returncode)
        return output

    def remove_images(self) -> None:
        """Images of this session (pack does not label them, so they are removed by name)."""
        for image in self.images:
            remove_image(image)

    def rebuild(self, previous: Build, app_dir: Path | None = None, **kwargs: Any) -> Build:
        """Build again under the same image name, so the previous image and cache are reused."""
        if is_shared_image(previous.image.reference):  # other tests, maybe in other workers, use it as it is
            raise ConformanceError(
                f"the build of {previous.app} from built_app is shared by the whole test run and must not be rebuilt",
                "rebuild a private build instead: `first = build_app(app_dir(name))`, then `rebuild(first)`",
            )
        return self.build(app_dir or previous.app_dir, image=previous.image.reference, label=previous.app, **kwargs)


def _first_requirement(app_dir: Path) -> str:
    """The module the probe imports: the app's first requirement (a name like `six`)."""
    requirements = app_dir / "requirements.txt"
    if not requirements.is_file():
        return ""
    for line in requirements.read_text().splitlines():
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match and not line.lstrip().startswith("#") and match.group(1).lower() != "pip":
            return match.group(1).lower().replace("-", "_")
    return ""


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def conformance_settings(pytestconfig: pytest.Config) -> Settings:
    try:
        return Settings.from_config(pytestconfig)
    except ConformanceError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="session")
def profile(conformance_settings: Settings) -> Profile:
    return conformance_settings.profile


@pytest.fixture(scope="session")
def platform(conformance_settings: Settings) -> Iterator[Platform]:
    workdir = cache_dir(SESSIONS_DIR) / SESSION_ID
    workdir.mkdir(parents=True, exist_ok=True)
    session_platform = Platform(conformance_settings, workdir)
    try:
        yield session_platform
    finally:
        session_platform.remove_images()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def app_dir(conformance_settings: Settings) -> Callable[[str], Path]:
    """The directory of a sample app by name (or profile purpose)."""

    def find(name: str) -> Path:
        path = conformance_settings.apps_dir / conformance_settings.profile.apps.get(name, name)
        if not path.is_dir():
            pytest.skip(f"sample app {name!r} not found in {conformance_settings.apps_dir}")
        return path

    return find


@pytest.fixture(scope="session")
def built_app(
    platform: Platform, app_dir: Callable[[str], Path], pytestconfig: pytest.Config
) -> Callable[[str], Build]:
    """Build a sample app once per test run and share the image, failures included: with pytest-xdist
    the first worker to ask builds it and the others use its image (`conformance.shared_builds`)."""
    shared = SharedBuilds(run_id(pytestconfig))
    outcomes: dict[str, Build | BuildFailed] = {}

    def get(name: str) -> Build:
        if name not in outcomes:
            source = app_dir(name)
            record = shared.obtain(name, lambda image: _shared_build(platform, source, image, shared.run_id))
            outcomes[name] = build_outcome(record, platform.settings.profile)
        outcome = outcomes[name]
        if isinstance(outcome, BuildFailed):
            raise outcome
        return outcome

    return get


def _shared_build(platform: Platform, app_dir: Path, image: str, run: str) -> BuildRecord:
    """Build `app_dir` afresh into the run's shared `image` (owned by the run, not this process)."""
    remove_image(image)  # a half-made one, left by a process that died building it, would count as a previous build
    try:
        return build_record(platform.build(app_dir, image=image, session_id=run), app_dir)
    except BuildFailed as exc:
        return build_record(exc, app_dir)


@pytest.fixture
def build_app(platform: Platform, request: pytest.FixtureRequest) -> Callable[..., Build]:
    """Build an app dir with its own image name and cache; outputs are attached to failures."""
    outputs: list[tuple[str, str]] = []
    request.node._bpconform_build_outputs = outputs

    def build(app: Path, **kwargs: Any) -> Build:
        result = platform.build(app, **kwargs)
        outputs.append((result.app, result.output))
        return result

    return build


@pytest.fixture
def rebuild(platform: Platform, request: pytest.FixtureRequest) -> Callable[..., Build]:
    def again(previous: Build, app_dir: Path | None = None, **kwargs: Any) -> Build:
        result = platform.rebuild(previous, app_dir, **kwargs)
        getattr(request.node, "_bpconform_build_outputs", []).append((f"rebuild of {previous.app}", result.output))
        return result

    return again


@pytest.fixture
def build_failure(platform: Platform) -> Callable[..., BuildFailed]:
    """Build an app that must fail, returning the failure (its message, output and exit code)."""

    def fail(app: Path, **kwargs: Any) -> BuildFailed:
        try:
            platform.build(app, **kwargs)
        except BuildFailed as exc:
            return exc
        pytest.fail(f"building {app.name} succeeded, but it must fail")

    return fail


@pytest.fixture
def app_copy(app_dir: Callable[[str], Path], tmp_path: Path) -> Callable[[str], Path]:
    """A private, modifiable copy of a sample app (the original is never touched)."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(app_dir(name), target, symlinks=True)
        return target

    return copy


@pytest.fixture
def buildpack_copy(conformance_settings: Settings, tmp_path: Path) -> Callable[[], Path]:
    """A private copy of the (first) buildpack under test, e.g. to bump a pinned version."""

    def copy() -> Path:
        target = tmp_path / "buildpack"
        shutil.copytree(conformance_settings.buildpacks[0], target, symlinks=True)
        return target

    return copy


@pytest.fixture(scope="session")
def previous_buildpack(conformance_settings: Settings, pytestconfig: pytest.Config, tmp_path_factory) -> Path:
    """The previous release of the buildpack: `--previous-buildpack` as a directory or a git ref.

    Without the option, the candidate itself: the upgrade check then proves a same-version rebuild
    reuses or explains every cached layer.
    """
    value = pytestconfig.getoption("bpconform_previous_buildpack", default=None)
    candidate = conformance_settings.buildpacks[0]
    if not value:
        return candidate
    if Path(value).is_dir():
        return Path(value).resolve()
    return export_git_ref(candidate, value, tmp_path_factory.mktemp("previous-buildpack"))


def export_git_ref(buildpack: Path, ref: str, dest: Path) -> Path:
    """The buildpack directory as it was at `ref` in its git repository (read-only use of the repo)."""
    top = subprocess.run(["git", "-C", str(buildpack), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if top.returncode != 0:
        raise pytest.UsageError(f"--previous-buildpack {ref}: {buildpack} is not in a git repository")
    relative = buildpack.resolve().relative_to(Path(top.stdout.strip()).resolve())
    archive = subprocess.run(
        ["git", "-C", top.stdout.strip(), "archive", "--format=tar", ref, "--", str(relative)], capture_output=True
    )
    if archive.returncode != 0:
        raise pytest.UsageError(f"--previous-buildpack {ref}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest / relative


__all__ = [
    "Build",
    "BuildFailed",
    "Platform",
    "Settings",
    "app_copy",
    "app_dir",
    "build_app",
    "build_failure",
    "buildpack_copy",
    "built_app",
    "conformance_settings",
    "platform",
    "previous_buildpack",
    "profile",
    "rebuild",
]
