"""Runtime archives without an engine: packing, the manifest, source pins, caching decisions."""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
from pathlib import Path

import pytest

from conformance import runtimes, stacks
from conformance.errors import RuntimeBuildError
from conformance.runtimes import RuntimeArchive, SourcePin
from conformance.tomlcompat import load_toml

STACK = stacks.Stack("bookworm", "debian", "12", "bpconform/build:bookworm", "bpconform/run:bookworm", "amd64")


@pytest.fixture(autouse=True)
def isolated_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("BPCONFORM_CACHE", str(cache))
    return cache


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtimes, "_stack", lambda name, say: STACK)


def make_tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "lib" / "python3.13" / "ensurepip" / "_bundled").mkdir(parents=True)
    python = root / "bin" / "python3.13"
    python.write_text("#!/bin/sh\necho fake\n")
    python.chmod(0o700)
    (root / "bin" / "python3").symlink_to("python3.13")
    (root / "lib" / "python3.13" / "os.py").write_text("# os\n")
    (root / "lib" / "python3.13" / "ensurepip" / "_bundled" / "pip-25.1-py3-none-any.whl").write_bytes(b"PK")
    return root


# --- pure helpers ----------------------------------------------------------------------------


def test_pins_cover_the_default_versions_with_sha256() -> None:
    assert runtimes.DEFAULT_VERSIONS == ("3.11.2", "3.13.5")
    for version in runtimes.DEFAULT_VERSIONS:
        pin = runtimes.PINNED[version]
        assert pin.version == version
        assert pin.url.startswith("http://deb.debian.org/debian/pool/main/p/")
        assert len(pin.sha256) == 64


@pytest.mark.parametrize(("version", "minor"), [("3.13.5", "3.13"), ("3.11.2", "3.11"), ("3.14.0rc1", "3.14")])
def test_minor_version(version: str, minor: str) -> None:
    assert runtimes.minor_version(version) == minor


@pytest.mark.parametrize("bad", ["3.13", "python3.13.5", "3.13.5; rm -rf /", ""])
def test_minor_version_rejects_non_versions(bad: str) -> None:
    with pytest.raises(RuntimeBuildError):
        runtimes.minor_version(bad)


def test_archive_url_is_the_in_container_mount_path(tmp_path: Path) -> None:
    archive = RuntimeArchive(
        "3.13.5", "bookworm", "amd64", tmp_path / "python-3.13.5-bookworm-amd64.tar.gz", "", 0, "", ""
    )
    assert archive.url == "file:///bpconform/runtimes/python-3.13.5-bookworm-amd64.tar.gz"
    assert runtimes.archive_name("3.13.5", "bookworm", "amd64") == archive.path.name


# --- packing ---------------------------------------------------------------------------------


