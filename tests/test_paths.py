"""Work dirs leave at once and are deleted in the background, without ever blocking on a bad entry."""

from __future__ import annotations

import os
import subprocess

import pytest

from conformance import paths


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BPCONFORM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _work_dir(root, files: int = 50):
    for index in range(files):
        (root / "layers" / f"d{index % 5}").mkdir(parents=True, exist_ok=True)
        (root / "layers" / f"d{index % 5}" / f"f{index}").write_text("x" * 100)
    return root


def test_a_discarded_tree_is_gone_at_once_and_deleted_soon_after(cache) -> None:
    work = _work_dir(paths.cache_dir("work") / "abc")
    paths.discard_tree(work)
    assert not work.exists()
    paths.wait_for_discards()
    assert list((cache / "work-trash").iterdir()) == []


def test_trash_left_by_a_killed_process_is_swept_by_the_next_discard(cache) -> None:
    leftover = _work_dir(paths.cache_dir("work-trash") / "old-run")
    paths.discard_tree(_work_dir(paths.cache_dir("work") / "new"))
    paths.wait_for_discards()
    assert not leftover.exists()


def test_an_undeletable_entry_is_reported_once_and_never_breaks_the_next_discard(cache, capfd) -> None:
    """An entry that cannot be removed (here a busy mount point) is marked, reported once, skipped."""
    stuck = _work_dir(paths.cache_dir("work-trash") / "stuck")
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mount_point = stuck / "layers" / "mnt"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "none", str(mount_point)], check=True)
    try:
        paths.discard_tree(_work_dir(paths.cache_dir("work") / "w"))
        assert paths.wait_for_discards(timeout=30), "the trash collector is still running"
        assert [entry.name for entry in (cache / "work-trash").iterdir()] == ["stuck.undeletable"]
        paths.discard_tree(_work_dir(paths.cache_dir("work") / "w2"))
        assert paths.wait_for_discards(timeout=30)
        assert [entry.name for entry in (cache / "work-trash").iterdir()] == ["stuck.undeletable"]
        err = capfd.readouterr().err
        assert err.count("could not delete") == 1, err
        assert "stuck.undeletable" in err and "Traceback" not in err
    finally:
        subprocess.run(["umount", str(cache / "work-trash" / "stuck.undeletable" / "layers" / "mnt")], check=False)


def test_builds_work_where_bpconform_work_dir_says(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(paths.WORK_DIR_ENV, str(tmp_path / "big-disk" / "work"))
    assert paths.work_root() == tmp_path / "big-disk" / "work"
    assert paths.work_root().is_dir()


@pytest.fixture
def fake_shm(tmp_path, monkeypatch, cache):
    """A stand-in for /dev/shm that is 'a tmpfs with room' unless a test says otherwise."""
    shm = tmp_path / "shm"
    shm.mkdir()
    monkeypatch.delenv(paths.WORK_DIR_ENV, raising=False)
    monkeypatch.setattr(paths, "SHM", shm)
    monkeypatch.setattr(paths, "_is_tmpfs", lambda path: path == shm)
    return shm


def test_builds_work_in_memory_when_there_is_room(fake_shm) -> None:
    assert paths.work_root() == fake_shm / f"bpconform-{os.getuid()}" / "work"


def test_builds_work_on_disk_when_memory_is_short(fake_shm, cache, monkeypatch) -> None:
    monkeypatch.setattr(paths.shutil, "disk_usage", lambda path: paths.shutil._ntuple_diskusage(8, 7, 1))
    assert paths.work_root() == cache / "work"


def test_a_base_dir_someone_planted_in_shared_memory_is_not_followed(fake_shm, cache, tmp_path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (fake_shm / f"bpconform-{os.getuid()}").symlink_to(elsewhere)
    assert paths.work_root() == cache / "work"
    assert list(elsewhere.iterdir()) == []
