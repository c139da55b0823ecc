"""The no-follow primitives every host-side access to buildpack-written dirs goes through (no Docker)."""

from __future__ import annotations

import os
import stat

import pytest

from conformance.platform import safefs
from conformance.platform.env import add_env_dir
from conformance.platform.layers import read_layers


def test_read_file_refuses_a_link_and_a_link_among_its_parents(tmp_path, sentinel) -> None:
    root = tmp_path / "layers"
    (root / "bp").mkdir(parents=True)
    (root / "bp" / "launch.toml").symlink_to(sentinel.public)
    (root / "linked").symlink_to(sentinel.dir)

    with pytest.raises(safefs.UnsafePath, match="symbolic link"):
        safefs.read_file(root, "bp/launch.toml")
    with pytest.raises(safefs.UnsafePath, match="symbolic link"):
        safefs.read_file(root, "linked/secret.txt")
    assert safefs.read_file(root, "bp/missing.toml") is None


def test_write_new_file_replaces_a_planted_link_instead_of_writing_through_it(tmp_path, sentinel) -> None:
    before = sentinel.snapshot()
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "build-bp.toml").symlink_to(sentinel.victim)

    safefs.write_new_file(plans, "build-bp.toml", b"[[entries]]\n", owner=(1000, 1000))

    planted = (plans / "build-bp.toml").lstat()
    assert stat.S_ISREG(planted.st_mode) and planted.st_uid == 1000
    assert (plans / "build-bp.toml").read_bytes() == b"[[entries]]\n"
    assert sentinel.snapshot() == before


def test_remove_tree_deletes_links_not_what_they_point_to(tmp_path, sentinel) -> None:
    before = sentinel.snapshot()
    tree = tmp_path / "work"
    (tree / "layers" / "bp").mkdir(parents=True)
    (tree / "layers" / "bp" / "dir-link").symlink_to(sentinel.dir)
    (tree / "layers" / "bp" / "file-link").symlink_to(sentinel.public)

    assert safefs.remove_tree(tree) and not tree.exists()
    assert sentinel.snapshot() == before


def test_chown_tree_never_changes_a_link_target(tmp_path, sentinel) -> None:
    before = sentinel.snapshot()
    tree = tmp_path / "layers"
    tree.mkdir()
    (tree / "to-dir").symlink_to(sentinel.dir)
    (tree / "to-file").symlink_to(sentinel.root_only)

    safefs.chown_tree(tree, 4321, 4321)

    assert os.lstat(tree / "to-dir").st_uid == 4321
    assert sentinel.snapshot() == before


def test_the_walk_is_in_byte_order_of_full_names_and_yields_links_as_links(tmp_path, sentinel) -> None:
    root = tmp_path / "t"
    for rel in ("a/b", "a-c", "a0", "lib/x", "lib-extra"):
        (root / rel).mkdir(parents=True)
    (root / "a" / "link").symlink_to(sentinel.dir)
    fd = safefs.open_root(root)
    try:
        entries = [(entry.name, entry.link) for entry in safefs.walk(fd, ".")]
    finally:
        os.close(fd)

    names = [name for name, _link in entries]
    assert names == sorted(names, key=os.fsencode)
    assert ("./a/link", str(sentinel.dir)) in entries
    assert not any(name.startswith("./a/link/") for name in names)


def test_layer_and_env_readers_refuse_links_naming_what_was_linked(tmp_path, sentinel) -> None:
    layers = tmp_path / "layers"
    (layers / "bp" / "l" / "env").mkdir(parents=True)
    (layers / "bp" / "l.toml").write_text("[types]\nbuild = true\n")
    (layers / "bp" / "l" / "env" / "TOKEN").symlink_to(sentinel.root_only)
    (layers / "bp" / "x.toml").symlink_to(sentinel.toml)

    with pytest.raises(safefs.UnsafePath, match=r"x\.toml of buildpack fixture/bp"):
        read_layers(layers / "bp", "fixture/bp", "0.10")
    with pytest.raises(safefs.UnsafePath, match="TOKEN"):
        add_env_dir({}, layers / "bp" / "l" / "env")
