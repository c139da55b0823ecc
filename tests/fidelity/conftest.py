"""The lifecycle fidelity suite: our own tiny buildpacks re-expressing the lifecycle's tests.

Every test here builds through the build-backend interface (`conformance.backends.BuildBackend`:
a `BuildJob` in, an image or a `BuildFailed` out) and then inspects the *image* with Docker
(labels, files read in a container, `docker run`), never the embedded platform's internals. So the
same tests run against a real lifecycle with `--platform pack --builder IMAGE` (the plugin's
options); where `pack` or the builder is missing they are skipped with that reason.

Fixture buildpacks are written per module into a temp dir by `make_buildpack`: a `buildpack.toml`
and POSIX-sh `bin/detect` / `bin/build` whose text sits next to the assertions that read it.
Builds are shared by the tests of a module (module-scoped fixtures), and every image, cache and
container they make is removed when the module ends (checked with `tests.leaks.LeakGuard`).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tarfile
import tempfile
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conformance import paths
from conformance.backends import (
    EMBEDDED,
    PACK,
    BuildBackend,
    BuildFailed,
    BuildJob,
    EmbeddedBackend,
    PackBackend,
    Provisions,
)
from conformance.engine import SESSION_ID, RunResult, ensure_engine, run
from conformance.errors import ConformanceError
from conformance.image import AppImage
from tests.leaks import LeakGuard

IMAGE_REPO = "bpconform-fidelity"
DEFAULT_API = "0.12"


# --------------------------------------------------------------------------------------------
# Fixture buildpacks and apps
# --------------------------------------------------------------------------------------------


def make_buildpack(
    root: Path,
    bp_id: str,
    build: str = "exit 0",
    *,
    detect: str = "exit 0",
    api: str = DEFAULT_API,
    version: str = "0.0.1",
    sbom_formats: Sequence[str] = (),
    extra_toml: str = "",
    executable: bool = True,
    with_build: bool = True,
) -> Path:
    """A buildpack dir `root/<escaped id>` with `buildpack.toml`, `bin/detect` and `bin/build`.

    `build`/`detect` are POSIX sh bodies (dedented); they run with `set -eu` and the spec's argv.
    """
    directory = root / bp_id.replace("/", "_")
    (directory / "bin").mkdir(parents=True, exist_ok=True)
    formats = "".join(f', "{f}"' for f in sbom_formats)[2:]
    descriptor = f'api = "{api}"\n\n[buildpack]\nid = "{bp_id}"\nversion = "{version}"\nname = "{bp_id}"\n'
    if sbom_formats:
        descriptor += f"sbom-formats = [{formats}]\n"
    if api in ("0.7", "0.8", "0.9"):
        descriptor += '\n[[stacks]]\nid = "*"\n'
    else:
        descriptor += '\n[[targets]]\nos = "linux"\n'
    (directory / "buildpack.toml").write_text(descriptor + textwrap.dedent(extra_toml))
    scripts = {"detect": detect} | ({"build": build} if with_build else {})
    for name, body in scripts.items():
        path = directory / "bin" / name
        path.write_text("#!/bin/sh\nset -eu\n" + textwrap.dedent(body).strip("\n") + "\n")
        path.chmod(0o755 if executable else 0o644)
    return directory


def write_app(root: Path, files: Mapping[str, str] | None = None) -> Path:
    """An app dir holding `files` (relative path -> dedented text)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {"README": "a fidelity fixture app\n"}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def records(output: str, key: str) -> list[str]:
    """Values of the `@@<key>=<value>` lines a fixture buildpack printed, in order."""
    prefix = f"@@{key}="
    return [line.split(prefix, 1)[1] for line in output.splitlines() if prefix in line]


def record(output: str, key: str) -> str | None:
    found = records(output, key)
    return found[-1] if found else None


# --------------------------------------------------------------------------------------------
# The backend adapter: builds, failures, cleanup
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    image: AppImage
    output: str


