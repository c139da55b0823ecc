"""The user's app dir: special files refused before copying, sparse files kept sparse, never modified.

Was: a character device (`mknod ... c 1 5`, /dev/zero) read until the disk filled; a 2 GiB sparse file
became 4 GiB in /dev/shm (copy + tar).
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
from pathlib import Path

import pytest

from conformance.errors import PlatformError
from conformance.paths import WORK_DIR_ENV
from conformance.platform.appdir import copy_app

from .conftest import assert_clear_error


def _special(app: Path, kind: str) -> Path:
    path = app / "sub" / f"special-{kind}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "chardev":
        os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path))
    return path


def _snapshot(root: Path) -> dict[str, tuple[int, int, int, str]]:
    found = {}
    for entry in [root, *sorted(root.rglob("*"))]:
        st = entry.lstat()
        digest = (
            hashlib.sha256(entry.read_bytes()).hexdigest()
            if stat.S_ISREG(st.st_mode)
            else os.readlink(entry)
            if stat.S_ISLNK(st.st_mode)
            else ""
        )
        found[str(entry.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return found


@pytest.mark.docker
@pytest.mark.parametrize("kind", ["chardev", "fifo", "socket"])
def test_device_files_fifos_and_sockets_in_the_app_are_refused_before_copying(attack, kind) -> None:
    if kind == "chardev" and os.geteuid() != 0:
        pytest.skip("needs root for mknod")
    app = attack.app({"app.py": "print(1)\n"})
    _special(app, kind)
    bp = attack.buildpack("a", "echo bp-ran")
    outcome = attack.build([bp], app=app)

    assert outcome.error is not None and "bp-ran" not in outcome.output
    attack.check(f"sub/special-{kind}", "app directory")


def test_a_sparse_file_stays_sparse_in_the_app_copy(tmp_path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    with open(app / "sparse.img", "wb") as handle:
        handle.write(b"head")
        handle.seek(256 * 1024 * 1024)
        handle.write(b"tail")
    copy_app(app, tmp_path / "work" / "workspace")

    copied = (tmp_path / "work" / "workspace" / "sparse.img").stat()
    assert copied.st_size == 256 * 1024 * 1024 + 4
    assert copied.st_blocks * 512 < 1024 * 1024, "the holes were written out"
    with open(tmp_path / "work" / "workspace" / "sparse.img", "rb") as handle:
        assert handle.read(4) == b"head"
        handle.seek(256 * 1024 * 1024)
        assert handle.read() == b"tail"


def test_a_huge_sparse_file_is_refused_up_front_naming_it_and_the_work_dir_setting(tmp_path) -> None:
    """1 TiB apparent size: the layer tar would store it in full, so it cannot fit; nothing is copied."""
    app = tmp_path / "app"
    app.mkdir()
    with open(app / "disk.img", "wb") as handle:
        handle.truncate(1024**4)
    with pytest.raises(PlatformError) as refused:
        copy_app(app, tmp_path / "work" / "workspace")

    assert_clear_error(refused.value, "disk.img", "sparse")
    assert WORK_DIR_ENV in refused.value.hint
    assert not (tmp_path / "work" / "workspace").exists()


def test_a_symlink_out_of_the_app_is_refused(tmp_path) -> None:
    app = tmp_path / "app"
    (app / "pkg").mkdir(parents=True)
    os.symlink("../../outside", app / "pkg" / "escape")
    with pytest.raises(PlatformError) as refused:
        copy_app(app, tmp_path / "work" / "workspace")
    assert_clear_error(refused.value, "pkg/escape", "outside the app")


@pytest.mark.docker
def test_the_users_app_dir_is_never_modified(attack) -> None:
    app = attack.app({"app.py": "print(1)\n", "pkg/mod.py": "x = 1\n", "data/readonly.txt": "ro\n"})
    os.symlink("pkg/mod.py", app / "link")
    (app / "data" / "readonly.txt").chmod(0o444)
    before = _snapshot(app)
    bp = attack.buildpack(
        "a",
        """
        echo changed >>/workspace/app.py
        rm -rf /workspace/pkg /workspace/link
        chmod 777 /workspace/data || true
        echo new >/workspace/new-file
        """,
    )
    outcome = attack.build([bp], app=app)

    assert outcome.error is None, outcome.error
    assert _snapshot(app) == before
    attack.check()
