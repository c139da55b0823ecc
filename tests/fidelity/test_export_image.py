"""What the exporter makes of `launch.toml` and the run image (issue 13 items 5, 6, 10, 12).

Builds: one whose `launch.toml` has `[[labels]]`, `[[slices]]` and a process with `exec-env`; one
with a process type `my+proc`; one with a string layer `metadata`. Build-breaking inputs (refused
today) get their own build so the others still run.
"""

from __future__ import annotations

import pytest

from conformance.engine import ensure_engine

from .conftest import Built, Fidelity, layer_entries, make_buildpack, record, shell, write_app

pytestmark = pytest.mark.docker

LAUNCH = r"""
echo "@@build-uid=$(id -u)"
cat > "$1/launch.toml" <<'TOML'
[[labels]]
key = "some.label.key"
value = "some-label-value"

[[labels]]
key = "other.label.key"
value = "other-label-value"

[[processes]]
type = "web"
command = ["echo", "web"]
default = true
exec-env = ["production", "test"]

[[slices]]
paths = ["static/**/*.txt"]
TOML
"""

APP = {"static/css/site.txt": "a static file\n", "static/keep.svg": "<svg/>\n", "main.txt": "main\n"}


@pytest.fixture(scope="module")
def launch_build(fidelity: Fidelity, tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("launch-toml")
    bp = make_buildpack(root, "fixture/launch", LAUNCH)
    return fidelity.build(write_app(root / "app", APP), [bp])


def test_buildpack_labels_on_image(launch_build: Built) -> None:
    """phase/exporter_test.go "adds buildpack-provided labels to the image" (and buildpack/build_test.go
    "labels" - "includes labels")."""
    labels = launch_build.image.labels
    found = {key: labels.get(key) for key in ("some.label.key", "other.label.key")}
    assert found == {"some.label.key": "some-label-value", "other.label.key": "other-label-value"}


def test_slices_become_app_layers(launch_build: Built) -> None:
    """phase/exporter_test.go "there are slices" - "exports slice layers" (layers/slices.go: one
    layer per slice, then one for the rest of the app dir; all listed under `app`)."""
    app = launch_build.image.lifecycle_metadata["app"]
    assert len(app) == 2, f"app layers: {app}"
    slice_files, rest = (layer_entries(launch_build.image, entry["sha"]) for entry in app)
    assert "workspace/static/css/site.txt" in slice_files, sorted(slice_files)
    assert "workspace/static/keep.svg" not in slice_files
    assert "workspace/static/css/site.txt" not in rest
    assert {"workspace/static/keep.svg", "workspace/main.txt"} <= rest, sorted(rest)


def test_sliced_files_still_in_app_dir(launch_build: Built) -> None:
    """phase/exporter_test.go "exports slice layers": slicing moves files into layers, the app dir
    the process sees is unchanged."""
    result = shell(
        launch_build.image, "cat /workspace/static/css/site.txt /workspace/static/keep.svg /workspace/main.txt"
    )
    assert result.stdout.split() == ["a", "static", "file", "<svg/>", "main"], result.output


def test_app_layer_holds_app_files(launch_build: Built) -> None:
    """phase/exporter_test.go "creates app layer on run image": the last `app` layer holds the
    app dir (whatever no slice took)."""
    rest = layer_entries(launch_build.image, launch_build.image.lifecycle_metadata["app"][-1]["sha"])
    assert {"workspace", "workspace/main.txt", "workspace/static/keep.svg"} <= rest, sorted(rest)


def test_exec_env_in_build_metadata(launch_build: Built) -> None:
    """buildpack/build_test.go "processes" - "sets the execution environment" (launch/launch.go
    Process `exec-env,omitempty` in the build metadata label)."""
    process = launch_build.image.processes[0]
    assert process.get("exec-env") == ["production", "test"], process


def test_default_process_is_entrypoint(launch_build: Built) -> None:
    """phase/exporter_test.go "buildpack-default-process-type is set in metadata.toml" - "sets the
    ENTRYPOINT to this process type"."""
    assert launch_build.image.config["Entrypoint"] == ["/cnb/process/web"]
    assert launch_build.image.default_process == "web"
    assert launch_build.image.run_process("web").output.strip() == "web"


def run_image_user(built: Built) -> str:
    reference = built.image.lifecycle_metadata["runImage"]["image"]
    return str(ensure_engine().images.get(reference).attrs["Config"].get("User") or "")


def test_app_image_inherits_run_image_user(launch_build: Built) -> None:
    """phase/exporter_test.go "saves run image" / acceptance/exporter_test.go: the app image is
    the run image plus layers; its config User is the run image's, which must be non-root (the
    lifecycle never sets it)."""
    run_user = run_image_user(launch_build)
    assert run_user and run_user.split(":")[0] not in ("0", "root"), f"run image User: {run_user!r}"
    assert launch_build.image.user == run_user


def test_build_runs_as_non_root(launch_build: Built) -> None:
    """acceptance/builder_test.go "running as a root" - "errors": buildpacks run as the build
    image's non-root user."""
    assert record(launch_build.output, "build-uid") not in (None, "0")


PROCESS_PLUS = r"""
cat > "$1/launch.toml" <<'TOML'
[[processes]]
type = "my+proc"
command = ["echo", "plus"]
TOML
"""

STRING_METADATA = r"""
mkdir -p "$1/some-layer"; echo x > "$1/some-layer/file"
printf 'metadata = "just a string"\n\n[types]\nlaunch = true\n' > "$1/some-layer.toml"
"""


def test_process_type_with_plus(fidelity: Fidelity, tmp_path_factory: pytest.TempPathFactory) -> None:
    """layers/launcher_test.go "#ProcessTypesLayer" - "creates a layer containing the config file
    and process type symlinks": the lifecycle forbids only `/><:|&\\` in a type (layers/launcher.go
    validateProcessType), so `/cnb/process/my+proc` exists and runs (as acceptance/launcher_test.go
    "process contains a period" - "launches that process")."""
    root = tmp_path_factory.mktemp("plus")
    built = fidelity.build(write_app(root / "app"), [make_buildpack(root, "fixture/plus", PROCESS_PLUS)])
    assert [p["type"] for p in built.image.processes] == ["my+proc"]
    assert built.image.run_process("my+proc").output.strip() == "plus"


def test_string_layer_metadata(fidelity: Fidelity, tmp_path_factory: pytest.TempPathFactory) -> None:
    """buildpack/layermetadata.go (`Data any toml:"metadata"`): `metadata = "..."` decodes, and
    the label's `data` is that string (phase/exporter_test.go "adds buildpack layer metadata to label")."""
    root = tmp_path_factory.mktemp("string-metadata")
    built = fidelity.build(write_app(root / "app"), [make_buildpack(root, "fixture/strmeta", STRING_METADATA)])
    layer = built.image.lifecycle_metadata["buildpacks"][0]["layers"]["some-layer"]
    assert layer["data"] == "just a string"
