"""The build cache under concurrency and interruption.

Was: two builds of one image name at once crashed one (FileExistsError in BuildCache.save) and left a
cache mixing both (222 of 300 entries failed their digest next time); every save copied every cached
tar (work dir in /dev/shm, cache on disk: os.link fails); Ctrl-C during the save left `<cache>.new`;
repeated Ctrl-C left big work dirs in the trash.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from reliability.conftest import private_cache_root, take_inventory

from conformance import paths
from conformance.access import PackageAccess
from conformance.paths import REPO_ROOT, WORK_DIR_ENV
from conformance.platform.cache import BuildCache, CachedLayer
from conformance.platform.creator import create
from conformance.platform.safefs import remove_tree

pytestmark = pytest.mark.serial  # the serial pass (tests/conftest.py)

LAYERS_BP = """
for n in 1 2 3; do
    if [ -f "$1/c$n/f" ]; then echo "restored:c$n"; fi
    mkdir -p "$1/c$n" && head -c 20000 /dev/urandom >"$1/c$n/f"
    printf '[types]\\ncache = true\\n' >"$1/c$n.toml"
done
"""


def _cache_files(cache: BuildCache) -> list[str]:
    return sorted(str(p.relative_to(cache.root.parent)) for p in cache.root.parent.rglob("*") if p.is_file())


@pytest.mark.docker
def test_two_builds_of_one_image_name_at_once_neither_crash_nor_mix_the_cache(attack) -> None:
    bp = attack.buildpack("a", LAYERS_BP)
    image, cache = attack.builder.image_name(), attack.builder.cache("shared")
    app = attack.app()
    threads = [threading.Thread(target=attack.build, args=([bp], app), kwargs={"image": image, "cache": cache})]
    threads.append(threading.Thread(target=attack.build, args=([bp], app), kwargs={"image": image, "cache": cache}))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    third = attack.build([bp], app=app, image=image, cache=cache)

    assert [o.error for o in attack.outcomes] == [None, None, None]
    assert sum("restored:" in o.output for o in attack.outcomes[:2]) == 1  # the second waited, then restored
    assert all(f"restored:c{n}" in third.output for n in (1, 2, 3)), third.output
    assert "Skipping cached" not in third.output
    index = cache.load_index()
    assert all(cache.verified_tar(layer.sha) for layer in index.buildpacks["hostile/a"].values())
    assert not [name for name in _cache_files(cache) if ".new" in name or ".old" in name or ".tmp" in name]
    attack.check()


@pytest.mark.docker
def test_an_unchanged_cached_tar_is_not_copied_again_and_a_changed_one_replaces_it(attack) -> None:
    bp = attack.buildpack(
        "a",
        """
        if [ ! -d "$1/keep" ]; then mkdir "$1/keep" && echo same >"$1/keep/f"; fi
        printf '[types]\\ncache = true\\n' >"$1/keep.toml"
        mkdir -p "$1/fresh" && date +%s%N >"$1/fresh/f"
        printf '[types]\\ncache = true\\n' >"$1/fresh.toml"
        """,
    )
    image, cache = attack.builder.image_name(), attack.builder.cache("reuse")
    attack.build([bp], image=image, cache=cache)
    first = cache.load_index().buildpacks["hostile/a"]
    keep_blob = os.stat(cache.blob_path(first["keep"].sha))
    second_outcome = attack.build([bp], image=image, cache=cache)
    second = cache.load_index().buildpacks["hostile/a"]

    assert second_outcome.error is None
    assert {r.name: r.action for r in second_outcome.result.layers}["keep"] == "unchanged"
    kept = os.stat(cache.blob_path(second["keep"].sha))
    assert (kept.st_ino, kept.st_mtime_ns) == (keep_blob.st_ino, keep_blob.st_mtime_ns)  # not rewritten
    assert second["fresh"].sha != first["fresh"].sha
    assert not cache.blob_path(first["fresh"].sha).exists()  # the replaced tar is gone
    sbom_blobs = {cache.blob_path(sha).name for sha in cache.load_index().sbom.values()}  # the SBOM layers
    assert sorted(os.listdir(cache.root / "blobs")) == sorted(
        {cache.blob_path(layer.sha).name for layer in second.values()} | sbom_blobs
    )
    attack.check()


def test_an_interrupted_save_leaves_the_previous_cache_and_no_partial_files(tmp_path, monkeypatch) -> None:
    """Ctrl-C while a new tar is copied into the cache (work dir in memory, cache on disk)."""
    scratch = Path("/dev/shm") / f"bpconform-test-{os.getpid()}"
    scratch.mkdir()
    try:
        old_tar, new_tar = scratch / "old.tar", scratch / "new.tar"
        old_tar.write_bytes(b"o" * 10000)
        new_tar.write_bytes(b"n" * 3_000_000)
        cache = BuildCache(tmp_path / "cache")
        record = CachedLayer("sha256:" + "a" * 64, {"v": 1}, False, False, True)
        cache.save({"bp": {"l": (record, old_tar)}})
        before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))

        def copy_then_interrupt(source, target, *args, **kwargs):
            with open(source, "rb") as src, open(target, "wb") as dst:
                dst.write(src.read(1_000_000))
            raise KeyboardInterrupt

        monkeypatch.setattr(shutil, "copyfile", copy_then_interrupt)
        newer = CachedLayer("sha256:" + "b" * 64, {"v": 2}, False, False, True)
        with pytest.raises(KeyboardInterrupt):
            cache.save({"bp": {"l": (newer, new_tar)}})

        assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before
        assert cache.load_index().layer("bp", "l") == record
        assert not (tmp_path / "cache.new").exists()
    finally:
        remove_tree(scratch)


@pytest.mark.docker
def test_ctrl_c_during_a_build_deletes_its_work_dir_at_once(attack, work_root) -> None:
    """KeyboardInterrupt arrives while bin/build runs (raised from the output callback, where Ctrl-C
    would land in the main thread): the work dir goes now, nothing is left in the trash."""
    bp = attack.buildpack(
        "a",
        """
        mkdir -p "$1/big"
        i=0; while [ $i -lt 300 ]; do echo $i >"$1/big/f$i"; i=$((i+1)); done
        echo INTERRUPT-NOW
        sleep 30
        """,
    )

    def interrupt(text: str) -> None:
        if "INTERRUPT-NOW" in text:
            raise KeyboardInterrupt

    wheels = attack.tmp_path / "no-wheels"
    wheels.mkdir(exist_ok=True)
    request = attack.builder.request(attack.app(), [str(bp)], access=PackageAccess("offline", wheelhouse=wheels))
    request.on_output = interrupt
    with pytest.raises(KeyboardInterrupt):
        create(request)

    trash = work_root.with_name(f"{work_root.name}-trash")
    assert list(work_root.iterdir()) == []
    assert not trash.exists() or list(trash.iterdir()) == []
    paths.wait_for_discards(30)
    attack.check()


@pytest.mark.docker
def test_sigterm_during_a_cli_build_leaves_no_work_dir_no_container_and_no_partial_cache(attack, tmp_path) -> None:
    """`kill <bpconform build>` while bin/build runs: a clean exit, not a traceback, and nothing left
    behind (the signal is acted on when the buildpack prints its marker: no timing involved)."""
    bp = attack.buildpack(
        "a",
        """
        mkdir -p "$1/c" && echo data >"$1/c/f"
        printf '[types]\\ncache = true\\n' >"$1/c.toml"
        echo TERMINATE-NOW
        sleep 60
        """,
    )
    session = f"sec{uuid.uuid4().hex[:9]}"
    root = private_cache_root(tmp_path)
    image = f"bpconform-security/sigterm:{session}"
    env = {**os.environ, "BPCONFORM_SESSION": session, "BPCONFORM_CACHE": str(root), WORK_DIR_ENV: str(root / "work")}
    command = [sys.executable, "-m", "conformance.cli", "build", image, "--path", str(attack.app()), "-b", str(bp)]
    proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cache = BuildCache.for_image(image)  # where the CLI keeps it (the shared build-caches dir)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "TERMINATE-NOW" in line:
                proc.send_signal(signal.SIGTERM)
                break
        _out, err = proc.communicate(timeout=120)
        inventory = take_inventory(None, session)
    finally:
        proc.kill()
        for leftover in (root / "build-caches" / cache.root.name, root / "build-caches" / cache.lock_path.name):
            remove_tree(leftover)

    assert proc.returncode == 128 + signal.SIGTERM, (proc.returncode, err[-2000:])
    assert "Traceback" not in err, err[-3000:]
    assert not inventory.containers and not inventory.volumes, inventory
    assert list((root / "work").iterdir()) == []
    trash = root / "work-trash"
    assert not trash.exists() or list(trash.iterdir()) == []
    assert not list((root / "build-caches").glob(f"{cache.root.name}.*new*"))
    attack.check()
