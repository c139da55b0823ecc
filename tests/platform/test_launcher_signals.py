"""The launcher's signal handling and exec.d plumbing (issue 13, item 14), without Docker.

The Go launcher dies on SIGTERM/SIGINT/SIGHUP while exec.d programs run (the Go runtime's default);
the sh launcher used to be deaf to them as PID 1 (the kernel drops signals PID 1 has no handler for,
and a shell defers traps while it waits for a command substitution). These tests signal a launcher
whose exec.d program hangs and check that launcher and program are gone. The PID 1 case runs the
launcher as init of a new PID namespace (`unshare`), which needs root; the Docker integration test
(tests/platform_integration/test_launch_signals.py) checks it with `docker stop`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.platform.test_launcher import BASE_PATH, FakeImage

pytestmark = pytest.mark.serial  # the serial pass (tests/conftest.py)


@pytest.fixture
def image(tmp_path: Path) -> FakeImage:
    return FakeImage(tmp_path)


def _hanging_exec_d(image: FakeImage, marker: Path) -> None:
    """An exec.d program that records its pid, then blocks until killed (`exec`: the pid is the blocker's)."""
    image.exec_d("bp", "layer", "hang", f'echo $$ > "{marker}.tmp" && mv "{marker}.tmp" "{marker}"\nexec sleep 300\n')
    image.set_order(["bp"])
    image.set_processes([image.process()])


def _env(image: FakeImage, tmpdir: Path) -> dict[str, str]:
    return {
        "PATH": f"/cnb/process:{image.lifecycle}:{BASE_PATH}",
        "CNB_LAYERS_DIR": str(image.layers),
        "CNB_APP_DIR": str(image.app),
        "CNB_LIFECYCLE_DIR": str(image.lifecycle),
        "CNB_PLATFORM_API": "0.12",
        "TMPDIR": str(tmpdir),
    }


def _wait_for(path: Path, proc: subprocess.Popen[bytes]) -> int:
    """The pid the exec.d program wrote (it is running then); fails if the launcher ended first."""
    deadline = time.monotonic() + 30
    while not path.exists():
        assert proc.poll() is None, f"the launcher ended before its exec.d program ran: {proc.communicate()}"
        assert time.monotonic() < deadline, "the exec.d program never started"
        time.sleep(0.05)
    return int(path.read_text())


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _gone_soon(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _kill_quietly(pid: int | None) -> None:
    if pid is not None and _alive(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda sig: sig.name)
def test_a_signal_during_exec_d_ends_the_launcher_and_the_program(image: FakeImage, tmp_path: Path, sig) -> None:
    marker, tmpdir = tmp_path / "execd.pid", tmp_path / "tmpdir"
    tmpdir.mkdir()
    _hanging_exec_d(image, marker)
    proc = subprocess.Popen(
        [str(image.process_dir / "web")],
        env=_env(image, tmpdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=image.root,
        # not inherited from pytest: a SIGINT ignored on entry could not be trapped (POSIX)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    child = None
    try:
        child = _wait_for(marker, proc)
        proc.send_signal(sig)
        proc.wait(timeout=30)
        # Not PID 1: it dies of the signal itself, as a Go launcher would.
        assert proc.returncode == -sig, proc.stderr.read() if proc.stderr else ""
        assert _gone_soon(child), f"the exec.d program (pid {child}) outlived the launcher"
        assert list(tmpdir.iterdir()) == []  # the exec.d output file was removed
        assert proc.stdout is not None and proc.stdout.read() == b""  # the process never started
    finally:
        _kill_quietly(child)
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--pid", "--fork", "--kill-child", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="unshare --pid needs root (the Docker test covers PID 1)")
def test_as_pid_1_sigterm_during_exec_d_exits_143(image: FakeImage, tmp_path: Path) -> None:
    marker, tmpdir = tmp_path / "execd.pid", tmp_path / "tmpdir"
    tmpdir.mkdir()
    _hanging_exec_d(image, marker)
    # --kill-child: if the test fails, the namespace (and the sleep in it) goes with the unshare process
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", str(image.process_dir / "web")],
        env=_env(image, tmpdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=image.root,
    )
    try:
        _wait_for(marker, proc)  # the pid it wrote is 2 or so: inside the namespace
        launcher = _namespace_init(proc.pid)
        os.kill(launcher, signal.SIGTERM)
        proc.wait(timeout=30)
        assert proc.returncode == 143, proc.stderr.read() if proc.stderr else ""
        assert list(tmpdir.iterdir()) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _namespace_init(unshare_pid: int) -> int:
    """The host pid of the forked child of `unshare --fork`: PID 1 of the new namespace."""
    children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def test_exec_d_reads_dev_null_and_leaves_no_file(image: FakeImage, tmp_path: Path) -> None:
    """Go's exec.Cmd with a nil Stdin gives the program /dev/null (launch/exec_d.go runs it so); the
    launcher's own stdin is the process's, not the exec.d program's."""
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    image.exec_d(
        "bp", "layer", "stdin", 'if read -r line; then v="got:$line"; else v=eof; fi\necho "IN = \\"$v\\"" >&3\n'
    )
    image.set_order(["bp"])
    image.set_processes([image.process()])
    env = _env(image, tmpdir)
    completed = subprocess.run(
        [str(image.process_dir / "web")], env=env, input="typed\n", capture_output=True, text=True, timeout=60
    )

    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1])["env"]["IN"] == "eof"
    assert list(tmpdir.iterdir()) == []


@pytest.mark.parametrize("tmpdir_kind", ["missing", "read-only"])
def test_exec_d_still_works_without_a_writable_temp_dir(image: FakeImage, tmp_path: Path, tmpdir_kind: str) -> None:
    """No writable $TMPDIR (a read-only root file system): exec.d output comes through a command
    substitution, as before (not interruptible by signals then; documented in the script)."""
    tmpdir = tmp_path / "tmpdir"
    if tmpdir_kind == "read-only":
        tmpdir.mkdir(mode=0o555)
    image.exec_d("bp", "layer", "set", "echo 'FROM_EXECD = \"yes\"' >&3\n")
    image.set_order(["bp"])
    image.set_processes([image.process()])
    env = _env(image, tmpdir)
    if os.geteuid() == 0 and tmpdir_kind == "read-only":
        # root may write anywhere: make the dir a file instead, which no one can create files in
        tmpdir.rmdir()
        tmpdir.write_text("")
    result = image.run_process("web", env=env)
    assert result.env["FROM_EXECD"] == "yes"


def test_exec_d_failure_removes_the_output_file(image: FakeImage, tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    image.exec_d("bp", "layer", "fails", "echo 'A = \"1\"' >&3; exit 4\n")
    image.set_order(["bp"])
    image.set_processes([image.process()])
    result = image.run_process("web", env=_env(image, tmpdir))
    assert result.returncode == 82
    assert "exit status 4" in result.stderr
    assert list(tmpdir.iterdir()) == []