@dataclass(frozen=True)
class Failure:
    """A build that failed: the lifecycle's exit code (pack prints it as `exit status N` or
    `failed with status code: N`), the platform's message and the build output."""

    exit_code: int
    message: str
    output: str

    @property
    def text(self) -> str:
        return f"{self.message}\n{self.output}"


@dataclass
class Fidelity:
    """Builds fixture apps through one `BuildBackend`; removes every image it named at the end."""

    kind: str
    backend: BuildBackend
    provisions: Provisions
    workdir: Path
    module: str
    images: list[str] = field(default_factory=list)
    image_ids: list[str] = field(default_factory=list)  # a rebuild under the same name untags the previous one
    counter: int = 0

    def image_name(self) -> str:
        self.counter += 1
        return f"{IMAGE_REPO}/{self.module}-{self.counter}:{SESSION_ID}"

    def job(
        self,
        app: Path,
        buildpacks: Sequence[Path],
        *,
        env: Mapping[str, str] | None = None,
        image: str | None = None,
        clear_cache: bool = False,
    ) -> BuildJob:
        image = image or self.image_name()
        if image not in self.images:
            self.images.append(image)
        return BuildJob(app, image, list(buildpacks), dict(env or {}), clear_cache, "sorted", image)

    def build(self, app: Path, buildpacks: Sequence[Path], **kwargs: object) -> Built:
        """Build; a failure is an error of the test (with the build output), not an assertion."""
        job = self.job(app, buildpacks, **kwargs)  # type: ignore[arg-type]
        try:
            result = self.backend.build(job)
        except BuildFailed as exc:
            raise AssertionError(f"build failed (exit {exc.exit_code}): {exc.message}\n{exc.output[-4000:]}") from None
        image = AppImage.load(job.image)
        self.image_ids.append(image.image_id)
        return Built(image, result.output)

    def fail(self, app: Path, buildpacks: Sequence[Path], **kwargs: object) -> Failure:
        """Build expecting a failure; a build that succeeds fails the test."""
        job = self.job(app, buildpacks, **kwargs)  # type: ignore[arg-type]
        try:
            result = self.backend.build(job)
        except BuildFailed as exc:
            return Failure(self.lifecycle_code(exc), exc.message, exc.output)
        raise AssertionError(f"the build was expected to fail but succeeded; output:\n{result.output[-4000:]}")

    def lifecycle_code(self, exc: BuildFailed) -> int:
        if self.kind == PACK:  # pack exits 1 and names the phase's exit status
            found = re.findall(r"(?:exit status|status code:?)\s*(\d+)", exc.output)
            return int(found[-1]) if found else exc.exit_code
        return exc.exit_code

    def remove_images(self) -> None:
        """The images this module named, then the ones a rebuild left untagged. An id is removed only
        when nothing tags it any more: reproducible builds can give another session the same id."""
        client = ensure_engine()
        for image in self.images:
            with contextlib.suppress(Exception):  # never built (the build failed) or already gone
                client.images.remove(image, force=True)
        for image_id in reversed(self.image_ids):
            with contextlib.suppress(Exception):  # already gone with its name
                if not client.images.get(image_id).tags:
                    client.images.remove(image_id)


def _provisions() -> Provisions:
    """What a plain `bpconform build` uses: the bookworm stack, the runtimes and no package access
    (nothing mounted, nothing added to `<platform>/env`: the fixture buildpacks install nothing)."""
    from conformance import runtimes, stacks

    ensure_engine()
    stack = stacks.ensure_stack("bookworm")
    return Provisions(stack, runtimes.runtimes_dir(), None)


