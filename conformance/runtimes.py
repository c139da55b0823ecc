"""Python runtimes: relocatable CPython archives built in a stack's build image, and their manifest.

The reference buildpack installs Python from an archive listed in `manifest.toml`, which the
harness mounts read-only at `/bpconform/runtimes`. No registry or python.org download is reachable
from where the suite runs, so the archives are compiled here, once per (version, stack, arch), from
upstream source tarballs pinned by URL and sha256 (the Debian pool keeps the upstream `orig`
tarballs), and cached. Users may bring their own source tarball or a prebuilt install tree, so the
suite is not limited to what we pin.

Why each step:
- The compile runs in the stack's *build* image so the result links against exactly the
  libraries (libssl3, libsqlite3, ...) the stack's *run* image ships.
- `--with-ensurepip=no` leaves pip out (the buildpack installs pip in its own layer) while the
  bundled pip wheel stays in `ensurepip/_bundled`, so `python -m ensurepip` works offline.
- Without `--enable-shared` the interpreter is statically linked to libpython, and CPython computes
  `sys.prefix` from the executable's location: the tree can be unpacked anywhere.
- A layer is read-only for the run user, so bytecode cannot be written at run time. We ship `.pyc`
  files compiled with `--invalidation-mode unchecked-hash` (no source mtime inside, so the same
  sources give the same bytes) for optimisation level 0 only.
- The archive is packed deterministically (sorted entries, fixed mtime, uid/gid 0, no names, a
  gzip header without name or time): the same tree always has the same sha256. With
  SOURCE_DATE_EPOCH set for the whole compile, two builds of the same source on the same build
  image gave bit-identical archives (checked for 3.11.2 on bookworm).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance import engine, stacks
from conformance.errors import RuntimeBuildError
from conformance.locks import exclusive_lock
from conformance.paths import cache_dir
from conformance.tomlcompat import dumps_toml, load_toml

OutputFn = Callable[[str], None]

CONTAINER_RUNTIMES_DIR = "/bpconform/runtimes"
INSTALL_PREFIX = "/opt/python"
NORMALIZED_MTIME = 315532801  # 1980-01-01T00:00:01Z, as in image layers
COMPILE_TIMEOUT = 60 * 60.0
VALIDATE_TIMEOUT = 120.0
FAILURE_TAIL_LINES = 60
HEARTBEAT_SECONDS = 30.0
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class SourcePin:
    version: str
    url: str
    sha256: str


PINNED: dict[str, SourcePin] = {
    pin.version: pin
    for pin in (
        SourcePin(
            "3.11.2",
            "http://deb.debian.org/debian/pool/main/p/python3.11/python3.11_3.11.2.orig.tar.gz",
            "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849",
        ),
        SourcePin(
            "3.13.5",
            "http://deb.debian.org/debian/pool/main/p/python3.13/python3.13_3.13.5.orig.tar.xz",
            "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640",
        ),
    )
}
DEFAULT_VERSIONS: tuple[str, ...] = ("3.11.2", "3.13.5")


@dataclass(frozen=True)
class RuntimeArchive:
    version: str
    stack: str
    arch: str
    path: Path
    sha256: str
    size: int
    source_url: str
    source_sha256: str

    @property
    def url(self) -> str:
        """Where the buildpack finds the archive inside a container (the runtimes mount)."""
        return f"file://{CONTAINER_RUNTIMES_DIR}/{self.path.name}"


# --------------------------------------------------------------------------------------------
# Pure parts: names, versions, hashes, the manifest
# --------------------------------------------------------------------------------------------


def runtimes_dir() -> Path:
    """The directory mounted at /bpconform/runtimes: archives and manifest, nothing else."""
    return cache_dir("runtimes")


def manifest_path() -> Path:
    return runtimes_dir() / "manifest.toml"


def _work_root() -> Path:
    """Scratch space, logs and locks, kept out of the mounted runtimes directory."""
    return cache_dir("runtime-build")


def archive_name(version: str, stack: str, arch: str) -> str:
    return f"python-{version}-{stack}-{arch}.tar.gz"


def log_path(version: str, stack: str, arch: str) -> Path:
    logs = _work_root() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs / f"python-{version}-{stack}-{arch}.log"


_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)((?:a|b|rc)\d+)?$")


def minor_version(version: str) -> str:
    """`3.13.5` -> `3.13`; rejects anything that is not a CPython release number."""
    match = _VERSION_RE.match(version)
    if not match:
        raise RuntimeBuildError(
            f"{version!r} is not a CPython version",
            "give a full release number such as 3.13.5 (or 3.14.0rc1)",
        )
    return f"{match.group(1)}.{match.group(2)}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _archive_from_table(table: dict[str, Any]) -> RuntimeArchive:
    url = str(table.get("url", ""))
    return RuntimeArchive(
        version=str(table["version"]),
        stack=str(table["stack"]),
        arch=str(table.get("arch", "")),
        path=runtimes_dir() / url.rsplit("/", 1)[-1],
        sha256=str(table.get("sha256", "")),
        size=int(table.get("size", 0)),
        source_url=str(table.get("source-url", "")),
        source_sha256=str(table.get("source-sha256", "")),
    )


def _read_tables() -> list[dict[str, Any]]:
    path = manifest_path()
    if not path.exists():
        return []
    data = load_toml(path, what="runtime manifest")
    tables = data.get("runtimes", [])
    if not isinstance(tables, list):
        raise RuntimeBuildError(
            f"runtime manifest {path} has `runtimes` that is not an array of tables",
            f"delete {path}; it is rebuilt by `bpconform runtime build`",
        )
    return [t for t in tables if isinstance(t, dict) and "version" in t and "stack" in t]


def read_manifest() -> list[RuntimeArchive]:
    return [_archive_from_table(t) for t in _read_tables()]


def manifest_entry(archive: RuntimeArchive, stack: stacks.Stack) -> dict[str, Any]:
    return {
        "version": archive.version,
        "stack": archive.stack,
        "distro-name": stack.distro_name,
        "distro-version": stack.distro_version,
        "arch": archive.arch,
        "url": archive.url,
        "sha256": archive.sha256,
        "size": archive.size,
        "source-url": archive.source_url,
        "source-sha256": archive.source_sha256,
    }


def upsert_tables(tables: list[dict[str, Any]], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Replace the entry with the same (version, stack, arch), keep the others; stable order."""
    key = (entry["version"], entry["stack"], entry["arch"])
    kept = [t for t in tables if (t.get("version"), t.get("stack"), t.get("arch")) != key]
    return sorted([*kept, entry], key=lambda t: (str(t.get("stack")), _version_key(str(t.get("version")))))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _write_manifest(tables: list[dict[str, Any]]) -> None:
    header = "# Python runtimes built by bpconform; read by the reference buildpack. Do not edit by hand.\n"
    path = manifest_path()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(header + dumps_toml({"runtimes": tables}))
    os.replace(tmp, path)


