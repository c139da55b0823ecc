"""The launcher (issue 13 item 14, plus regression checks of what matches the lifecycle today).

Mirrors `acceptance/launcher_test.go` and `launch/launcher_test.go` with one image: a launch layer
with `bin/`, `env/`, `env.launch/<process>/`, an exec.d program for every process and one for
process `hang` that never returns.
"""

from __future__ import annotations

import time

import pytest

from conformance.engine import running_container

from .conftest import Built, Fidelity, make_buildpack, write_app

pytestmark = pytest.mark.docker

LAUNCH = r"""
L="$1/some-layer"
mkdir -p "$L/bin" "$L/env" "$L/env.launch/worker" "$L/exec.d/hang"
printf '#!/bin/sh\necho bp executable\n' > "$L/bin/bp-executable"
printf 'some-bp-val' > "$L/env/SOME_VAR"
printf 'worker-val' > "$L/env.launch/worker/WORKER_VAR"
cat > "$L/exec.d/set-var" <<'SH'
#!/bin/sh
echo 'VAR_FROM_EXEC_D = "val-from-exec.d"' >&3
SH
cat > "$L/exec.d/hang/hang" <<'SH'
#!/bin/sh
echo "exec.d hang started" >&2
sleep 600
SH
chmod +x "$L/bin/bp-executable" "$L/exec.d/set-var" "$L/exec.d/hang/hang"
printf '[types]\nlaunch = true\n' > "$1/some-layer.toml"
cat > "$1/launch.toml" <<'TOML'
[[processes]]
type = "web"
command = ["echo", "Executing web process-type"]
default = true

[[processes]]
type = "worker"
command = ["sh", "-c", "echo WORKER_VAR=${WORKER_VAR-unset} VAR_FROM_EXEC_D=${VAR_FROM_EXEC_D-unset}"]

[[processes]]
type = "process.with.period"
command = ["echo", "Executing process.with.period process-type"]

[[processes]]
type = "in-layer"
command = ["pwd"]
working-dir = "/layers/fixture_launch"

[[processes]]
type = "hang"
command = ["echo", "never reached"]
TOML
"""


@pytest.fixture(scope="module")
def launch_image(fidelity: Fidelity, tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("launcher")
    return fidelity.build(write_app(root / "app"), [make_buildpack(root, "fixture/launch", LAUNCH)])


def test_entrypoint_is_a_process(launch_image: Built) -> None:
    """acceptance/launcher_test.go "entrypoint is a process" - "launches that process"."""
    assert launch_image.image.run_process("web").output.strip() == "Executing web process-type"


def test_process_with_period(launch_image: Built) -> None:
    """acceptance/launcher_test.go "process contains a period" - "launches that process"."""
    result = launch_image.image.run_process("process.with.period")
    assert result.output.strip() == "Executing process.with.period process-type"


def test_user_args_appended(launch_image: Built) -> None:
    """acceptance/launcher_test.go "appends any args to the process args"."""
    result = launch_image.image.run_process("web", ["with", "user", "provided", "args"])
    assert result.output.strip() == "Executing web process-type with user provided args"


def test_process_specific_env_and_exec_d(launch_image: Built) -> None:
    """launch/launcher_test.go "should apply process-specific env modifications" and "should run
    exec.d binaries after static env files"."""
    result = launch_image.image.run_process("worker")
    assert result.output.strip() == "WORKER_VAR=worker-val VAR_FROM_EXEC_D=val-from-exec.d"


def test_direct_command_gets_layer_env(launch_image: Built) -> None:
    """acceptance/launcher_test.go "CMD provided starts with --" - "launches command directly",
    "sets env vars from layers" (and not a process's own env.launch/<process>)."""
    env = launch_image.image.launch_env()
    assert env["SOME_VAR"] == "some-bp-val"
    assert "WORKER_VAR" not in env
    assert launch_image.image.run(["echo", "something"]).output.strip() == "something"


def test_user_env_passes_through(launch_image: Built) -> None:
    """acceptance/launcher_test.go "passes through env vars from user, excluding excluded vars"."""
    env = launch_image.image.launch_env({"SOME_USER_VAR": "some-user-val"})
    assert env["SOME_USER_VAR"] == "some-user-val"


def test_layer_bin_on_path_before_lookup(launch_image: Built) -> None:
    """acceptance/launcher_test.go "adds buildpack bin dirs to the path before looking up command"."""
    assert launch_image.image.run(["bp-executable"]).output.strip() == "bp executable"


def test_process_working_dir(launch_image: Built) -> None:
    """launch/launcher_test.go "should execute in the specified working directory"."""
    assert launch_image.image.run_process("in-layer").output.strip() == "/layers/fixture_launch"


def test_default_working_dir_is_app_dir(launch_image: Built) -> None:
    """launch/launcher_test.go "should default the working directory to the app directory"."""
    assert launch_image.image.run(["pwd"]).output.strip() == "/workspace"


@pytest.mark.serial
def test_launcher_dies_on_sigterm_during_exec_d(launch_image: Built) -> None:
    """The Go launcher runs exec.d programs as children (launch/exec_d.go) and has no SIGTERM
    handler, so the Go runtime ends it on SIGTERM even as PID 1; `docker stop` need not escalate
    to SIGKILL (exit 137). We send SIGTERM only, then wait up to 10 s for the container to exit."""
    image = launch_image.image
    with running_container(
        image.reference, [], entrypoint=["/cnb/process/hang"], user=image.user, network_disabled=True, kind="inspect"
    ) as container:
        for _ in range(120):  # until the exec.d program runs (its line on stderr), at most ~60 s
            if b"exec.d hang started" in container.logs():
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"exec.d of process hang never started: {container.logs().decode(errors='replace')}")
        container.kill(signal="SIGTERM")
        try:
            status = container.wait(timeout=10)
        except Exception:  # still running: SIGTERM was ignored
            pytest.fail(
                "the launcher ignored SIGTERM: the container still runs 10 s after it (docker stop would SIGKILL, 137)"
            )
        assert status["StatusCode"] != 137
        assert b"never reached" not in container.logs()