def test_pack_is_deterministic_and_normalised(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    first = runtimes.pack_tree(tree, tmp_path / "a.tar.gz")
    for path in tree.rglob("*"):  # new mtimes and another umask-ish mode must not matter
        os.utime(path, (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    second = runtimes.pack_tree(tree, tmp_path / "b.tar.gz")
    assert first.sha256 == second.sha256 == hashlib.sha256((tmp_path / "a.tar.gz").read_bytes()).hexdigest()
    assert first.size == (tmp_path / "a.tar.gz").stat().st_size

    raw = (tmp_path / "a.tar.gz").read_bytes()
    assert raw[4:8] == b"\0\0\0\0", "gzip header carries no timestamp"
    assert not raw[3] & 0x08, "gzip header carries no file name"
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[0] == "bin", "top level is the prefix's contents"
    assert names.index("lib") < names.index("lib/python3.13") < names.index("lib/python3.13/os.py")
    assert all(m.mtime == runtimes.NORMALIZED_MTIME for m in members)
    assert all((m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "") for m in members)
    by_name = {m.name: m for m in members}
    assert by_name["bin/python3"].issym() and by_name["bin/python3"].linkname == "python3.13"
    assert by_name["bin/python3.13"].mode & 0o755 == 0o755, "executables stay executable for everyone"
    assert by_name["lib/python3.13/os.py"].mode & 0o777 == 0o644
    assert first.tree_sha256 == hashlib.sha256(gzip.decompress(raw)).hexdigest()


def test_pack_changes_when_content_changes(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    first = runtimes.pack_tree(tree, tmp_path / "a.tar.gz")
    (tree / "lib" / "python3.13" / "os.py").write_text("# changed\n")
    assert runtimes.pack_tree(tree, tmp_path / "a.tar.gz").sha256 != first.sha256


def test_pack_refuses_a_tree_without_bin(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuntimeBuildError, match="no bin/"):
        runtimes.pack_tree(tmp_path / "empty", tmp_path / "x.tar.gz")
    assert not (tmp_path / "x.tar.gz").exists()


# --- manifest --------------------------------------------------------------------------------


def _archive(version: str, sha: str = "a" * 64, stack: str = "bookworm") -> RuntimeArchive:
    path = runtimes.runtimes_dir() / runtimes.archive_name(version, stack, "amd64")
    return RuntimeArchive(version, stack, "amd64", path, sha, 123, f"http://x/{version}", "b" * 64)


def test_register_writes_the_shared_manifest_keys() -> None:
    runtimes.register(_archive("3.13.5"), STACK)
    data = load_toml(runtimes.manifest_path())
    assert data["runtimes"] == [
        {
            "version": "3.13.5",
            "stack": "bookworm",
            "distro-name": "debian",
            "distro-version": "12",
            "arch": "amd64",
            "url": "file:///bpconform/runtimes/python-3.13.5-bookworm-amd64.tar.gz",
            "sha256": "a" * 64,
            "size": 123,
            "source-url": "http://x/3.13.5",
            "source-sha256": "b" * 64,
        }
    ]
    assert runtimes.read_manifest() == [_archive("3.13.5")]


def test_register_upserts_by_version_stack_arch_and_keeps_the_rest_sorted() -> None:
    trixie = stacks.Stack("trixie", "debian", "13", "b", "r", "amd64")
    runtimes.register(_archive("3.13.5"), STACK)
    runtimes.register(_archive("3.13.5", stack="trixie"), trixie)
    runtimes.register(_archive("3.11.2"), STACK)
    runtimes.register(_archive("3.13.5", sha="c" * 64), STACK)
    entries = runtimes.read_manifest()
    assert [(a.stack, a.version) for a in entries] == [
        ("bookworm", "3.11.2"),
        ("bookworm", "3.13.5"),
        ("trixie", "3.13.5"),
    ]
    assert runtimes.find_entry("3.13.5", "bookworm", "amd64").sha256 == "c" * 64
    assert runtimes.find_entry("3.13.5", "trixie", "amd64").sha256 == "a" * 64
    assert load_toml(runtimes.manifest_path())["runtimes"][2]["distro-version"] == "13"


def test_version_ordering_is_numeric() -> None:
    tables = runtimes.upsert_tables(
        [{"version": "3.9.1", "stack": "s", "arch": "a"}], {"version": "3.10.0", "stack": "s", "arch": "a"}
    )
    assert [t["version"] for t in tables] == ["3.9.1", "3.10.0"]


def test_malformed_manifest_is_a_user_error() -> None:
    runtimes.manifest_path().write_text("[[runtimes]\n")
    with pytest.raises(Exception, match="malformed runtime manifest") as err:
        runtimes.read_manifest()
    assert err.value.hint


# --- pinned sources --------------------------------------------------------------------------


def _pin_for(content: bytes) -> SourcePin:
    return SourcePin(
        "3.99.0", "http://mirror.invalid/pool/python_3.99.0.orig.tar.gz", hashlib.sha256(content).hexdigest()
    )


def _fake_download(content: bytes, calls: list[str]):
    def download(url: str, dest: Path) -> str:
        calls.append(url)
        dest.write_bytes(content)
        return hashlib.sha256(content).hexdigest()

    return download


def test_pinned_source_downloaded_once_then_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(runtimes, "_download", _fake_download(b"source", calls))
    pin = _pin_for(b"source")
    path = runtimes.fetch_pinned_source(pin, say=print)
    assert path.read_bytes() == b"source"
    assert runtimes.fetch_pinned_source(pin, say=print) == path
    assert calls == [pin.url]


def test_pinned_source_with_wrong_sha_is_rejected_and_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtimes, "_download", _fake_download(b"tampered", []))
    pin = _pin_for(b"source")
    with pytest.raises(RuntimeBuildError, match="pinned to") as err:
        runtimes.fetch_pinned_source(pin, say=print)
    assert "--source" in err.value.hint
    assert list(runtimes.cache_dir("sources").iterdir()) == []


def test_damaged_cached_source_is_downloaded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(runtimes, "_download", _fake_download(b"source", calls))
    pin = _pin_for(b"source")
    (runtimes.cache_dir("sources") / "python_3.99.0.orig.tar.gz").write_bytes(b"truncat")
    lines: list[str] = []
    assert runtimes.fetch_pinned_source(pin, say=lines.append).read_bytes() == b"source"
    assert calls == [pin.url]
    assert any("warning" in line for line in lines)


# --- ensure_runtime's decisions (the compile itself is replaced) -----------------------------


class FakeBuild:
    """Stands in for the container compile: packs a small tree and records the call."""

    def __init__(self, tmp_path: Path) -> None:
        self.calls: list[tuple[str, Path | None]] = []
        self.tree = make_tree(tmp_path / "built-tree")

    def __call__(self, version, stack, path, source, say) -> RuntimeArchive:
        self.calls.append((version, source))
        packed = runtimes.pack_tree(self.tree, path)
        source_sha = runtimes.sha256_file(source) if source else runtimes.PINNED[version].sha256
        return RuntimeArchive(version, stack.name, stack.arch, path, packed.sha256, packed.size, "u", source_sha)


@pytest.fixture
def fake_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_engine) -> FakeBuild:
    fake = FakeBuild(tmp_path)
    monkeypatch.setattr(runtimes, "_build_from_source", fake)
    return fake


def test_second_call_reuses_the_archive(fake_build: FakeBuild) -> None:
    lines: list[str] = []
    first = runtimes.ensure_runtime("3.13.5", "bookworm", on_output=lines.append)
    second = runtimes.ensure_runtime("3.13.5", "bookworm", on_output=lines.append)
    assert len(fake_build.calls) == 1
    assert second == first
    assert any(line.startswith("reusing ") for line in lines)
    assert runtimes.find_entry("3.13.5", "bookworm", "amd64") == first


def test_force_rebuilds(fake_build: FakeBuild) -> None:
    runtimes.ensure_runtime("3.13.5", "bookworm", on_output=print)
    runtimes.ensure_runtime("3.13.5", "bookworm", force=True, on_output=print)
    assert len(fake_build.calls) == 2


def test_corrupted_archive_is_rebuilt_with_a_warning(fake_build: FakeBuild) -> None:
    archive = runtimes.ensure_runtime("3.13.5", "bookworm", on_output=print)
    archive.path.write_bytes(b"garbage")
    lines: list[str] = []
    again = runtimes.ensure_runtime("3.13.5", "bookworm", on_output=lines.append)
    assert len(fake_build.calls) == 2
    assert any("corrupted" in line for line in lines)
    assert runtimes.sha256_file(again.path) == again.sha256


def test_missing_archive_is_rebuilt(fake_build: FakeBuild) -> None:
    runtimes.ensure_runtime("3.13.5", "bookworm", on_output=print).path.unlink()
    runtimes.ensure_runtime("3.13.5", "bookworm", on_output=print)
    assert len(fake_build.calls) == 2


def test_another_source_tarball_rebuilds_then_is_reused(fake_build: FakeBuild, tmp_path: Path) -> None:
    runtimes.ensure_runtime("3.13.5", "bookworm", on_output=print)
    mine = tmp_path / "Python-3.13.5.tgz"
    mine.write_bytes(b"my own source")
    archive = runtimes.ensure_runtime("3.13.5", "bookworm", source=mine, on_output=print)
    assert archive.source_sha256 == hashlib.sha256(b"my own source").hexdigest()
    runtimes.ensure_runtime("3.13.5", "bookworm", source=mine, on_output=print)
    assert fake_build.calls == [("3.13.5", None), ("3.13.5", mine)]


def test_unpinned_version_without_source_says_how_to_supply_one(no_engine) -> None:
    with pytest.raises(RuntimeBuildError, match="not pinned") as err:
        runtimes.ensure_runtime("3.12.7", "bookworm", on_output=print)
    assert "--source" in err.value.hint and "--prebuilt" in err.value.hint


def test_source_and_prebuilt_together_or_missing_paths_are_errors(tmp_path: Path, no_engine) -> None:
    with pytest.raises(RuntimeBuildError, match="not both"):
        runtimes.ensure_runtime("3.13.5", "bookworm", source=tmp_path, prebuilt=tmp_path)
    with pytest.raises(RuntimeBuildError, match="does not exist"):
        runtimes.ensure_runtime("3.12.7", "bookworm", source=tmp_path / "nope.tgz")


def test_prebuilt_tree_with_pip_is_refused_unless_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = make_tree(tmp_path / "tree")
    (tree / "lib" / "python3.13" / "site-packages" / "pip").mkdir(parents=True)
    ran: list[list[str]] = []

    def fake_run(image, command, **kwargs):
        ran.append(command)
        return runtimes.engine.RunResult(0, f"3.13.5\n{runtimes._PREBUILT_TARGET}\n")

    monkeypatch.setattr(runtimes.engine, "run", fake_run)
    with pytest.raises(RuntimeBuildError, match="has pip installed") as err:
        runtimes._validate_prebuilt(tree, "3.13.5", STACK, allow_pip=False)
    assert "--allow-pip" in err.value.hint
    assert ran == []
    runtimes._validate_prebuilt(tree, "3.13.5", STACK, allow_pip=True)
    assert ran


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (f"3.12.1\n{runtimes._PREBUILT_TARGET}\n", "holds Python 3.12.1, not 3.13.5"),
        ("3.13.5\n/opt/python\n", "not relocatable"),
    ],
)
def test_prebuilt_tree_version_and_relocation_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str, message: str
) -> None:
    tree = make_tree(tmp_path / "tree")
    monkeypatch.setattr(runtimes.engine, "run", lambda *a, **k: runtimes.engine.RunResult(0, output))
    with pytest.raises(RuntimeBuildError, match=message):
        runtimes._validate_prebuilt(tree, "3.13.5", STACK, allow_pip=False)


