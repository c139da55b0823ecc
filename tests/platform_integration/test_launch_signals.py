"""The launcher as PID 1 of a real container stops on SIGTERM/SIGINT while an exec.d program hangs.

Issue 13, item 14: `docker stop` used to wait its whole timeout and SIGKILL (exit 137), because PID 1
ignores signals it has no handler for and the sh launcher sat in a command substitution. The Go
launcher dies on these signals. Exit 143 (SIGTERM) / 130 (SIGINT) can only come from the launcher's
own handler: had the stop timeout run out, Docker's SIGKILL would give 137.
"""

from __future__ import annotations

import time

import pytest

from conformance.engine import ensure_engine, running_container

from .conftest import Builder, write_app

pytestmark = [pytest.mark.docker, pytest.mark.serial]  # the serial pass (tests/conftest.py)

HANGING_APP = {
    "layers.build.sh": """
        layer slow launch
        exe slow/exec.d/hang 'echo "exec.d started"; exec sleep 300'
        cat > "$layers_dir/launch.toml" <<'EOF'
        [[processes]]
        type = "web"
        command = ["echo", "the process started"]
        default = true
        EOF
    """,
}


@pytest.fixture(scope="module")
def hanging_image(stack, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("signals")
    builder = Builder(stack, tmp, "launch-signals", [])
    result = builder.build(write_app(tmp / "app", HANGING_APP), ["layers"])
    yield result.image

    ensure_engine().images.remove(result.image)


def _wait_for_exec_d(container) -> None:
    deadline = time.monotonic() + 60
    while b"exec.d started" not in container.logs():
        container.reload()
        assert container.status == "running", f"the container ended early: {container.logs().decode()}"
        assert time.monotonic() < deadline, "the exec.d program never started"
        time.sleep(0.1)


def test_docker_stop_during_exec_d_exits_143(hanging_image: str) -> None:
    with running_container(hanging_image, kind="test") as container:
        _wait_for_exec_d(container)
        container.stop(timeout=10)
        status = container.wait(timeout=30)["StatusCode"]
        logs = container.logs().decode()
    assert status == 143, f"expected the launcher to exit 143 on SIGTERM (137 = killed after the timeout): {logs}"
    assert "the process started" not in logs


def test_sigint_during_exec_d_exits_130(hanging_image: str) -> None:
    with running_container(hanging_image, kind="test") as container:
        _wait_for_exec_d(container)
        container.kill(signal="SIGINT")
        status = container.wait(timeout=30)["StatusCode"]
    assert status == 130


def test_without_signals_the_process_still_starts_after_exec_d(stack, tmp_path) -> None:
    """The same exec.d plumbing (a background program, a temp file) on the normal path."""
    builder = Builder(stack, tmp_path, "launch-signals-ok", [])
    app = write_app(
        tmp_path / "app",
        {
            "layers.build.sh": """
                layer quick launch
                exe quick/exec.d/set 'echo "FROM_EXECD = \\"yes\\"" >&3'
                cat > "$layers_dir/launch.toml" <<'EOF'
                [[processes]]
                type = "web"
                command = ["sh", "-c", "echo \\"FROM_EXECD=$FROM_EXECD\\"; ls -A /tmp"]
                default = true
                EOF
            """,
        },
    )
    try:
        result = builder.build(app, ["layers"])
        with running_container(result.image, kind="test") as container:
            status = container.wait(timeout=60)["StatusCode"]
            logs = container.logs().decode()
        assert status == 0, logs
        assert logs == "FROM_EXECD=yes\n"  # and /tmp is empty: the exec.d output file was removed
    finally:
        for image in builder.images:
            ensure_engine().images.remove(image)
