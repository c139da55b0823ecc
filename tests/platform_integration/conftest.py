"""Fixtures for the embedded platform's integration self-tests.

The fixture buildpacks in `buildpacks/` do nothing by themselves: their `bin/detect` and `bin/build`
source `<short id>.detect.sh` / `<short id>.build.sh` from the app (short id = the id without
`fixture/`), with helpers to make layers, env files and processes and to *record* what they see.
Records are build output lines `@@<short id>|<key>|<value>`, read back with `records()`.
So each test states, next to its assertions, exactly what its buildpacks do.
"""

from __future__ import annotations

import contextlib
import re
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.engine import SESSION_ID, RunResult, ensure_engine, run
from conformance.errors import ConformanceError
from conformance.platform.cache import BuildCache
from conformance.platform.creator import BuildRequest, BuildResult, create
from conformance.platform_inputs import stack_build_request
from conformance.stacks import Stack, ensure_stack

HERE = Path(__file__).parent
BUILDPACKS = HERE / "buildpacks"
IMAGE_REPO = "bpconform-platform-it"


def fixture_buildpack(short: str) -> Path:
    """The directory of fixture buildpack `fixture/<short>`."""
    return BUILDPACKS / short


def records(output: str, short: str) -> dict[str, list[str]]:
    """The `@@<short>|key|value` lines of a build's output, as {key: [values in order]}."""
    found: dict[str, list[str]] = {}
    prefix = f"@@{short}|"
    for line in output.splitlines():
        if line.startswith(prefix):
            key, _, value = line[len(prefix) :].partition("|")
            found.setdefault(key, []).append(value)
    return found


def recorded_env(output: str, short: str) -> dict[str, str]:
    """The environment a fixture buildpack recorded with `record_env`."""
    return dict(item.split("=", 1) for item in records(output, short).get("env", []))


def write_app(root: Path, files: dict[str, str]) -> Path:
    """An app dir with `files` (relative path -> text, dedented so tests can indent scripts)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def shell(image: str, script: str, user: str = "1001:1000") -> RunResult:
    """Run a /bin/sh script in a container of `image`, bypassing its entrypoint and the launcher."""
    return run(image, ["-c", script], entrypoint=["/bin/sh"], user=user, network_disabled=True, kind="inspect")


@dataclass
class Builder:
    """Builds apps with fixture buildpacks; every image it names is removed at the end of the test."""

    stack: Stack
    tmp_path: Path
    test_name: str
    images: list[str]
    counter: int = 0

    def image_name(self) -> str:
        self.counter += 1
        return f"{IMAGE_REPO}/{self.test_name}:{SESSION_ID}-{self.counter}"

    def cache(self, name: str = "cache") -> BuildCache:
        return BuildCache(self.tmp_path / name)

    def request(
        self,
        app: Path,
        buildpacks: list[str],
        *,
        image: str | None = None,
        cache: BuildCache | None = None,
        **options: object,
    ) -> BuildRequest:
        image = image or self.image_name()
        if image not in self.images:
            self.images.append(image)
        return stack_build_request(
            image=image,
            app_dir=app,
            buildpacks=[fixture_buildpack(b) if "/" not in b else Path(b) for b in buildpacks],
            stack=self.stack,
            cache=cache or self.cache(f"cache-{self.counter}"),
            on_output=lambda _text: None,
            timeout=options.pop("timeout", 60.0),  # type: ignore[arg-type]
            **options,  # type: ignore[arg-type]
        )

    def build(self, app: Path, buildpacks: list[str], **kwargs: object) -> BuildResult:
        return create(self.request(app, buildpacks, **kwargs))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def stack() -> Stack:
    try:
        ensure_engine()
        return ensure_stack("bookworm")
    except ConformanceError as exc:
        pytest.skip(f"no Docker engine or bookworm stack: {exc}")


@pytest.fixture
def builder(stack: Stack, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Builder]:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:80]
    made = Builder(stack, tmp_path, slug, [])
    yield made
    client = ensure_engine()
    for image in made.images:
        with contextlib.suppress(Exception):  # never built (the build failed) or already gone
            client.images.remove(image)


@pytest.fixture
def app(tmp_path: Path) -> Callable[..., Path]:
    """`app(files)` -> a fresh app dir holding `files`; `app(files, name="x")` for several apps per test."""

    def make(files: dict[str, str] | None = None, name: str = "app") -> Path:
        return write_app(tmp_path / name, files or {"README": "a fixture app\n"})

    return make