def register(archive: RuntimeArchive, stack: stacks.Stack) -> None:
    with _lock("manifest"):
        _write_manifest(upsert_tables(_read_tables(), manifest_entry(archive, stack)))


def find_entry(version: str, stack: str, arch: str) -> RuntimeArchive | None:
    for archive in read_manifest():
        if (archive.version, archive.stack, archive.arch) == (version, stack, arch):
            return archive
    return None


# --------------------------------------------------------------------------------------------
# Deterministic packing
# --------------------------------------------------------------------------------------------


class _HashingFile:
    """Write-through wrapper hashing what passes (the uncompressed tar's digest, for free)."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self._target.write(data)

    def flush(self) -> None:
        self._target.flush()


def _sorted_entries(root: Path) -> Iterator[Path]:
    """Everything under `root` without following symlinks, parents first, byte-wise sorted."""
    entries = sorted(os.scandir(root), key=lambda e: e.name.encode("utf-8", "surrogateescape"))
    for entry in entries:
        yield Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from _sorted_entries(Path(entry.path))


def _normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = NORMALIZED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode &= 0o7777
    if info.isdir() or info.mode & 0o111:
        info.mode = (info.mode | 0o755) & 0o7755
    else:
        info.mode = (info.mode | 0o644) & 0o7755
    return info


@dataclass(frozen=True)
class PackResult:
    sha256: str
    size: int
    tree_sha256: str  # sha256 of the uncompressed tar: identifies the tree's content


def pack_tree(tree: Path, dest: Path) -> PackResult:
    """Pack `tree`'s contents (top level = the tree's children) into a reproducible .tar.gz."""
    if not (tree / "bin").is_dir():
        raise RuntimeBuildError(f"{tree} has no bin/ directory", "pack an install prefix (bin/, lib/, ...)")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            hashing = _HashingFile(gz)
            with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                for path in _sorted_entries(tree):
                    info = _normalized(tar.gettarinfo(str(path), arcname=path.relative_to(tree).as_posix()))
                    if info.isreg():
                        with path.open("rb") as handle:
                            tar.addfile(info, handle)
                    else:
                        tar.addfile(info)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return PackResult(sha256_file(dest), dest.stat().st_size, hashing.digest.hexdigest())


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


def fetch_pinned_source(pin: SourcePin, *, say: OutputFn) -> Path:
    """The pinned tarball from the sources cache, downloading it when missing or damaged."""
    dest = cache_dir("sources") / pin.url.rsplit("/", 1)[-1]
    if dest.exists():
        actual = sha256_file(dest)
        if actual == pin.sha256:
            return dest
        say(f"warning: cached {dest.name} has sha256 {actual}, expected {pin.sha256}; downloading it again")
        dest.unlink()
    say(f"downloading {pin.url}")
    part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        actual = _download(pin.url, part)
        if actual != pin.sha256:
            raise RuntimeBuildError(
                f"{pin.url} has sha256 {actual}, but Python {pin.version} is pinned to {pin.sha256}",
                "the mirror served a different file; the download was discarded. Retry later, or pass a "
                "tarball you trust with `--source PATH`",
            )
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest


def _download(url: str, dest: Path) -> str:
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=120) as response, dest.open("wb") as out:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeBuildError(
            f"cannot download {url}: {getattr(exc, 'reason', exc)}",
            "check the network (a proxy?) or download the tarball yourself and pass `--source PATH`",
        ) from None
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Compiling in the build image
# --------------------------------------------------------------------------------------------

# Runs as root in the stack's build image. $1 source tarball, $2 version, $3 minor version.
# Lines starting with "==> " are progress shown to the user; everything goes to the log.
BUILD_SCRIPT = r"""
set -eu
SRC="$1"; VERSION="$2"; MINOR="$3"
PREFIX=__PREFIX__
LIB="$PREFIX/lib/python$MINOR"
say() { echo "==> $*"; }
# Hand the output back to the calling user, even after a failure.
trap 'chown -R "$HOST_UID:$HOST_GID" /out' EXIT
# gcc takes __DATE__/__TIME__ (in sys.version) from it, compileall the pyc invalidation default.
export SOURCE_DATE_EPOCH=__EPOCH__