def test_prebuilt_without_bin_python3_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tree" / "bin").mkdir(parents=True)
    with pytest.raises(RuntimeBuildError, match="no bin/python3"):
        runtimes._validate_prebuilt(tmp_path / "tree", "3.13.5", STACK, allow_pip=False)


def test_prebuilt_is_packed_and_recorded_with_its_tree_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_engine
) -> None:
    tree = make_tree(tmp_path / "tree")
    monkeypatch.setattr(
        runtimes.engine, "run", lambda *a, **k: runtimes.engine.RunResult(0, f"3.13.5\n{runtimes._PREBUILT_TARGET}\n")
    )
    archive = runtimes.ensure_runtime("3.13.5", "bookworm", prebuilt=tree, on_output=print)
    assert archive.source_url == tree.resolve().as_uri()
    assert archive.source_sha256 == hashlib.sha256(gzip.decompress(archive.path.read_bytes())).hexdigest()
    assert runtimes.find_entry("3.13.5", "bookworm", "amd64") == archive


# --- condensed output ------------------------------------------------------------------------


def test_condensed_output_shows_progress_only_and_keeps_a_tail(tmp_path: Path) -> None:
    shown: list[str] = []
    with (tmp_path / "log").open("w") as log:
        out = runtimes._CondensedOutput(log, shown.append)
        out("==> configure\nchecking for gcc... gcc\n")
        out("".join(f"gcc -c file{i}.c\n" for i in range(100)) + "==> make ins")
        out("tall\npartial")
        out.finish()
    assert shown == ["  ==> configure", "  ==> make install"]
    assert len(out.tail) == runtimes.FAILURE_TAIL_LINES
    assert out.tail[-1] == "partial"
    assert (tmp_path / "log").read_text().count("\n") == 103
