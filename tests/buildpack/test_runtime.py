from __future__ import annotations

import hashlib
import io
import tarfile

import pytest
from bpconform_python import runtime
from bpconform_python.context import Target
from bpconform_python.output import BuildpackError
from bpconform_python.versions import Version

BOOKWORM = Target("linux", "amd64", "debian", "12")

MANIFEST = """
[[runtimes]]
version = "3.13.5"
stack = "bookworm"
distro-name = "debian"
distro-version = "12"
arch = "amd64"
url = "file:///bpconform/runtimes/python-3.13.5-bookworm-amd64.tar.gz"
sha256 = "ABCDEF"
size = 10

[[runtimes]]
version = "3.13.5"
stack = "trixie"
distro-name = "debian"
distro-version = "13"
arch = "amd64"
url = "file:///bpconform/runtimes/python-3.13.5-trixie-amd64.tar.gz"
sha256 = "123"

[[runtimes]]
version = "3.11.2"
distro-name = "debian"
distro-version = "12"
arch = "arm64"
url = "file:///x"
sha256 = "456"
"""


def test_manifest_is_filtered_by_distro_and_arch() -> None:
    available = runtime.runtimes_for(BOOKWORM, runtime.parse_manifest(MANIFEST, "m"))
    assert list(available) == [Version(3, 13, 5)]
    chosen = available[Version(3, 13, 5)]
    assert chosen.url.endswith("bookworm-amd64.tar.gz")
    assert chosen.sha256 == "abcdef"  # compared lower-case


def test_manifest_entry_missing_a_key_is_a_clear_error() -> None:
    with pytest.raises(BuildpackError) as caught:
        runtime.parse_manifest('[[runtimes]]\nversion = "3.13.5"\n', "file:///m.toml")
    assert caught.value.title == "Invalid Python runtime manifest"
    assert "file:///m.toml" in caught.value.detail


def test_missing_manifest_names_the_override_variable(tmp_path) -> None:
    with pytest.raises(BuildpackError) as caught:
        runtime.load_manifest((tmp_path / "absent.toml").as_uri(), {})
    assert "BP_PYTHON_RUNTIME_MANIFEST" in caught.value.detail


def test_manifest_url_override() -> None:
    assert runtime.manifest_url("file:///default", {"BP_PYTHON_RUNTIME_MANIFEST": "file:///x"}) == "file:///x"
    assert runtime.manifest_url("file:///default", {"BP_PYTHON_RUNTIME_MANIFEST": "  "}) == "file:///default"


def _archive(tmp_path, content: bytes = b"#!/bin/sh\n"):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("bin/python3")
        info.size, info.mode = len(content), 0o755
        tar.addfile(info, io.BytesIO(content))
    path = tmp_path / "python.tar.gz"
    path.write_bytes(buffer.getvalue())
    return path


def _runtime(url: str, sha256: str) -> runtime.Runtime:
    return runtime.Runtime(Version(3, 13, 5), url, sha256, "debian", "12", "amd64")


def test_download_verifies_sha256(tmp_path) -> None:
    archive = _archive(tmp_path)
    good = hashlib.sha256(archive.read_bytes()).hexdigest()
    runtime.download_verified(_runtime(archive.as_uri(), good), tmp_path / "copy", {})
    assert (tmp_path / "copy").read_bytes() == archive.read_bytes()


def test_sha256_mismatch_is_a_clear_error(tmp_path) -> None:
    archive = _archive(tmp_path)
    with pytest.raises(BuildpackError) as caught:
        runtime.download_verified(_runtime(archive.as_uri(), "0" * 64), tmp_path / "copy", {})
    assert caught.value.title == "Python download failed verification"
    assert "0" * 64 in caught.value.detail and hashlib.sha256(archive.read_bytes()).hexdigest() in caught.value.detail


def test_unreachable_runtime_url(tmp_path) -> None:
    with pytest.raises(BuildpackError, match=r"Downloading Python 3\.13\.5"):
        runtime.download_verified(_runtime((tmp_path / "nope").as_uri(), "0"), tmp_path / "copy", {})


def test_bundled_pip_is_removed_from_the_python_layer(tmp_path) -> None:
    site = tmp_path / "lib" / "python3.13" / "site-packages"
    (site / "pip").mkdir(parents=True)
    (site / "pip-25.1.dist-info").mkdir()
    (site / "pipdeptree").mkdir()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "pip3").write_text("")
    removed = runtime.remove_bundled_pip(tmp_path)
    assert sorted(removed) == ["pip", "pip-25.1.dist-info", "pip3"]
    assert (site / "pipdeptree").exists()


def _tar_gz(path, members: list[tuple[tarfile.TarInfo, bytes | None]]):
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _entry(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = kind, mode
    return info


def test_extraction_keeps_files_and_read_only_directories(tmp_path) -> None:
    """Streaming extraction must still set a directory's mode only after filling it."""
    archive = _tar_gz(
        tmp_path / "python.tar.gz",
        [
            (_entry("bin", tarfile.DIRTYPE, 0o555), None),
            (_entry("bin/python3", mode=0o755), b"#!/bin/sh\n"),
            (_entry("lib/python3.13/os.py"), b"# os\n"),
        ],
    )
    layer = tmp_path / "layer"
    layer.mkdir()
    runtime._extract(archive, layer)
    assert (layer / "bin" / "python3").read_bytes() == b"#!/bin/sh\n"
    assert (layer / "bin" / "python3").stat().st_mode & 0o111
    assert (layer / "lib" / "python3.13" / "os.py").read_bytes() == b"# os\n"
    (layer / "bin").chmod(0o755)  # let pytest remove it (Pythons without the data filter apply 0o555)


@pytest.mark.parametrize("name", ["../escape.py", "/etc/evil"])
def test_extraction_refuses_entries_outside_the_layer(tmp_path, name) -> None:
    archive = _tar_gz(tmp_path / "python.tar.gz", [(_entry("bin/python3"), b"x"), (_entry(name), b"evil")])
    layer = tmp_path / "nested" / "layer"
    layer.mkdir(parents=True)
    with pytest.raises(BuildpackError) as caught:
        runtime._extract(archive, layer)
    assert caught.value.title == "Unsafe Python archive" and name in caught.value.detail
    assert not (tmp_path / "nested" / "escape.py").exists()