say "extracting $(basename "$SRC")"
mkdir -p /tmp/src && cd /tmp/src
tar -xf "$SRC" --strip-components=1 --no-same-owner
if ! grep -q "^#define PY_VERSION *\"$VERSION\"" Include/patchlevel.h; then
    found=$(grep '^#define PY_VERSION ' Include/patchlevel.h || echo 'no Include/patchlevel.h')
    echo "ERROR: this source tree is not Python $VERSION: $found"
    exit 3
fi

say "configure --prefix=$PREFIX --with-ensurepip=no"
./configure --prefix="$PREFIX" --with-ensurepip=no
say "make -j$JOBS (the long part)"
make -j"$JOBS"
say "make install"
make install
say "installed size: $(du -sm "$PREFIX" | cut -f1) MB"

say "stripping tests, static libraries, idle/tkinter and debug symbols"
rm -rf "$LIB/test" "$LIB/idlelib" "$LIB/tkinter" "$LIB/turtledemo"
find "$LIB" -path "$LIB/site-packages" -prune -o -type d \( -name test -o -name tests -o -name idle_test \) \
    -prune -exec rm -rf {} +
rm -f "$PREFIX"/lib/libpython*.a "$LIB"/config-*/libpython*.a
rm -f "$PREFIX"/bin/idle3* "$PREFIX"/bin/2to3*
find "$PREFIX" -type d -name __pycache__ -prune -exec rm -rf {} +
find "$PREFIX" -type f \( -name '*.so' -o -name "python$MINOR" \) -exec strip --strip-debug {} +
# pydoc3's shebang names the install prefix; a wrapper next to the interpreter is relocatable.
rm -f "$PREFIX"/bin/pydoc3*
printf '#!/bin/sh\nexec "$(dirname "$0")/python%s" -m pydoc "$@"\n' "$MINOR" > "$PREFIX/bin/pydoc$MINOR"
chmod 755 "$PREFIX/bin/pydoc$MINOR"
ln -s "pydoc$MINOR" "$PREFIX/bin/pydoc3"

