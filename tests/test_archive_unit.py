"""Layer tars: what makes two builds of the same tree give the same diffID, and a different tree not."""

from __future__ import annotations

import hashlib
import os
import socket
import tarfile
from pathlib import Path

import pytest

from conformance.platform.archive import NORMALIZED_MTIME, Owner, extract_layer_tar, write_layer_tar

OWNER = Owner(1000, 1001)


def _tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "python3").write_bytes(b"\x7fELF" + b"\0" * 5000)
    (root / "bin" / "python3").chmod(0o755)
    os.symlink("python3", root / "bin" / "python")
    os.link(root / "bin" / "python3", root / "bin" / "python3.13")
    (root / "lib-extra").mkdir()  # sorts before "lib/..." byte-wise: '-' < '/'
    (root / "lib").mkdir()
    (root / "lib" / "os.py").write_text("# os\n")
    os.mkfifo(root / "fifo")
    return root


def _members(tar_path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(tar_path) as tar:
        return tar.getmembers()


def test_entries_are_sorted_normalised_and_the_digest_is_the_tar_sha256(tmp_path) -> None:
    layer = write_layer_tar(
        tmp_path / "l.tar", [(_tree(tmp_path / "t"), "layers/bp/python")], OWNER, parents=["layers"]
    )
    members = _members(layer.path)
    names = [m.name for m in members]
    assert names == sorted(names, key=lambda n: n.encode())
    assert names[:3] == ["layers", "layers/bp/python", "layers/bp/python/bin"]
    assert names.index("layers/bp/python/lib-extra") < names.index("layers/bp/python/lib/os.py")
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(NORMALIZED_MTIME, 1000, 1001, "", "")}
    assert layer.diff_id == "sha256:" + hashlib.sha256(layer.path.read_bytes()).hexdigest()
    assert layer.size == layer.path.stat().st_size


def test_links_fifos_and_modes_survive_and_sockets_are_left_out(tmp_path) -> None:
    tree = _tree(tmp_path / "t")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tree / "app.sock"))
    try:
        layer = write_layer_tar(tmp_path / "l.tar", [(tree, "p")], OWNER)
    finally:
        server.close()
    by_name = {m.name: m for m in _members(layer.path)}
    assert "p/app.sock" not in by_name
    assert by_name["p/bin/python"].issym() and by_name["p/bin/python"].linkname == "python3"
    assert by_name["p/bin/python3"].isreg() and by_name["p/bin/python3"].size == 5004
    assert by_name["p/bin/python3.13"].islnk() and by_name["p/bin/python3.13"].linkname == "p/bin/python3"
    assert by_name["p/fifo"].isfifo()
    assert by_name["p/bin/python3"].mode == 0o755


def test_same_content_same_digest_whatever_the_mtimes_and_owners(tmp_path) -> None:
    first = write_layer_tar(tmp_path / "a.tar", [(_tree(tmp_path / "a"), "p")], OWNER)
    second_tree = _tree(tmp_path / "b")
    for path in second_tree.rglob("*"):
        if not path.is_symlink() and not path.is_fifo():
            os.utime(path, (1_000_000, 1_000_000))
        os.lchown(path, 4242, 4242)
    second = write_layer_tar(tmp_path / "b.tar", [(second_tree, "p")], OWNER)
    assert first.diff_id == second.diff_id


def test_any_content_or_mode_change_changes_the_digest(tmp_path) -> None:
    base = write_layer_tar(tmp_path / "base.tar", [(_tree(tmp_path / "t"), "p")], OWNER).diff_id
    (tmp_path / "t" / "lib" / "os.py").write_text("# os!\n")
    edited = write_layer_tar(tmp_path / "edited.tar", [(tmp_path / "t", "p")], OWNER).diff_id
    (tmp_path / "t" / "lib" / "os.py").chmod(0o600)
    chmodded = write_layer_tar(tmp_path / "chmodded.tar", [(tmp_path / "t", "p")], OWNER).diff_id
    assert len({base, edited, chmodded}) == 3


def test_restore_brings_back_exactly_the_layer_under_its_prefix(tmp_path) -> None:
    tree = _tree(tmp_path / "t")
    (tree / "lib" / "os.py").chmod(0o640)
    other = _tree(tmp_path / "other")
    layer = write_layer_tar(tmp_path / "l.tar", [(tree, "layers/bp/python"), (other, "layers/bp/pythonx")], OWNER)
    dest = tmp_path / "restored"
    extract_layer_tar(layer.path, "layers/bp/python", dest)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == sorted(
        p.relative_to(tree).as_posix() for p in tree.rglob("*")
    )
    assert (dest / "lib" / "os.py").read_text() == "# os\n"
    assert (dest / "lib" / "os.py").stat().st_mode & 0o777 == 0o640
    assert os.readlink(dest / "bin" / "python") == "python3"
    assert os.path.samefile(dest / "bin" / "python3", dest / "bin" / "python3.13")
    if os.geteuid() == 0:
        assert {(p.lstat().st_uid, p.lstat().st_gid) for p in dest.rglob("*")} == {(1000, 1001)}


def test_restoring_a_truncated_tar_raises_with_tar_s_reason(tmp_path) -> None:
    layer = write_layer_tar(tmp_path / "l.tar", [(_tree(tmp_path / "t"), "layers/bp/python")], OWNER)
    layer.path.write_bytes(layer.path.read_bytes()[:3000])
    with pytest.raises(OSError, match="could not extract layers/bp/python"):
        extract_layer_tar(layer.path, "layers/bp/python", tmp_path / "restored")