def _backend(config: pytest.Config, provisions: Provisions, workdir: Path) -> tuple[str, BuildBackend]:
    kind = config.getoption("bpconform_platform", default=None) or EMBEDDED
    if kind == PACK:
        builder = config.getoption("bpconform_builder", default=None)
        missing = [
            what for what, ok in (("the `pack` CLI on PATH", shutil.which("pack")), ("--builder", builder)) if not ok
        ]
        if missing:
            pytest.skip(
                "the fidelity suite with --platform pack runs against a real lifecycle: it needs the `pack` CLI"
                f" and --builder IMAGE (a builder holding the lifecycle); missing here: {', '.join(missing)}"
            )
        return kind, PackBackend(provisions, builder, config.getoption("bpconform_lifecycle_image", default=None))
    return EMBEDDED, EmbeddedBackend(provisions, workdir)


@pytest.fixture(scope="session")
def fidelity_provisions() -> Provisions:
    try:
        return _provisions()
    except ConformanceError as exc:
        pytest.fail(f"the fidelity suite cannot build: {exc}")  # missing input: an error, never a skip


@pytest.fixture(scope="module")
def fidelity(
    request: pytest.FixtureRequest, fidelity_provisions: Provisions, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fidelity]:
    """This module's builder on the chosen backend. Build work dirs and scratch dirs go to private
    dirs of this module (other sessions share /dev/shm and /tmp), so `LeakGuard` can attribute what
    is left; at the end its images, work dirs, scratch dirs and containers must all be gone."""
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    workdir = tmp_path_factory.mktemp(f"fidelity-{module}")
    work_root, scratch = workdir / "work", workdir / "scratch"
    scratch.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(paths.WORK_DIR_ENV, str(work_root))
        patch.setattr(tempfile, "tempdir", str(scratch))
        patch.setenv("TMPDIR", str(scratch))
        kind, backend = _backend(request.config, fidelity_provisions, workdir / "backend")
        guard = LeakGuard(work_root, scratch_root=scratch)
        volumes_before = _pack_cache_volumes() if kind == PACK else set()
        made = Fidelity(kind, backend, fidelity_provisions, workdir, module)
        try:
            yield made
        finally:
            made.remove_images()
            if kind == PACK:
                _remove_volumes(_pack_cache_volumes() - volumes_before)
            guard.assert_clean()
            shutil.rmtree(workdir, ignore_errors=True)


def _pack_cache_volumes() -> set[str]:
    """pack's build/launch cache volumes for this suite's images (`pack-cache-<image ref>-<hash>.*`:
    pack does not label them, so they are matched by name and by being new; untested here, no pack)."""
    return {v.name for v in ensure_engine().volumes.list() if v.name.startswith("pack-cache-") and IMAGE_REPO in v.name}


def _remove_volumes(names: set[str]) -> None:
    client = ensure_engine()
    for name in names:
        with contextlib.suppress(Exception):  # already gone
            client.volumes.get(name).remove(force=True)


def layer_entries(image: AppImage, diff_id: str) -> set[str]:
    """The paths in one layer of `image` (by diffID), read from `docker save` (manifest.json lists
    the layer tars in RootFS order, in the legacy and the OCI layout alike)."""
    index = image.diff_ids.index(diff_id)
    with tempfile.TemporaryFile(prefix="bpconform-fidelity-save-") as saved:
        for chunk in ensure_engine().images.get(image.reference).save(named=False):
            saved.write(chunk)
        saved.seek(0)
        with tarfile.open(fileobj=saved) as outer:
            manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
            member = outer.extractfile(manifest[0]["Layers"][index])
            with tarfile.open(fileobj=member) as layer:
                return {re.sub(r"^(\./|/)+", "", name).rstrip("/") for name in layer.getnames()}


def shell(image: AppImage | str, script: str, user: str | None = None) -> RunResult:
    """Run a /bin/sh script in a container of `image`, bypassing its entrypoint (and the launcher)."""
    reference = image.reference if isinstance(image, AppImage) else image
    if user is None:
        user = image.user if isinstance(image, AppImage) else ""
    return run(
        reference, ["-c", script], entrypoint=["/bin/sh"], user=user or None, network_disabled=True, kind="inspect"
    )
