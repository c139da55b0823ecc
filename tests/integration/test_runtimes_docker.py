"""The runtime archives, for real: built in the build image, used in the run image as the run user.

The first run compiles each pinned version (~2-3 min each); later runs reuse the cached archives.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import engine, runtimes, stacks
from conformance.runtimes import RuntimeArchive

pytestmark = pytest.mark.docker

STACK = "bookworm"
RUN_USER = "1001:1000"
# An unusual path with a space: nothing in the tree may assume where it lives.
PREFIX = "/tmp/some where/else/python"
ARCHIVE_TARGET = "/bpconform/runtimes"


@pytest.fixture(scope="module", params=runtimes.DEFAULT_VERSIONS)
def archive(request: pytest.FixtureRequest) -> RuntimeArchive:
    return runtimes.ensure_runtime(request.param, STACK)


@pytest.fixture(scope="module")
def run_image() -> str:
    stack = stacks.get_stack(STACK)
    if not engine.image_exists(stack.run_image):
        stacks.ensure_stack(STACK)
    return stack.run_image


@pytest.fixture(scope="module")
def unpacked(archive: RuntimeArchive, run_image: str) -> Iterator[tuple[object, RuntimeArchive]]:
    """A network-less run-image container, with the archive unpacked read-only by the run user."""
    with engine.running_container(
        run_image,
        ["sleep", "infinity"],
        mounts=[engine.Mount(archive.path.parent, ARCHIVE_TARGET, read_only=True)],
        user=RUN_USER,
        environment={"HOME": "/tmp/home", "LANG": "C.UTF-8"},
        network_disabled=True,
        kind="runtime-test",
    ) as container:
        unpack = f'mkdir -p "{PREFIX}" /tmp/home && tar -xzf "{ARCHIVE_TARGET}/{archive.path.name}" -C "{PREFIX}"'
        result = engine.exec_in(container, ["sh", "-c", unpack + f' && chmod -R a-w "{PREFIX}"'])
        assert result.exit_code == 0, result.output
        yield container, archive


def sh(container, script: str) -> engine.RunResult:
    return engine.exec_in(container, ["sh", "-c", script])


PY = f'"{PREFIX}/bin/python3"'


def test_archive_matches_its_manifest_entry(archive: RuntimeArchive) -> None:
    entry = runtimes.find_entry(archive.version, STACK, archive.arch)
    assert entry == archive
    assert runtimes.sha256_file(archive.path) == archive.sha256
    assert archive.path.stat().st_size == archive.size
    assert archive.source_sha256 == runtimes.PINNED[archive.version].sha256
    print(f"{archive.path.name}: {archive.size / 1e6:.1f} MB")


def test_archive_is_stripped_without_pip_but_with_the_bundled_wheel(archive: RuntimeArchive) -> None:
    minor = runtimes.minor_version(archive.version)
    lib = f"lib/python{minor}"
    with tarfile.open(archive.path) as tar:
        names = tar.getnames()
    top = {name.split("/", 1)[0] for name in names}
    assert {"bin", "lib", "include"} <= top
    assert "bin/python3" in names
    assert not [n for n in names if n.startswith(f"{lib}/site-packages/pip")]
    assert [n for n in names if re.fullmatch(rf"{lib}/ensurepip/_bundled/pip-[\d.]+-py3-none-any\.whl", n)]
    for stripped in (f"{lib}/test/", f"{lib}/idlelib/", f"{lib}/tkinter/", f"{lib}/turtledemo/"):
        assert not [n for n in names if n.startswith(stripped)], stripped
    assert not [n for n in names if n.endswith(".a")], "static libpython is stripped"
    assert not [n for n in names if "/tests/" in n or "/idle_test/" in n]
    assert f"{lib}/__pycache__/os.cpython-{minor.replace('.', '')}.pyc" in names, "bytecode ships with the stdlib"
    assert not [n for n in names if ".opt-" in n], "only optimisation level 0"


def test_every_shipped_pyc_is_unchecked_hash_based(archive: RuntimeArchive) -> None:
    """Timestamp pycs would be stale against the normalised source mtimes and recompiled on every start."""
    flags: dict[str, bytes] = {}
    with tarfile.open(archive.path) as tar:
        for member in tar:
            if member.name.endswith(".pyc"):
                flags[member.name] = tar.extractfile(member).read(8)[4:8]
    assert len(flags) > 300
    wrong = [name for name, value in flags.items() if value != b"\x01\x00\x00\x00"]
    assert not wrong, f"{len(wrong)} pycs are not unchecked-hash, e.g. {wrong[:3]}"


def test_runs_from_an_arbitrary_path_as_the_run_user(unpacked) -> None:
    container, archive = unpacked
    result = sh(container, f"{PY} --version")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Python {archive.version}"
    result = sh(container, f'{PY} -c "import os, sys; print(sys.prefix); print(os.getuid())"')
    assert result.output.splitlines() == [PREFIX, "1001"]


def test_extension_modules_load_against_the_run_image_libraries(unpacked) -> None:
    container, _ = unpacked
    modules = "ssl, sqlite3, ctypes, lzma, bz2, zlib, readline, uuid, dbm.gnu, decimal, hashlib, curses"
    script = (
        f"import {modules}; import ctypes.util; "
        "assert ssl.create_default_context().cert_store_stats()['x509_ca'] > 0, 'no CA certificates found'; "
        "sqlite3.connect(':memory:').execute('select 1'); print('ok', ssl.OPENSSL_VERSION)"
    )
    result = sh(container, f'{PY} -c "{script}"')
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok OpenSSL 3")


def test_bytecode_is_shipped_hash_based_and_unchecked(unpacked) -> None:
    container, _ = unpacked
    script = (
        "import importlib.util, json; p = importlib.util.cache_from_source(json.__file__); "
        "data = open(p, 'rb').read(16); print(int.from_bytes(data[4:8], 'little'))"
    )
    result = sh(container, f'{PY} -c "{script}"')
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1", "flags 0b01: hash-based, source not checked (no mtime, reproducible)"


def test_pip_is_absent(unpacked) -> None:
    container, _ = unpacked
    result = sh(container, f"{PY} -m pip --version")
    assert result.exit_code != 0
    assert "No module named pip" in result.output


def test_ensurepip_works_offline_as_a_user_install_and_in_a_venv(unpacked) -> None:
    container, archive = unpacked
    ensure = f"{PY} -m ensurepip --default-pip --user >/dev/null 2>&1"
    user = sh(container, f"export PYTHONUSERBASE=/tmp/userbase; {ensure} && {PY} -m pip --version")
    assert user.exit_code == 0, user.output
    assert user.output.startswith("pip ") and "/tmp/userbase/" in user.output
    venv = sh(container, f"{PY} -m venv /tmp/venv && /tmp/venv/bin/pip --version")
    assert venv.exit_code == 0, venv.output
    minor = runtimes.minor_version(archive.version)
    assert f"(python {minor})" in venv.output


def test_pydoc_wrapper_is_relocatable(unpacked) -> None:
    container, _ = unpacked
    result = sh(container, f'"{PREFIX}/bin/pydoc3" -k zzz_nothing_matches; echo "rc=$?"')
    assert result.output.strip().endswith("rc=0"), result.output


def test_reusing_a_cached_archive_does_not_rebuild(archive: RuntimeArchive) -> None:
    lines: list[str] = []
    again = runtimes.ensure_runtime(archive.version, STACK, on_output=lines.append)
    assert again == archive
    assert lines and lines[0].startswith("reusing "), lines


def test_prebuilt_tree_is_validated_in_the_build_image(archive: RuntimeArchive, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    with tarfile.open(archive.path) as tar:
        tar.extractall(tree, **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))
    stack = stacks.get_stack(STACK)
    runtimes._validate_prebuilt(tree, archive.version, stack, allow_pip=False)
    with pytest.raises(runtimes.RuntimeBuildError, match="holds Python"):
        runtimes._validate_prebuilt(tree, "3.0.1", stack, allow_pip=False)


def test_source_tarball_of_another_version_fails_with_the_log_tail() -> None:
    """The compile's failure path: a clear error, the log's tail shown, and nothing registered."""
    source = runtimes.fetch_pinned_source(runtimes.PINNED["3.11.2"], say=print)
    lines: list[str] = []
    with pytest.raises(runtimes.RuntimeBuildError, match=r"building Python 3\.12\.0 for bookworm failed") as err:
        runtimes.ensure_runtime("3.12.0", STACK, source=source, on_output=lines.append)
    shown = "\n".join(lines)
    assert re.search(r'this source tree is not Python 3\.12\.0: #define PY_VERSION\s+"3\.11\.2"', shown), shown
    assert "full log:" in shown
    assert "python-3.12.0-bookworm" in err.value.hint
    assert runtimes.find_entry("3.12.0", STACK, stacks.get_stack(STACK).arch) is None
    assert not (runtimes.runtimes_dir() / runtimes.archive_name("3.12.0", STACK, stacks.get_stack(STACK).arch)).exists()
