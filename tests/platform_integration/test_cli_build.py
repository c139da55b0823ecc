"""`bpconform build` end to end: pack's command shape, project.toml, and a `<platform>/env` that
holds only what the user passed (issue 13 items 8, 13, 15).

Each test runs the real CLI in a subprocess (own session, private work root and build caches) on a
tiny POSIX-sh buildpack written here that prints what it sees: the app dir's entries and every
`<platform>/env` file. The images the CLI keeps are removed at the end.
"""

from __future__ import annotations

import contextlib
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from leaks import bpconform_subprocess
from reliability.conftest import private_cache_root

from conformance.access import WHEELHOUSE_TARGET
from conformance.engine import ensure_engine
from conformance.image import AppImage

pytestmark = pytest.mark.docker

RECORDER = """\
#!/bin/sh
set -eu
for entry in * .[!.]*; do [ -e "$entry" ] && echo "@@app=$entry"; done
for file in "$2"/env/*; do [ -f "$file" ] && echo "@@env=${file##*/}=$(cat "$file")"; done
if [ -d /bpconform/wheelhouse ]; then echo "@@wheelhouse=mounted"; fi
exit 0
"""


def recorder(root: Path) -> Path:
    bp = root / "recorder"
    (bp / "bin").mkdir(parents=True)
    (bp / "buildpack.toml").write_text(
        'api = "0.10"\n[buildpack]\nid = "fixture/recorder"\nversion = "0.0.1"\n[[targets]]\nos = "linux"\n'
    )
    (bp / "bin" / "detect").write_text("#!/bin/sh\nexit 0\n")
    (bp / "bin" / "build").write_text(RECORDER)
    for name in ("detect", "build"):
        (bp / "bin" / name).chmod(0o755)
    return bp


def records(output: str, key: str) -> list[str]:
    return [line.split(f"@@{key}=", 1)[1] for line in output.splitlines() if line.startswith(f"@@{key}=")]


@pytest.fixture
def images() -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for image in made:
        with contextlib.suppress(Exception):  # the build failed before writing it
            ensure_engine().images.remove(image, force=True)


def cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    proc = bpconform_subprocess(args, f"cli{uuid.uuid4().hex[:9]}", private_cache_root(tmp_path), timeout=300, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_platform_env_holds_only_what_the_user_passed(stack, tmp_path: Path, images: list[str]) -> None:
    """Issue 13 item 8: no PIP_FIND_LINKS/PIP_NO_INDEX unless asked; -e NAME takes the value from the
    caller's environment; -e wins over --env-file, which wins over project.toml (pack's order)."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "project.toml").write_text(
        textwrap.dedent("""\
            [_]
            schema-version = "0.2"
            [[io.buildpacks.build.env]]
            name = "FROM_PROJECT"
            value = "project"
            [[io.buildpacks.build.env]]
            name = "SET_THRICE"
            value = "project"
            """)
    )
    env_file = tmp_path / "build.env"
    env_file.write_text("FROM_FILE=file\nSET_THRICE=file\n")
    image = f"bpconform-platform-it/cli-env:{tmp_path.name[-20:].lower()}"
    images.append(image)
    proc = cli(
        tmp_path,
        "build", image, "--path", str(app), "-b", str(recorder(tmp_path)),
        "--env-file", str(env_file), "-e", "SET_THRICE=flag", "-e", "FROM_CALLER",
        env={"FROM_CALLER": "caller value"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sorted(records(proc.stderr + proc.stdout, "env")) == [
        "FROM_CALLER=caller value",
        "FROM_FILE=file",
        "FROM_PROJECT=project",
        "SET_THRICE=flag",
    ]
    assert records(proc.stderr + proc.stdout, "wheelhouse") == []


def test_wheelhouse_adds_exactly_its_documented_variables(stack, tmp_path: Path, images: list[str]) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text("print('hi')\n")
    image = f"bpconform-platform-it/cli-wheels:{tmp_path.name[-20:].lower()}"
    images.append(image)
    proc = cli(tmp_path, "build", image, "-p", str(app), "-b", str(recorder(tmp_path)), "--wheelhouse", str(wheels))
    assert proc.returncode == 0, proc.stderr
    output = proc.stderr + proc.stdout
    assert sorted(records(output, "env")) == [f"PIP_FIND_LINKS={WHEELHOUSE_TARGET}", "PIP_NO_INDEX=1"]
    assert records(output, "wheelhouse") == ["mounted"]


def test_project_toml_exclude_and_group_as_pack(stack, tmp_path: Path, images: list[str]) -> None:
    """pack pkg/client/build.go:897-910 and :1233-1245: excluded paths are neither seen at build nor in
    the image (buildpacks/samples apps/bash-script's project.toml excludes its README and its bundled
    buildpack); with no -b, the project's group names the buildpacks."""
    app = tmp_path / "app"
    for name, text in {
        "README.md": "not for the image\n",
        "docs/README.md": "only the root README is excluded\n",
        "bundled-buildpack/bin/build": "#!/bin/sh\n",
        "app.sh": "echo app\n",
    }.items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(text)
    recorder(app / "bundled-buildpack")
    (app / "project.toml").write_text(
        textwrap.dedent("""\
            [_]
            schema-version = "0.2"
            id = "io.bpconform.cli"
            [io.buildpacks]
            exclude = ["/README.md", "bundled-buildpack"]
            [[io.buildpacks.group]]
            uri = "bundled-buildpack/recorder"
            """)
    )
    image = f"bpconform-platform-it/cli-project:{tmp_path.name[-20:].lower()}"
    images.append(image)
    proc = cli(tmp_path, "build", image, "--path", str(app))
    assert proc.returncode == 0, proc.stderr
    assert sorted(records(proc.stderr + proc.stdout, "app")) == ["app.sh", "docs", "project.toml"]
    built = AppImage.load(image)
    assert not built.path_exists("/workspace/README.md")
    assert not built.path_exists("/workspace/bundled-buildpack")
    assert built.path_exists("/workspace/docs/README.md")
    assert (app / "README.md").is_file()  # the user's app dir is only read


def test_a_failed_build_exits_with_the_lifecycle_code(stack, tmp_path: Path) -> None:
    bp = recorder(tmp_path)
    (bp / "bin" / "build").write_text("#!/bin/sh\nprintf '[[processes]\\n' > \"$1/launch.toml\"\n")
    app = tmp_path / "app"
    app.mkdir()
    proc = cli(
        tmp_path, "build", f"bpconform-platform-it/cli-fails:{uuid.uuid4().hex[:8]}", "-p", str(app), "-b", str(bp)
    )
    assert proc.returncode == 52, proc.stderr
    assert "bpconform: error: malformed launch.toml /layers/fixture_recorder/launch.toml" in proc.stderr


@pytest.fixture
def derived_run_image(stack) -> Iterator[str]:
    """Our run image with another `User` (1002) under another name: a run image no stack made."""
    client = ensure_engine()
    name = f"bpconform-platform-it/derived-run:{uuid.uuid4().hex[:8]}"
    container = client.containers.create(stack.run_image, ["true"])
    try:
        repository, tag = name.split(":")
        container.commit(repository, tag, changes=["USER 1002:1000", "LABEL io.bpconform.test=derived-run"])
    finally:
        container.remove(force=True)
    yield name
    with contextlib.suppress(Exception):
        client.images.remove(name, force=True)


def test_any_base_images_meeting_the_contract_can_be_used(stack, derived_run_image, tmp_path, images) -> None:
    """Issue 13 "any base images": --build-image/--run-image instead of a stack; the app image
    inherits the run image's User, as the lifecycle's exporter leaves it."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text("print('hi')\n")
    image = f"bpconform-platform-it/cli-images:{tmp_path.name[-20:].lower()}"
    images.append(image)
    proc = cli(
        tmp_path,
        "build", image, "-p", str(app), "-b", str(recorder(tmp_path)),
        "--build-image", stack.build_image, "--run-image", derived_run_image,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert AppImage.load(image).config["User"] == "1002:1000"
    assert "io.bpconform.test" in AppImage.load(image).labels  # built on the derived image, not the stack's


def test_one_base_image_without_the_other_is_refused(stack, tmp_path) -> None:
    proc = cli(
        tmp_path, "build", "bpconform-platform-it/x", "-b", str(recorder(tmp_path)), "--run-image", stack.run_image
    )
    assert proc.returncode != 0
    assert "--run-image was given without --build-image" in proc.stderr
