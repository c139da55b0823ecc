"""uv and Poetry apps built by the reference buildpack on the real embedded platform (offline, with
the wheelhouse): what runs at launch, the cached venv's reuse and discard, and the failure apps.

The uv app (cold build, then a rebuild) and the quick failure apps run in `make test`; the scenarios
that add full cold builds (Python-version change, removed dependency, Poetry, the Poetry stale lock)
are marked slow.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conformance import access, runtimes
from conformance.engine import ensure_engine
from conformance.errors import PlatformError
from conformance.image import AppImage
from conformance.paths import REPO_ROOT
from conformance.platform.cache import BuildCache
from conformance.platform.creator import BuildResult, create
from conformance.platform_inputs import stack_build_request
from conformance.stacks import Stack, ensure_stack

pytestmark = pytest.mark.docker

APPS = REPO_ROOT / "testapps"
BUILDPACK = REPO_ROOT / "buildpack_under_test"
SESSION = uuid.uuid4().hex[:8]
# What must not be there at launch, for every package manager: (command, what a broken image prints).
ABSENT_COMMANDS = ("pip", "pip3", "uv", "poetry")
ABSENT_MODULES = ("pip", "uv", "poetry", "idna")  # idna: the apps' dev dependency
PROBE = (
    "import importlib.util, shutil, six\n"
    "print('six', six.__version__)\n"
    f"print('modules', [m for m in {ABSENT_MODULES!r} if importlib.util.find_spec(m)])\n"
    f"print('commands', [c for c in {ABSENT_COMMANDS!r} if shutil.which(c)])\n"
)


@dataclass
class Builds:
    """Builds sample apps offline; removes every image it named when the module is done."""

    stack: Stack
    wheelhouse: Path
    work: Path
    images: list[str] = field(default_factory=list)

    def build(self, app: Path, name: str, cache: BuildCache, user_env: dict[str, str] | None = None) -> BuildResult:
        image = f"bpconform-lockfile-it/{name}:{SESSION}"
        if image not in self.images:
            self.images.append(image)
        return create(
            stack_build_request(
                image=image,
                app_dir=app,
                buildpacks=[BUILDPACK],
                stack=self.stack,
                access=access.offline(self.wheelhouse),
                runtimes_dir=runtimes.runtimes_dir(),
                user_env=user_env or {},
                cache=cache,
                on_output=lambda _text: None,
                timeout=900.0,
            )
        )

    def failure(self, app: str, user_env: dict[str, str] | None = None) -> str:
        with pytest.raises(PlatformError) as caught:
            self.build(APPS / app, app, BuildCache(self.work / f"cache-{app}"), user_env)
        return caught.value.build_output or str(caught.value)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Builds]:
    stack = ensure_stack("bookworm")
    runtimes.ensure_default_runtimes("bookworm")
    made = Builds(stack, access.ensure_sample_wheelhouse(), tmp_path_factory.mktemp("lockfile-apps"))
    yield made
    client = ensure_engine()
    for image in made.images:
        with contextlib.suppress(Exception):  # a failed build made no image
            client.images.remove(image)


def layer_actions(result: BuildResult) -> dict[str, tuple[dict[str, bool], str]]:
    return {layer.name: (layer.types, layer.action) for layer in result.layers}


def assert_launch_has_only_the_app_dependencies(result: BuildResult) -> None:
    run = AppImage.load(result.image).run(["python", "-c", PROBE])
    assert run.exit_code == 0, run.output
    assert "six 1.17.0" in run.output, f"the runtime dependency does not import at launch:\n{run.output}"
    assert "modules []" in run.output, f"build tools or dev dependencies importable at launch:\n{run.output}"
    assert "commands []" in run.output, f"pip/uv/poetry on PATH at launch:\n{run.output}"
    for command in (["pip", "--version"], ["uv", "--version"], ["poetry", "--version"]):
        missing = AppImage.load(result.image).run(command)
        assert missing.exit_code != 0 and "not found" in missing.output.lower(), (command, missing.output)
    restored = AppImage.load(result.image).run(
        ["sh", "-c", "python -m ensurepip --default-pip >/dev/null && pip --version"]
    )
    assert restored.exit_code == 0 and "pip " in restored.output, f"ensurepip did not restore pip:\n{restored.output}"


def test_uv_app_builds_runs_and_reuses_its_venv(builds: Builds) -> None:
    cache = BuildCache(builds.work / "cache-uv")
    first = builds.build(APPS / "uv", "uv", cache)
    assert "No cached virtual environment found; creating a new virtual environment" in first.output
    assert "Running uv sync --locked --no-default-groups" in first.output
    layers = layer_actions(first)
    assert layers["uv"][0] == {"build": True, "launch": False, "cache": True}, layers
    assert layers["venv"][0] == {"build": True, "launch": True, "cache": True}, layers
    assert layers["uv-cache"][0] == {"build": True, "launch": False, "cache": False}, layers
    assert "pip" not in layers, f"a uv app must not get a pip layer: {sorted(layers)}"
    assert_launch_has_only_the_app_dependencies(first)

    second = builds.build(APPS / "uv", "uv", cache)
    assert "Using cached uv 0.13.9" in second.output and "Using cached virtual environment" in second.output, (
        second.output[-3000:]
    )


@pytest.mark.slow
def test_python_version_change_discards_the_uv_venv(builds: Builds) -> None:
    app = builds.work / "uv-pinned"
    shutil.copytree(APPS / "uv", app)
    cache = BuildCache(builds.work / "cache-uv-pinned")
    builds.build(app, "uv-pinned", cache)
    (app / ".python-version").write_text("3.11\n")
    changed = builds.build(app, "uv-pinned", cache)
    assert (
        "Discarding cached virtual environment since: The Python version has changed from 3.13.5 to 3.11.2"
        in changed.output
    ), changed.output[-3000:]
    assert "Using cached uv 0.13.9" in changed.output  # uv's binary does not depend on the Python version
    run = AppImage.load(changed.image).run(["python", "-c", "import sys, six; print(sys.version_info[:2])"])
    assert run.exit_code == 0 and "(3, 11)" in run.output, run.output


@pytest.mark.slow
def test_dependency_removed_from_the_lock_is_gone_after_the_rebuild(builds: Builds) -> None:
    cache = BuildCache(builds.work / "cache-uv-removed")
    builds.build(APPS / "uv", "uv-removed", cache)
    removed = builds.build(APPS / "uv-removed-dependency", "uv-removed", cache)
    assert "Using cached virtual environment" in removed.output and "- six==1.17.0" in removed.output, removed.output[
        -3000:
    ]
    run = AppImage.load(removed.image).run(["python", "app.py"])
    assert run.exit_code == 0 and "six installed: False" in run.output, run.output


@pytest.mark.slow
def test_poetry_app_builds_runs_and_reuses_its_venv(builds: Builds) -> None:
    cache = BuildCache(builds.work / "cache-poetry")
    first = builds.build(APPS / "poetry", "poetry", cache)
    assert "Running poetry sync --only main" in first.output
    layers = layer_actions(first)
    assert layers["poetry"][0] == {"build": True, "launch": False, "cache": True}, layers
    assert layers["venv"][0] == {"build": True, "launch": True, "cache": True}, layers
    assert "pip" not in layers, f"a Poetry app must not get a pip layer: {sorted(layers)}"
    assert_launch_has_only_the_app_dependencies(first)
    second = builds.build(APPS / "poetry", "poetry", cache)
    assert "Using cached Poetry 2.5.1" in second.output and "Using cached virtual environment" in second.output
    switched = builds.build(APPS / "uv", "poetry", cache)  # same image and cache: the app moved to uv
    assert (
        "Discarding cached virtual environment since: The package manager has changed from poetry to uv"
        in switched.output
    ), switched.output[-3000:]


@pytest.mark.parametrize(
    ("app", "user_env", "named"),
    [
        ("uv-stale-lock", None, ["[Error: uv.lock is out of date]", "uv lock"]),
        pytest.param(  # installs Poetry first: the slowest failure
            "poetry-stale-lock",
            None,
            ["[Error: poetry.lock is out of date]", "poetry lock"],
            marks=pytest.mark.slow,
        ),
        ("two-package-managers", None, ["requirements.txt, uv.lock"]),
        ("requires-python-mismatch", None, [".python-version", "pyproject.toml", ">=3.12", "3.11.2"]),
        ("pipenv", None, ["Pipenv is not supported", "Pipfile and Pipfile.lock"]),
        ("runtime-txt", None, ["runtime.txt is not supported", "'3.13'", ".python-version"]),
        ("pip-target", {"PIP_TARGET": "/tmp/elsewhere", "PIP_ROOT": "/r"}, ["PIP_TARGET='/tmp/elsewhere'", "PIP_ROOT"]),
    ],
)
def test_failure_apps_fail_naming_the_files(builds: Builds, app: str, user_env, named: list[str]) -> None:
    output = builds.failure(app, user_env)
    missing = [text for text in named if text not in output]
    assert not missing, f"{app}: the error does not name {missing}:\n{output[-2500:]}"
    assert "Traceback (most recent call last)" not in output


def pypi_locked_uv_app(app: Path, wheelhouse: Path) -> Path:
    """The uv sample as a new user's `uv lock` (online) records it: registry PyPI, wheel URLs + hashes."""
    shutil.copytree(APPS / "uv", app)
    lock = (app / "uv.lock").read_text()
    lock = lock.replace(
        'source = { registry = "/bpconform/wheelhouse" }', 'source = { registry = "https://pypi.org/simple" }'
    )
    for wheel in ("idna-3.10-py3-none-any.whl", "six-1.17.0-py2.py3-none-any.whl"):
        digest = hashlib.sha256((wheelhouse / wheel).read_bytes()).hexdigest()
        url = f"https://files.pythonhosted.org/packages/py3/{wheel[0]}/{wheel}"
        lock = lock.replace(
            f'{{ path = "/bpconform/wheelhouse/{wheel}" }}', f'{{ url = "{url}", hash = "sha256:{digest}" }}'
        )
    assert "/bpconform/wheelhouse" not in lock, lock
    (app / "uv.lock").write_text(lock)
    return app


def test_uv_lock_against_pypi_built_offline_names_the_registry_not_a_stale_lock(builds: Builds) -> None:
    """pyproject.toml is unchanged: the lock's registry is PyPI and the build has only the wheelhouse."""
    app = pypi_locked_uv_app(builds.work / "uv-pypi-lock", builds.wheelhouse)
    with pytest.raises(PlatformError) as caught:
        builds.build(app, "uv-pypi-lock", BuildCache(builds.work / "cache-uv-pypi-lock"))
    output = caught.value.build_output or str(caught.value)
    assert "[Error: uv.lock was locked against another package index]" in output, output[-2500:]
    assert "is out of date" not in output and "pyproject.toml was changed" not in output, output[-2500:]
    for named in ("`https://pypi.org/simple`", "this build uses `/bpconform/wheelhouse`", "without --offline"):
        assert named in output, f"the error does not name {named}:\n{output[-2500:]}"
    assert output.index("bpconform/python 0.1.0 on debian 12") < output.index("[Error: uv.lock was locked")