say "compiling bytecode (unchecked-hash, reproducible)"
# -B: the modules compileall itself imports must not get timestamp pycs first; -f: rewrite all.
"$PREFIX/bin/python$MINOR" -E -B -m compileall -f -q -j0 -o 0 \
    --invalidation-mode unchecked-hash -x 'bad_coding|badsyntax|site-packages' "$LIB"
say "stripped size: $(du -sm "$PREFIX" | cut -f1) MB"

say "verifying the copy at another path (relocatable, modules, no pip)"
mkdir -p /out/tree
cp -a "$PREFIX/." /out/tree/
/out/tree/bin/python3 -B -E - <<'EOF'
import glob, os, sys
assert sys.prefix == "/out/tree", f"sys.prefix is {sys.prefix}, not following the binary: not relocatable"
import ssl, sqlite3, ctypes, lzma, bz2, zlib, readline, uuid, dbm.gnu, hashlib, decimal, curses, _ctypes
lib = os.path.join(sys.prefix, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}")
assert not glob.glob(os.path.join(lib, "site-packages", "pip*")), "pip is installed in site-packages"
assert glob.glob(os.path.join(lib, "ensurepip", "_bundled", "pip-*.whl")), "ensurepip's bundled pip wheel is missing"
pycs = glob.glob(os.path.join(lib, "**", "*.pyc"), recursive=True)
bad = [p for p in pycs if open(p, "rb").read(8)[4:8] != b"\x01\x00\x00\x00"]  # flags: hash-based, unchecked
assert pycs and not bad, f"{len(bad)} of {len(pycs)} pycs are not unchecked-hash, e.g. {bad[:3]}"
print("==> ok:", sys.version.split()[0], ssl.OPENSSL_VERSION, "sqlite", sqlite3.sqlite_version)
EOF
"""


class _CondensedOutput:
    """Everything to the log; only progress lines and a heartbeat to the user; a tail for failures."""

    def __init__(self, log: Any, say: OutputFn) -> None:
        self._log = log
        self._say = say
        self._partial = ""
        self._lines = 0
        self._started = time.monotonic()
        self._last_shown = self._started
        self.tail: deque[str] = deque(maxlen=FAILURE_TAIL_LINES)
        self.progress: list[str] = []

    def __call__(self, chunk: str) -> None:
        self._log.write(chunk)
        self._partial += chunk
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self._line(line)

    def _line(self, line: str) -> None:
        self._lines += 1
        self.tail.append(line)
        now = time.monotonic()
        if line.startswith("==> ") or line.startswith("ERROR"):
            self.progress.append(line)
            self._say(f"  {line}")
            self._last_shown = now
        elif now - self._last_shown >= HEARTBEAT_SECONDS:
            self._say(f"  ... {now - self._started:.0f}s, {self._lines} lines of output so far")
            self._last_shown = now

    def finish(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = ""
        self._log.flush()


def _compile(source: Path, version: str, stack: stacks.Stack, workdir: Path, say: OutputFn) -> Path:
    """Compile and strip CPython in the build image; returns the host path of the install tree."""
    log = log_path(version, stack.name, stack.arch)
    source_target = f"/src/{source.name}"
    with log.open("w", encoding="utf-8") as handle:
        output = _CondensedOutput(handle, say)
        result = engine.run(
            stack.build_image,
            [
                "/bin/sh",
                "-c",
                BUILD_SCRIPT.replace("__PREFIX__", INSTALL_PREFIX).replace("__EPOCH__", str(NORMALIZED_MTIME)),
                "build-python",
                source_target,
                version,
                minor_version(version),
            ],
            mounts=[engine.Mount(source.resolve(), source_target, read_only=True), engine.Mount(workdir, "/out")],
            user="0:0",
            environment={"HOST_UID": str(os.getuid()), "HOST_GID": str(os.getgid()), "JOBS": str(_jobs())},
            network_disabled=True,
            working_dir="/tmp",
            on_output=output,
            timeout=COMPILE_TIMEOUT,
            kind="runtime-build",
        )
        output.finish()
    if result.exit_code != 0 or result.timed_out:
        tail = "\n".join(output.tail)
        why = f"timed out after {COMPILE_TIMEOUT:.0f}s" if result.timed_out else f"exit {result.exit_code}"
        say(f"--- last {FAILURE_TAIL_LINES} lines of the build log ---\n{tail}\n--- full log: {log} ---")
        raise RuntimeBuildError(
            f"building Python {version} for {stack.name} failed ({why})",
            f"read the full log at {log}; a missing -dev package in the build image shows up as a failed "
            "module import in the last lines",
        )
    return workdir / "tree"


def _jobs() -> int:
    return max(1, min(os.cpu_count() or 1, 2))


# --------------------------------------------------------------------------------------------
# Prebuilt trees
# --------------------------------------------------------------------------------------------

_PREBUILT_TARGET = "/bpconform/prebuilt/tree"


def _validate_prebuilt(tree: Path, version: str, stack: stacks.Stack, *, allow_pip: bool) -> None:
    """Reject a tree the buildpack could not use: wrong version, not relocatable, or with pip."""
    python = tree / "bin" / "python3"
    if not tree.is_dir() or not (python.exists() or python.is_symlink()):
        raise RuntimeBuildError(
            f"{tree} is not a Python install tree (no bin/python3)",
            "pass the install prefix of a CPython build (the directory holding bin/, lib/, include/)",
        )
    pips = sorted(tree.glob("lib/python3*/site-packages/pip")) + sorted(tree.glob("lib/python3*/site-packages/pip-*"))
    if pips and not allow_pip:
        raise RuntimeBuildError(
            f"{tree} has pip installed ({pips[0].relative_to(tree)})",
            "the buildpack installs pip in its own layer: uninstall it from the tree, or opt in with --allow-pip",
        )
    script = "import sys; print(sys.version.split()[0]); print(sys.prefix)"
    result = engine.run(
        stack.build_image,
        [f"{_PREBUILT_TARGET}/bin/python3", "-B", "-E", "-c", script],
        mounts=[engine.Mount(tree.resolve(), _PREBUILT_TARGET, read_only=True)],
        network_disabled=True,
        timeout=VALIDATE_TIMEOUT,
        kind="runtime-validate",
    )
    lines = result.output.strip().splitlines()
    if result.exit_code != 0 or len(lines) < 2:
        raise RuntimeBuildError(
            f"{tree}/bin/python3 does not run in {stack.build_image} (exit {result.exit_code}):\n"
            f"{result.output[-1500:]}",
            f"build the tree against Debian {stack.distro_version} ({stack.name}) libraries",
        )
    actual_version, prefix = lines[-2].strip(), lines[-1].strip()
    if actual_version != version:
        raise RuntimeBuildError(
            f"{tree} holds Python {actual_version}, not {version}",
            f"pass the version it really is ({actual_version}) or the right tree",
        )
    if prefix != _PREBUILT_TARGET:
        raise RuntimeBuildError(
            f"{tree} is not relocatable: mounted at {_PREBUILT_TARGET}, its sys.prefix is still {prefix}",
            "build it without a hard-coded PYTHONHOME/prefix (a plain `./configure --prefix=...` build is fine)",
        )


# --------------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------------


def _lock(name: str) -> contextlib.AbstractContextManager[bool]:
    """An exclusive cross-process lock, so parallel test workers build a runtime only once."""
    return exclusive_lock(_work_root() / "locks" / f"{name}.lock")


def _print_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _stack(name: str, say: OutputFn) -> stacks.Stack:
    stack = stacks.get_stack(name)
    if not engine.image_exists(stack.build_image):
        stack = stacks.ensure_stack(name, on_output=say)
    return stack


def _reusable(entry: RuntimeArchive | None, path: Path, source_sha256: str | None, say: OutputFn) -> bool:
    if entry is None or not path.exists():
        return False
    if source_sha256 is not None and entry.source_sha256 != source_sha256:
        say(f"{path.name} was built from another source (sha256 {entry.source_sha256[:12]}...); rebuilding")
        return False
    actual = sha256_file(path)
    if actual != entry.sha256:
        say(f"warning: {path} is corrupted (sha256 {actual[:12]}..., manifest says {entry.sha256[:12]}...); rebuilding")
        return False
    return True


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def check_runtime_request(version: str, source: Path | None = None, prebuilt: Path | None = None) -> None:
    """What the caller asks for can be made: a version we pin, or their own source or tree, which exists
    (checked before any stack is made: `bpconform runtime build` reports it as a usage error)."""
    if source is not None and prebuilt is not None:
        raise RuntimeBuildError("give either a source tarball or a prebuilt tree, not both")
    minor_version(version)
    if source is None and prebuilt is None and version not in PINNED:
        raise RuntimeBuildError(
            f"Python {version} is not pinned (pinned: {', '.join(PINNED)})",
            "pass a CPython source tarball with `--source PATH` or an install tree with `--prebuilt DIR`",
        )
    for given, what in ((source, "source tarball"), (prebuilt, "prebuilt tree")):
        if given is not None and not given.exists():
            raise RuntimeBuildError(f"the {what} {given} does not exist", "check the path")


def ensure_runtime(
    version: str,
    stack_name: str,
    *,
    source: Path | None = None,
    prebuilt: Path | None = None,
    force: bool = False,
    allow_pip: bool = False,
    on_output: OutputFn | None = None,
) -> RuntimeArchive:
    """The archive of CPython `version` for a stack: reused when cached and intact, else built.

    `source` is a CPython source tarball to compile instead of the pinned one; `prebuilt` an
    install tree to validate and pack as it is. Either way the manifest records where it came from.
    """
    say = on_output or _print_to_stderr
    check_runtime_request(version, source, prebuilt)
    stack = _stack(stack_name, say)
    name = archive_name(version, stack.name, stack.arch)
    path = runtimes_dir() / name
    with _lock(name.removesuffix(".tar.gz")):
        if source is not None:
            source_sha256: str | None = sha256_file(source)
        elif prebuilt is None:
            source_sha256 = PINNED[version].sha256
        else:
            source_sha256 = None  # known only after packing
        entry = find_entry(version, stack.name, stack.arch)
        if not force and prebuilt is None and _reusable(entry, path, source_sha256, say):
            say(f"reusing {path} (Python {version}, {stack.name}, {_mb(entry.size)})")  # type: ignore[union-attr]
            return entry  # type: ignore[return-value]

        started = time.monotonic()
        if prebuilt is not None:
            archive = _pack_prebuilt(prebuilt, version, stack, path, allow_pip=allow_pip, say=say)
        else:
            archive = _build_from_source(version, stack, path, source, say)
        register(archive, stack)
        say(f"built {name} in {time.monotonic() - started:.0f}s: {_mb(archive.size)}, sha256 {archive.sha256}")
        return archive


def _build_from_source(
    version: str, stack: stacks.Stack, path: Path, source: Path | None, say: OutputFn
) -> RuntimeArchive:
    if source is None:
        pin = PINNED[version]
        tarball = fetch_pinned_source(pin, say=say)
        source_url, source_sha256 = pin.url, pin.sha256
    else:
        tarball = source.resolve()
        source_url, source_sha256 = tarball.as_uri(), sha256_file(tarball)
    log = log_path(version, stack.name, stack.arch)
    say(f"compiling Python {version} in {stack.build_image} (~2-3 min; log: {log})")
    workdir = Path(tempfile.mkdtemp(prefix=f"python-{version}-{stack.name}-", dir=_work_root()))
    try:
        tree = _compile(tarball, version, stack, workdir, say)
        say(f"packing {path.name}")
        packed = pack_tree(tree, path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return RuntimeArchive(version, stack.name, stack.arch, path, packed.sha256, packed.size, source_url, source_sha256)


def _pack_prebuilt(
    tree: Path, version: str, stack: stacks.Stack, path: Path, *, allow_pip: bool, say: OutputFn
) -> RuntimeArchive:
    tree = tree.resolve()
    say(f"validating prebuilt tree {tree} in {stack.build_image}")
    _validate_prebuilt(tree, version, stack, allow_pip=allow_pip)
    say(f"packing {path.name}")
    packed = pack_tree(tree, path)
    # The tree is its own source: record the digest of its content (the uncompressed tar).
    return RuntimeArchive(
        version, stack.name, stack.arch, path, packed.sha256, packed.size, tree.as_uri(), packed.tree_sha256
    )


def ensure_default_runtimes(stack_name: str, *, on_output: OutputFn | None = None) -> list[RuntimeArchive]:
    """Every pinned version for one stack, one after the other (each compile uses all cores)."""
    return [ensure_runtime(version, stack_name, on_output=on_output) for version in DEFAULT_VERSIONS]
