"""The engine module against a real Docker engine: labels, session cleanup, interrupted runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conformance import engine
from conformance.stacks import ensure_stack

pytestmark = pytest.mark.docker
FIXTURES = Path(__file__).parent / "fixtures"


def _session_containers(session: str) -> list:
    return engine.ensure_engine().containers.list(all=True, filters={"label": f"{engine.SESSION}={session}"})


def test_run_labels_and_removes_its_container() -> None:
    stack = ensure_stack("bookworm")
    seen = engine.run(
        stack.run_image,
        ["sh", "-c", "cat /proc/self/cgroup >/dev/null; echo hello"],
        kind="selftest",
    )
    assert seen.exit_code == 0 and "hello" in seen.output
    leftovers = engine.ensure_engine().containers.list(
        all=True, filters={"label": [f"{engine.KIND}=selftest", f"{engine.SESSION}={engine.SESSION_ID}"]}
    )
    assert leftovers == [], "engine.run must remove its container"


@pytest.mark.serial
def test_run_times_out_and_still_cleans_up() -> None:
    stack = ensure_stack("bookworm")
    started = time.monotonic()
    result = engine.run(stack.run_image, ["sleep", "60"], timeout=2, kind="selftest")
    assert result.timed_out and time.monotonic() - started < 30
    assert not engine.ensure_engine().containers.list(all=True, filters={"label": f"{engine.KIND}=selftest"})


def test_cleanup_removes_only_the_given_session() -> None:
    client = engine.ensure_engine()
    stack = ensure_stack("bookworm")
    other = uuid.uuid4().hex[:12]
    mine = client.containers.create(stack.run_image, ["true"], labels=engine.labels("selftest"))
    theirs = client.containers.create(
        stack.run_image, ["true"], labels={**engine.labels("selftest"), engine.SESSION: other}
    )
    volume = client.volumes.create(labels={**engine.labels("selftest"), engine.SESSION: other})
    try:
        report = engine.cleanup(client, session=other)
        assert theirs.name in report.containers and volume.name in report.volumes
        assert mine.name not in report.containers
        mine.reload()  # still there
        assert client.images.get(stack.build_image), "persistent stack images must survive session cleanup"
    finally:
        engine.remove_container(mine)


@pytest.mark.serial
def test_interrupted_build_leaves_nothing_running(tmp_path: Path) -> None:
    """Ctrl-C during a build: the build container and everything else of that run is removed."""
    session = "int" + uuid.uuid4().hex[:9]
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("print('hi')\n")
    env = {**os.environ, "BPCONFORM_SESSION": session}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conformance.cli",
            "build",
            f"bpconform-selftest/interrupted:{session}",
            "--path",
            str(app),
            "--buildpack",
            str(FIXTURES / "sleepy"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not _session_containers(session) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _session_containers(session), "the build container never started"
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # a SIGKILLed run cannot clean up: remove what it made, so no test leaks it
            proc.kill()
            proc.wait(timeout=30)
            engine.cleanup(session=session)
    assert proc.returncode == 130, f"expected exit 130 after Ctrl-C, got {proc.returncode}: {output[-1500:]}"
    assert "Traceback" not in output, output[-2000:]
    assert _session_containers(session) == [], "containers of the interrupted run were left behind"


def test_missing_engine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_client", None)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(engine.EngineError) as caught:
        engine.ensure_engine()
    assert "no Docker engine is reachable at unix:///nonexistent/docker.sock" in caught.value.message
    assert "DOCKER_HOST" in caught.value.hint


def test_plain_cleanup_keeps_the_images_bpconform_build_made() -> None:
    """A `bpconform build` image (no session label) is the user's: a plain `bpconform clean` removes
    what crashed runs left, not it; `--all` (everything) does. Was: every CLI-built image and then
    its build cache vanished on the next plain clean."""
    client = engine.ensure_engine()
    stack = ensure_stack("bookworm")
    tag = uuid.uuid4().hex[:10]
    dead_session = uuid.uuid4().hex[:12]  # no process holds it: a crashed run's
    made = []
    for name, image_labels in (
        ("user", engine.labels("app", session=False)),
        ("crashed", {**engine.labels("app", session=False), engine.SESSION: dead_session}),
    ):
        container = client.containers.create(stack.run_image, ["true"])
        try:
            label_changes = [f'LABEL {key}="{value}"' for key, value in image_labels.items()]
            container.commit(f"bpconform-selftest/{name}", tag, changes=label_changes)
        finally:
            container.remove(force=True)
        made.append(f"bpconform-selftest/{name}:{tag}")
    user_image, crashed_image = made
    try:
        report = engine.cleanup(client)
        assert crashed_image in report.images and user_image not in report.images
        assert client.images.get(user_image)
        assert engine._is_user_image(client.images.get(user_image).labels)  # what --all removes on top
    finally:
        for image in made:
            with contextlib.suppress(Exception):
                client.images.remove(image, force=True)
