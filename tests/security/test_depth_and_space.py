"""No recursion limit, no poisoning: deep trees, a full work dir, a damaged cache, an undeletable leftover.

Was: RecursionError tracebacks at 600+ levels (app copy, layer tar) and then in *every* later build
from the background deleter; `OSError: No space left on device`; a cache dir replaced by a file made
every later build of that image fail after export.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import paths
from conformance.paths import WORK_DIR_ENV
from conformance.platform import safefs, workdir
from conformance.platform.appdir import copy_app
from conformance.platform.archive import Owner, fingerprint, write_layer_tar

DEEP = 5000


def _deep_tree(root: Path, depth: int) -> Path:
    """`root/d/d/.../d/leaf` `depth` levels down, made through dir fds (the path is longer than PATH_MAX)."""
    root.mkdir(parents=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    leaf = os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(leaf, b"deep\n")
    os.close(leaf)
    os.close(fd)
    return root


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """Where builds work (memory when it has room, as `work_root` picks), removed at any depth."""
    base = paths.SHM if paths.SHM.is_dir() else tmp_path
    made = base / f"bpconform-deep-{uuid.uuid4().hex[:8]}"
    made.mkdir()
    yield made
    safefs.remove_tree(made)  # pytest's own tmp cleanup (shutil.rmtree) would hit the recursion limit


def test_copy_tar_fingerprint_chown_and_delete_work_5000_levels_deep(scratch) -> None:
    app = _deep_tree(scratch / "app", DEEP)
    copy = scratch / "work" / "workspace"
    try:
        copy_app(app, copy)
        layer = write_layer_tar(scratch / "l.tar", [(copy, "workspace")], Owner(1000, 1000))
        with tarfile.open(layer.path) as archive:
            names = archive.getnames()
        assert len(names) == DEEP + 2 and names[-1].endswith("/d/leaf") and names[-1].count("/") == DEEP + 1
        assert fingerprint(copy) == fingerprint(app)  # names, modes, sizes and mtimes all copied
        safefs.chown_tree(copy, 1234, 1234)
        assert safefs.remove_tree(copy) and not copy.exists()
        assert safefs.remove_tree(app) and not app.exists()
    finally:
        safefs.remove_tree(copy)
        safefs.remove_tree(app)


@pytest.mark.docker
def test_an_app_dir_600_levels_deep_builds(attack) -> None:
    app = _deep_tree(attack.tmp_path / "deep-app", 600)
    bp = attack.buildpack("a", "find /workspace -name leaf | head -1 | grep -q leaf && echo found-the-leaf")
    outcome = attack.build([bp], app=app)

    assert outcome.error is None, outcome.error
    assert "found-the-leaf" in outcome.output
    attack.check()


@pytest.mark.docker
def test_a_layer_600_levels_deep_builds_and_rebuilds_from_cache(attack) -> None:
    bp = attack.buildpack(
        "a",
        """
        if [ -d "$1/deep/d" ]; then echo restored-deep; fi
        mkdir -p "$1/deep" && cd "$1/deep"
        i=0; while [ $i -lt 600 ]; do mkdir -p d && cd d; i=$((i + 1)); done
        echo leaf >leaf
        printf '[types]\\nlaunch = true\\ncache = true\\n' >"$1/deep.toml"
        """,
    )
    image, cache = attack.builder.image_name(), attack.builder.cache("deep-cache")
    first = attack.build([bp], image=image, cache=cache)
    second = attack.build([bp], image=image, cache=cache)

    assert first.error is None and second.error is None, (first.error, second.error)
    assert "restored-deep" in second.output
    attack.check()


@pytest.fixture
def small_work_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """BPCONFORM_WORK_DIR on a 24 MiB tmpfs of its own."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "none", str(mount_point)], check=True)
    root = mount_point / "work"
    monkeypatch.setenv(WORK_DIR_ENV, str(root))
    monkeypatch.setattr(workdir, "work_root", paths.work_root)
    try:
        yield root
    finally:
        paths.wait_for_discards(30)
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.mark.docker
def test_a_full_work_dir_is_a_clear_error_and_the_next_build_works(attack, small_work_dir) -> None:
    """16 MiB of layer fit in the 24 MiB work dir; its 16 MiB tar does not."""
    big = attack.buildpack(
        "a",
        """
        mkdir "$1/big" && head -c 16000000 /dev/urandom >"$1/big/blob"
        printf '[types]\\nlaunch = true\\n' >"$1/big.toml"
        """,
    )
    small = attack.buildpack(
        "b", 'mkdir "$1/s" && echo s >"$1/s/f"\nprintf \'[types]\\nlaunch = true\\n\' >"$1/s.toml"'
    )
    full = attack.build([big])
    after = attack.build([small])

    assert full.error is not None and after.error is None, (full.error, after.error)
    assert "no space left" in full.error.message
    attack.check(WORK_DIR_ENV, str(small_work_dir.parent))
    assert list(small_work_dir.iterdir()) == []


LAYER_BP = """
echo "restored:$(cat "$1/c/f" 2>/dev/null || echo none)"
mkdir -p "$1/c" && echo cached >"$1/c/f"
printf '[types]\\ncache = true\\n' >"$1/c.toml"
"""


@pytest.mark.docker
def test_a_cache_dir_replaced_by_a_file_is_a_clear_error_and_clear_cache_repairs_it(attack) -> None:
    bp = attack.buildpack("a", LAYER_BP)
    image, cache = attack.builder.image_name(), attack.builder.cache("damaged")
    cache.root.write_text("not a cache\n")
    refused = attack.build([bp], image=image, cache=cache)
    repaired = attack.build([bp], image=image, cache=cache, clear_cache=True)
    next_one = attack.build([bp], image=image, cache=cache)

    assert refused.error is not None and repaired.error is None and next_one.error is None
    assert "restored:cached" in next_one.output
    attack.check(str(cache.root), "not a directory")


@pytest.mark.docker
def test_a_garbage_cache_index_is_ignored_with_a_note_and_rewritten(attack) -> None:
    bp = attack.buildpack("a", LAYER_BP)
    image, cache = attack.builder.image_name(), attack.builder.cache("garbage")
    attack.build([bp], image=image, cache=cache)
    (cache.root / "index.json").write_bytes(b"\xff\xfe{ not json")
    noted = attack.build([bp], image=image, cache=cache)
    next_one = attack.build([bp], image=image, cache=cache)

    assert noted.error is None and next_one.error is None
    assert "Ignoring the cache index" in noted.output and "restored:none" in noted.output
    assert "restored:cached" in next_one.output
    attack.check()


@pytest.mark.docker
def test_an_undeletable_leftover_is_reported_once_and_builds_go_on(attack, work_root, capfd) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    trash = work_root.with_name(f"{work_root.name}-trash")
    stuck = trash / "old-build" / "layers"
    stuck.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "none", str(stuck)], check=True)
    bp = attack.buildpack("a", "echo ok")
    try:
        first = attack.build([bp])
        paths.wait_for_discards(30)
        second = attack.build([bp])
        paths.wait_for_discards(30)
        err = capfd.readouterr().err
    finally:
        subprocess.run(["umount", str(trash / "old-build.undeletable" / "layers")], check=False)
        subprocess.run(["umount", str(stuck)], check=False)
    assert first.error is None and second.error is None
    assert err.count("could not delete") == 1 and "Traceback" not in err, err
    assert sorted(entry.name for entry in trash.iterdir()) == ["old-build.undeletable"]
    paths.discard_tree(trash / "old-build.undeletable", now=True)  # unmounted now: the test's own leftover
    attack.check()
