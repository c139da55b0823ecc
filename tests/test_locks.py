"""The cross-process lock: one holder at a time, a waiter learns that it waited, a dead holder frees it."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from conformance.locks import exclusive_lock

CONTEXT = multiprocessing.get_context("fork")
PATIENCE = 60.0  # seconds: only a bound on a hang, never a measured duration


def _hold(lock: Path, held, release, marker: Path) -> None:
    with exclusive_lock(lock):
        held.set()
        release.wait(PATIENCE)
        marker.write_text("the holder was done")  # still under the lock


def _take(lock: Path, results, marker: Path) -> None:
    with exclusive_lock(lock) as waited:
        results.put((waited, marker.exists()))


def _waits_for_flock(pid: int, lock: Path) -> bool:
    """Whether `pid` is queued for a flock on `lock` (a `->` line in /proc/locks)."""
    inode = str(lock.stat().st_ino)
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields and str(pid) in fields and fields[-3].rsplit(":", 1)[-1] == inode:
            return True
    return False


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        time.sleep(0.02)


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    if not Path("/proc/locks").exists():
        pytest.skip("needs /proc/locks to see a process waiting for a lock")
    return tmp_path / "locks" / "thing.lock"


def test_second_process_waits_for_the_first_and_knows_it(lock: Path, tmp_path: Path) -> None:
    held, release, results = CONTEXT.Event(), CONTEXT.Event(), CONTEXT.Queue()
    marker = tmp_path / "done"
    holder = CONTEXT.Process(target=_hold, args=(lock, held, release, marker))
    holder.start()
    assert held.wait(PATIENCE)
    taker = CONTEXT.Process(target=_take, args=(lock, results, marker))
    taker.start()
    _until(lambda: _waits_for_flock(taker.pid, lock), "the second process queues for the lock")
    release.set()
    waited, holder_was_done = results.get(timeout=PATIENCE)
    holder.join(PATIENCE)
    taker.join(PATIENCE)
    assert waited is True
    assert holder_was_done, "the second process got the lock while the first still held it"


def test_uncontended_lock_does_not_wait_and_is_released_after_the_block(lock: Path) -> None:
    with exclusive_lock(lock) as waited:
        assert waited is False
        assert lock.parent.is_dir()
    with exclusive_lock(lock) as waited_again:
        assert waited_again is False


@pytest.mark.serial
def test_a_killed_holder_frees_the_lock(lock: Path, tmp_path: Path) -> None:
    held, never, results = CONTEXT.Event(), CONTEXT.Event(), CONTEXT.Queue()
    holder = CONTEXT.Process(target=_hold, args=(lock, held, never, tmp_path / "unused"))
    holder.start()
    assert held.wait(PATIENCE)
    taker = CONTEXT.Process(target=_take, args=(lock, results, tmp_path / "unused"))
    taker.start()
    _until(lambda: _waits_for_flock(taker.pid, lock), "the second process queues for the lock")
    os.kill(holder.pid, 9)  # like a worker killed mid-build: no finally block runs
    holder.join(PATIENCE)
    waited, _ = results.get(timeout=PATIENCE)
    taker.join(PATIENCE)
    assert waited is True


# -- remove=True: the lock file is gone after the block, and a waiter never holds a removed file ----------


def _hold_removable(lock: Path, held, release) -> None:
    with exclusive_lock(lock, remove=True):
        held.set()
        release.wait(PATIENCE)


def _take_removable_and_hold(lock: Path, held, release, results) -> None:
    with exclusive_lock(lock, remove=True) as waited:
        results.put(waited)
        held.set()
        release.wait(PATIENCE)


def _flock_is_free(lock: Path) -> bool:
    import fcntl

    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def test_a_removable_lock_leaves_no_file_behind(lock: Path) -> None:
    with exclusive_lock(lock, remove=True) as waited:
        assert waited is False
        assert lock.is_file()
    assert not lock.exists()


def test_a_waiter_on_a_removed_lock_file_locks_the_one_the_path_names(lock: Path) -> None:
    """The first holder unlinks the file the second was queued on; the second must start over on the
    file the path names now, or a third process would lock that one while the second holds the old."""
    first_held, first_release = CONTEXT.Event(), CONTEXT.Event()
    second_held, second_release, results = CONTEXT.Event(), CONTEXT.Event(), CONTEXT.Queue()
    first = CONTEXT.Process(target=_hold_removable, args=(lock, first_held, first_release))
    first.start()
    assert first_held.wait(PATIENCE)
    second = CONTEXT.Process(target=_take_removable_and_hold, args=(lock, second_held, second_release, results))
    second.start()
    try:
        _until(lambda: _waits_for_flock(second.pid, lock), "the second process queues for the lock")
        first_release.set()
        first.join(PATIENCE)
        assert second_held.wait(PATIENCE)
        assert results.get(timeout=PATIENCE) is True
        assert lock.is_file(), "the second holder holds a lock file that is not at the path"
        assert not _flock_is_free(lock), "a third process got the lock while the second held it"
    finally:
        second_release.set()
        second.join(PATIENCE)
        first_release.set()
        first.join(PATIENCE)
    assert not lock.exists()


def test_remove_if_unheld_keeps_a_held_lock_file(lock: Path) -> None:
    from conformance.locks import remove_if_unheld

    held, release = CONTEXT.Event(), CONTEXT.Event()
    holder = CONTEXT.Process(target=_hold, args=(lock, held, release, lock.parent / "done"))
    holder.start()
    try:
        assert held.wait(PATIENCE)
        assert remove_if_unheld(lock) is False
        assert lock.is_file()
    finally:
        release.set()
        holder.join(PATIENCE)
    assert remove_if_unheld(lock) is True  # what an older build left behind, nobody holding it
    assert not lock.exists()
    assert remove_if_unheld(lock) is False
