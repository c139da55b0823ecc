"""A plain `bpconform clean` must leave the resources of runs still going alone: which sessions are
alive is told by flocks that their processes hold (engine.hold_session / live_sessions)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conformance import engine


@pytest.fixture
def sessions_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BPCONFORM_CACHE", str(tmp_path))
    return tmp_path / "live-sessions"


def _holder(session: str) -> subprocess.Popen[str]:
    """Another process that labels a resource with `session` and then waits on stdin."""
    code = textwrap.dedent(
        f"""
        from conformance import engine
        engine.labels("build", session_id={session!r})
        print("held", flush=True)
        input()
        """
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_a_session_is_alive_while_a_process_holds_it_and_ended_after(sessions_dir: Path) -> None:
    child = _holder("run-abc")
    try:
        assert "run-abc" in engine.live_sessions()
        assert (sessions_dir / "run-abc.lock").exists()
    finally:
        child.communicate("\n", timeout=30)
    assert "run-abc" not in engine.live_sessions()
    assert not (sessions_dir / "run-abc.lock").exists(), "an ended session's lock file is removed"


def test_two_processes_share_a_session_and_it_lives_until_the_last_ends(sessions_dir: Path) -> None:
    first, second = _holder("run-shared"), _holder("run-shared")
    first.communicate("\n", timeout=30)
    try:
        assert "run-shared" in engine.live_sessions()
    finally:
        second.communicate("\n", timeout=30)
    assert engine.live_sessions() == set()


def test_a_lock_file_nobody_holds_is_an_ended_session(sessions_dir: Path) -> None:
    sessions_dir.mkdir(parents=True)
    (sessions_dir / "crashed.lock").touch()
    assert engine.live_sessions() == set()


def test_a_session_id_that_is_not_a_plain_name_is_never_a_path(sessions_dir: Path) -> None:
    engine.hold_session("../escape")
    assert not (sessions_dir.parent / "escape.lock").exists()
