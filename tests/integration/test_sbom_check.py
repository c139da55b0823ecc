"""The launch SBOM check's comparison, on an SBOM put in the image by hand.

The check (`conformance/suite/test_package_managers.py`, `launch_sbom_lists_*`) reads the venv
layer's SBOM where the lifecycle exports it, `/layers/sbom/launch/<buildpack>/<layer>/sbom.cdx.json`;
the suite runs in test_suite_reference.py check the platform's real export. This test isolates the
comparison from the export: it runs the buildpack's own `sbom.venv_sbom` (the code that writes
`venv.sbom.cdx.json` at build time) on the image's venv, inside a container of the image, commits the
result and runs the comparison on it: the unmodified buildpack's SBOM passes, the `sbom-lists-pip`
mutant's (which adds pip) fails; the platform's own export passes, and a missing file is named.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import access, engine, runtimes
from conformance.image import AppImage
from conformance.paths import REPO_ROOT
from conformance.platform.cache import BuildCache
from conformance.platform.creator import create
from conformance.platform_inputs import stack_build_request
from conformance.profile import load_profile
from conformance.stacks import ensure_stack
from conformance.suite.test_package_managers import SBOM_ROOT, _assert_sbom_matches, _sbom_components
from tests.mutants.mutants import by_name

pytestmark = pytest.mark.docker

BUILDPACK = REPO_ROOT / "buildpack_under_test"
SESSION = uuid.uuid4().hex[:8]
VENV = "/layers/bpconform_python/venv"
EXPORT = f"{SBOM_ROOT}/bpconform_python/venv/sbom.cdx.json"
WRITE_SBOM = (
    "import json, pathlib, sys\n"
    "sys.path.insert(0, '/sbom-writer/lib')\n"
    "from bpconform_python import sbom\n"
    f"target = pathlib.Path({EXPORT!r})\n"
    "target.parent.mkdir(parents=True, exist_ok=True)\n"
    f"target.write_text(json.dumps(sbom.venv_sbom(pathlib.Path({VENV!r}))))\n"
)


@pytest.fixture(scope="module")
def app_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppImage]:
    """The default app (`minimal`: six in a pip venv) built offline by the reference buildpack."""
    runtimes.ensure_default_runtimes("bookworm")
    image = f"bpconform-sbom-it/minimal:{SESSION}"
    create(
        stack_build_request(
            image=image,
            app_dir=REPO_ROOT / "testapps" / "minimal",
            buildpacks=[BUILDPACK],
            stack=ensure_stack("bookworm"),
            access=access.offline(access.ensure_sample_wheelhouse()),
            runtimes_dir=runtimes.runtimes_dir(),
            user_env={},
            cache=BuildCache(tmp_path_factory.mktemp("sbom-cache")),
            on_output=lambda _text: None,
            timeout=900.0,
        )
    )
    try:
        yield AppImage.load(image)
    finally:
        with contextlib.suppress(Exception):
            engine.ensure_engine().images.remove(image, force=True)


@contextlib.contextmanager
def with_exported_sbom(image: AppImage, writer: Path, tag: str) -> Iterator[AppImage]:
    """`image` plus the SBOM `writer`'s sbom.py makes of its venv, at the lifecycle's export path."""
    client = engine.ensure_engine()
    container = engine.create_container(
        image.reference,
        ["-c", WRITE_SBOM],
        kind="inspect",
        user="root",
        entrypoint=["/layers/bpconform_python/python/bin/python3"],
        mounts=[engine.Mount(writer / "lib", "/sbom-writer/lib", read_only=True)],
        network_disabled=True,
    )
    derived = f"bpconform-sbom-it/{tag}:{SESSION}"
    try:
        container.start()
        assert container.wait(timeout=120)["StatusCode"] == 0, container.logs().decode()[-2000:]
        container.commit(repository=derived.split(":")[0], tag=SESSION, changes=[f"USER {image.user or 'root'}"])
    finally:
        engine.remove_container(container)
    try:
        yield AppImage.load(derived)
    finally:
        with contextlib.suppress(Exception):
            client.images.remove(derived, force=True)


def test_sbom_check_passes_on_the_reference_buildpacks_own_sbom(app_image: AppImage) -> None:
    profile = load_profile("reference")
    with with_exported_sbom(app_image, BUILDPACK, "reference") as image:
        assert image.read_file(EXPORT) is not None
        _assert_sbom_matches(image, profile, "venv", "stand-in export")


def test_sbom_check_fails_on_the_sbom_lists_pip_mutant(app_image: AppImage, tmp_path: Path) -> None:
    profile = load_profile("reference")
    mutant = by_name("sbom-lists-pip").make_copy(tmp_path)
    with with_exported_sbom(app_image, mutant, "mutant") as image, pytest.raises(AssertionError) as caught:
        _assert_sbom_matches(image, profile, "venv", "stand-in export")
    message = str(caught.value)
    assert "listed but not installed ['pip==25.3']" in message, message
    assert "installed but not listed -" in message, message


def test_sbom_check_passes_on_the_platforms_export_and_names_a_missing_file(app_image: AppImage) -> None:
    """The image as the platform exported it has the venv's SBOM; a layer without one is named."""
    profile = load_profile("reference")
    _assert_sbom_matches(app_image, profile, "venv", "the platform's export")
    with pytest.raises(AssertionError, match=r"no launch SBOM at /layers/sbom/launch/bpconform_python/no-such-layer/"):
        _sbom_components(app_image, f"{SBOM_ROOT}/bpconform_python/no-such-layer/sbom.cdx.json")
