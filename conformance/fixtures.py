"""Fixtures: build sample apps into images once per session, rebuild them, and read the results.

A test asks for an app by name (`built_app("minimal")`) and gets a `Build`: the image, the build
output and, when the probe buildpack ran after the buildpacks under test, what a later buildpack
saw at build time. Builds are shared by every test in the run, also across pytest-xdist workers
(`conformance.shared_builds`); scenarios that change an app or rebuild use `build_app`, which gives
each test its own image name and cache.

The builder and its backends live in `conformance.backends`, the run's settings in
`conformance.settings`; their names are re-exported here for checks written against this module.
An input a check needs that is missing (an app dir) raises `MissingInput`: an ERROR, never a skip.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from conformance.backends import (
    PROBE_DIR,
    PROBE_ID,
    AppBuilder,
    Build,
    BuildFailed,
    BuildOptions,
    first_requirement,
)
from conformance.engine import SESSION_ID
from conformance.errors import ConformanceError, MissingInput
from conformance.image import AppImage
from conformance.paths import cache_dir
from conformance.probe_record import PROBE_RECORD
from conformance.profile import Profile
from conformance.settings import DEFAULT_STACK, Settings, settings_of
from conformance.shared_builds import SESSIONS_DIR, BuildRecord, SharedBuilds, remove_image, run_id

Platform = AppBuilder  # the old name of the session's builder
_first_requirement = first_requirement  # the old name, used by checks

BUILD_OUTPUTS = pytest.StashKey[list[tuple[str, str]]]()  # per test: (label, output) of its private builds


def record_build_output(node: pytest.Item, label: str, output: str) -> None:
    """Keep a build's output with the test, so a failure of the test shows it (plugin.py)."""
    node.stash.setdefault(BUILD_OUTPUTS, []).append((label, output))


def build_outputs(node: pytest.Item) -> list[tuple[str, str]]:
    """The outputs recorded for `node` with `record_build_output`."""
    return list(node.stash.get(BUILD_OUTPUTS, []))


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


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def conformance_settings(pytestconfig: pytest.Config) -> Settings:
    try:
        return settings_of(pytestconfig)
    except ConformanceError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="session")
def profile(conformance_settings: Settings) -> Profile:
    return conformance_settings.profile


@pytest.fixture(scope="session")
def app_builder(conformance_settings: Settings) -> Iterator[AppBuilder]:
    """The session's builder of app images (on the embedded platform or pack)."""
    workdir = cache_dir(SESSIONS_DIR) / SESSION_ID
    workdir.mkdir(parents=True, exist_ok=True)
    builder = AppBuilder(conformance_settings, workdir)
    try:
        yield builder
    finally:
        builder.remove_images()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def platform(app_builder: AppBuilder) -> AppBuilder:
    """The old name of `app_builder`."""
    return app_builder


def find_app(settings: Settings, name: str) -> Path:
    """The directory of a sample app by name (or profile purpose); missing is an input error."""
    path = settings.apps_dir / settings.profile.apps.get(name, name)
    if not path.is_dir():
        raise MissingInput(
            f"sample app {name!r} is not a directory: {path}",
            "put the app there, or pass --apps DIR (or set apps-dir and [apps] in your profile) to name the"
            " directory that holds it",
        )
    return path


@pytest.fixture(scope="session")
def app_dir(conformance_settings: Settings) -> Callable[[str], Path]:
    """The directory of a sample app by name (or profile purpose); a missing one is an ERROR."""

    def find(name: str) -> Path:
        return find_app(conformance_settings, name)

    return find


@pytest.fixture(scope="session")
def built_app(
    app_builder: AppBuilder, app_dir: Callable[[str], Path], pytestconfig: pytest.Config
) -> Callable[[str], Build]:
    """Build a sample app once per test run and share the image, failures included: with pytest-xdist
    the first worker to ask builds it and the others use its image (`conformance.shared_builds`)."""
    shared = SharedBuilds(run_id(pytestconfig))
    outcomes: dict[str, Build | BuildFailed] = {}

    def get(name: str) -> Build:
        if name not in outcomes:
            source = app_dir(name)
            record = shared.obtain(name, lambda image: _shared_build(app_builder, source, image, shared.run_id))
            outcomes[name] = build_outcome(record, app_builder.settings.profile)
        outcome = outcomes[name]
        if isinstance(outcome, BuildFailed):
            raise outcome
        return outcome

    return get


