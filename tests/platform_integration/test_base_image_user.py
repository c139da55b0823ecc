"""The app image runs as the run image's user, as with the lifecycle, and that user can use its layers.

The lifecycle's exporter builds the app image on the run image's config, so the app image keeps the
run image's `User` (the spec: the run image's user SHOULD have a different uid from the build user,
who owns every layer file). These tests read the user from a real build, not from our stack recipe:
a run image whose `User` differs from its `CNB_USER_ID` must win over `CNB_USER_ID`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
from collections.abc import Iterator

import pytest

from conformance.engine import SESSION_ID, ensure_engine, labels
from conformance.image import AppImage

pytestmark = pytest.mark.docker

APP = {
    "layers.build.sh": """
        layer tool launch
        exe tool/bin/hello 'echo hello-from-layer'
        put tool/data/config.txt "layer data"
        chmod 0640 "$1/tool/data/config.txt"
        cat > "$1/launch.toml" <<'EOF'
        [[processes]]
        type = "web"
        command = ["hello"]
        default = true
        EOF
    """,
    "app.py": "print('hello')\n",
}


def _run_image_config(reference: str) -> dict[str, object]:
    return ensure_engine().images.get(reference).attrs["Config"]


def test_the_app_image_inherits_the_run_images_user_and_can_read_its_layers(builder, app) -> None:
    run_config = _run_image_config(builder.stack.run_image)
    assert run_config["User"], "the stack's run image must have a User (platform.md, Run Image)"
    image = AppImage.load(builder.build(app(APP), ["layers"]).image)
    assert image.user == run_config["User"]

    run_uid, run_gid = str(run_config["User"]).split(":")
    script = (
        'id -u; id -g; hello; cat "/layers/fixture_layers/tool/data/config.txt"; echo;'
        " find /layers /workspace ! -readable | head -5;"
        " touch /layers/fixture_layers/tool/bin/planted 2>/dev/null && echo wrote-layer || echo layer-read-only"
    )
    result = image.run(["sh", "-c", script])  # the image's own user, no override
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == [run_uid, run_gid], f"the app runs as {lines[:2]}, the run image's User is {run_config['User']}"
    assert run_uid != str(builder.stack.build_uid), "the run user must not be the build user (platform.md, Run Image)"
    assert lines[2:4] == ["hello-from-layer", "layer data"], f"a group-readable (0640) layer file: {result.output}"
    assert lines[4:] == ["layer-read-only"], f"unreadable paths or a writable layer: {lines[4:]}"


@pytest.fixture
def run_image_with_other_user(builder) -> Iterator[str]:
    """The stack's run image with `User 1002:1000` (and its `CNB_USER_ID` left at 1001)."""
    client = ensure_engine()
    tag = f"bpconform-platform-it/other-user-run:{SESSION_ID}"
    container = client.containers.create(builder.stack.run_image, ["true"], labels=labels("selftest"))
    try:
        container.commit(
            repository=tag.split(":")[0],
            tag=tag.split(":")[1],
            changes=["USER 1002:1000", "LABEL io.bpconform.kind=selftest"],
        )
    finally:
        container.remove(force=True)
    yield tag
    with contextlib.suppress(Exception):
        client.images.remove(tag)


def test_the_run_images_user_wins_over_its_cnb_user_id(builder, app, run_image_with_other_user) -> None:
    builder.stack = dataclasses.replace(builder.stack, run_image=run_image_with_other_user)
    config = _run_image_config(run_image_with_other_user)
    assert "CNB_USER_ID=1001" in config["Env"]
    image = AppImage.load(builder.build(app(APP), ["layers"]).image)
    assert image.user == "1002:1000", "the lifecycle inherits the run image's User; CNB_USER_ID does not decide"
    result = image.run(["sh", "-c", "id -u; hello"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["1002", "hello-from-layer"]


@pytest.fixture
def run_image_without_user(builder) -> Iterator[str]:
    """The stack's run image files and env, but no `User` (a commit cannot clear one: export, import)."""
    client = ensure_engine()
    tag = f"bpconform-platform-it/no-user-run:{SESSION_ID}"
    config = _run_image_config(builder.stack.run_image)
    changes = [f"ENV {item}" for item in config["Env"]] + [f"LABEL {k}={v}" for k, v in labels("selftest").items()]
    container = client.containers.create(builder.stack.run_image, ["true"], labels=labels("selftest"))
    try:
        export = subprocess.Popen(["docker", "export", container.id], stdout=subprocess.PIPE)
        command = ["docker", "import", *[arg for change in changes for arg in ("--change", change)], "-", tag]
        imported = subprocess.run(command, stdin=export.stdout, capture_output=True, text=True)
        assert export.stdout is not None
        export.stdout.close()
        assert export.wait() == 0 and imported.returncode == 0, imported.stderr
    finally:
        container.remove(force=True)
    yield tag
    with contextlib.suppress(Exception):
        client.images.remove(tag)


def test_a_run_image_without_user_gives_a_root_app_image_like_the_lifecycle(
    builder, app, run_image_without_user
) -> None:
    """Not the `CNB_USER_ID` of the run image: the lifecycle's exporter never sets `User`."""
    config = _run_image_config(run_image_without_user)
    assert not config.get("User") and "CNB_USER_ID=1001" in config["Env"]
    builder.stack = dataclasses.replace(builder.stack, run_image=run_image_without_user)
    image = AppImage.load(builder.build(app(APP), ["layers"]).image)
    assert image.user == ""
    result = image.run(["id", "-u"])
    assert result.exit_code == 0 and result.stdout.split() == ["0"], result.output