def _shared_build(builder: AppBuilder, app_dir: Path, image: str, run: str) -> BuildRecord:
    """Build `app_dir` afresh into the run's shared `image` (owned by the run, not this process)."""
    remove_image(image)  # a half-made one, left by a process that died building it, would count as a previous build
    try:
        return build_record(builder.build_with(app_dir, BuildOptions(image=image, session_id=run)), app_dir)
    except BuildFailed as exc:
        return build_record(exc, app_dir)


class BuildAppFn:
    """`build_app(app, ...)`: a private build of an app dir, its output kept with the test."""

    def __init__(self, builder: AppBuilder, node: pytest.Item) -> None:
        self.builder, self.node = builder, node

    def __call__(
        self,
        app: Path,
        options: BuildOptions | None = None,
        *,
        buildpacks: Sequence[Path] | None = None,
        with_probe: bool = True,
        user_env: Mapping[str, str] | None = None,
        clear_cache: bool = False,
        env_order: str | None = None,
        label: str | None = None,
    ) -> Build:
        options = options or BuildOptions.of(
            buildpacks=buildpacks,
            with_probe=with_probe,
            user_env=user_env,
            clear_cache=clear_cache,
            env_order=env_order,
            label=label,
        )
        result = self.builder.build_with(app, options)
        record_build_output(self.node, result.app, result.output)
        return result


class RebuildFn:
    """`rebuild(previous, app_dir=None, ...)`: the same image name again, so image and cache are reused."""

    def __init__(self, builder: AppBuilder, node: pytest.Item) -> None:
        self.builder, self.node = builder, node

    def __call__(
        self,
        previous: Build,
        app_dir: Path | None = None,
        options: BuildOptions | None = None,
        *,
        buildpacks: Sequence[Path] | None = None,
        with_probe: bool = True,
        user_env: Mapping[str, str] | None = None,
        clear_cache: bool = False,
        env_order: str | None = None,
    ) -> Build:
        options = options or BuildOptions.of(
            buildpacks=buildpacks,
            with_probe=with_probe,
            user_env=user_env,
            clear_cache=clear_cache,
            env_order=env_order,
        )
        result = self.builder.rebuild(previous, app_dir, options)
        record_build_output(self.node, f"rebuild of {previous.app}", result.output)
        return result


@pytest.fixture
def build_app(app_builder: AppBuilder, request: pytest.FixtureRequest) -> BuildAppFn:
    """Build an app dir with its own image name and cache; outputs are attached to failures."""
    return BuildAppFn(app_builder, request.node)


@pytest.fixture
def rebuild(app_builder: AppBuilder, request: pytest.FixtureRequest) -> RebuildFn:
    return RebuildFn(app_builder, request.node)


class BuildFailureFn:
    """`build_failure(app, ...)`: build an app that must fail; returns the failure."""

    def __init__(self, builder: AppBuilder) -> None:
        self.builder = builder

    def __call__(
        self,
        app: Path,
        options: BuildOptions | None = None,
        *,
        buildpacks: Sequence[Path] | None = None,
        with_probe: bool = True,
        user_env: Mapping[str, str] | None = None,
        label: str | None = None,
    ) -> BuildFailed:
        options = options or BuildOptions.of(
            buildpacks=buildpacks, with_probe=with_probe, user_env=user_env, label=label
        )
        try:
            self.builder.build_with(app, options)
        except BuildFailed as exc:
            return exc
        pytest.fail(f"building {app.name} succeeded, but it must fail")


@pytest.fixture
def build_failure(app_builder: AppBuilder) -> BuildFailureFn:
    """Build an app that must fail, returning the failure (its message, output and exit code)."""
    return BuildFailureFn(app_builder)


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
        raise MissingInput(
            f"--previous-buildpack {ref}: {buildpack} is not in a git repository, so {ref!r} names nothing",
            "pass the previous release's buildpack directory instead, or run from the buildpack's git checkout",
        )
    relative = buildpack.resolve().relative_to(Path(top.stdout.strip()).resolve())
    archive = subprocess.run(
        ["git", "-C", top.stdout.strip(), "archive", "--format=tar", ref, "--", str(relative)], capture_output=True
    )
    if archive.returncode != 0:
        raise MissingInput(
            f"--previous-buildpack {ref}: git archive failed: {archive.stderr.decode().strip()}",
            "pass a ref that exists in the buildpack's repository (a tag such as v0.1.0, or a commit)",
        )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest / relative


__all__ = [
    "DEFAULT_STACK",
    "PROBE_DIR",
    "PROBE_ID",
    "PROBE_RECORD",
    "AppBuilder",
    "Build",
    "BuildFailed",
    "BuildOptions",
    "Platform",
    "Settings",
    "app_builder",
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
