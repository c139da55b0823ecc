"""The `python` layer: a relocatable CPython from the runtime manifest, verified and without pip."""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import subprocess
import tarfile
import tempfile
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpconform_python.context import Target
from bpconform_python.output import BuildpackError
from bpconform_python.versions import Version

MANIFEST_ENV = "BP_PYTHON_RUNTIME_MANIFEST"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Runtime:
    version: Version
    url: str
    sha256: str
    distro_name: str
    distro_version: str
    arch: str
    stack: str = ""

    def runs_on(self, target: Target) -> bool:
        return (self.distro_name, self.distro_version, self.arch) == (
            target.distro_name,
            target.distro_version,
            target.arch,
        )


def manifest_url(default: str, environ: Mapping[str, str]) -> str:
    return environ.get(MANIFEST_ENV, "").strip() or default


def _ssl_context(environ: Mapping[str, str]) -> ssl.SSLContext:
    """Honour the CA bundle a corporate user gives pip (PIP_CERT) or OpenSSL (SSL_CERT_FILE)."""
    cafile = environ.get("SSL_CERT_FILE") or environ.get("PIP_CERT") or None
    return ssl.create_default_context(cafile=cafile if cafile and os.path.isfile(cafile) else None)


def open_url(url: str, environ: Mapping[str, str]) -> Any:
    context = _ssl_context(environ) if url.startswith("https:") else None
    return urllib.request.urlopen(url, timeout=60, context=context)


def parse_manifest(text: str, url: str) -> list[Runtime]:
    try:
        data = tomllib.loads(text)
        return [
            Runtime(
                version=Version.parse(str(entry["version"])),
                url=str(entry["url"]),
                sha256=str(entry["sha256"]).lower(),
                distro_name=str(entry["distro-name"]),
                distro_version=str(entry["distro-version"]),
                arch=str(entry["arch"]),
                stack=str(entry.get("stack", "")),
            )
            for entry in data.get("runtimes", [])
        ]
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BuildpackError(
            "Invalid Python runtime manifest",
            f"The runtime manifest at {url} could not be understood: {exc}. Each [[runtimes]] entry needs "
            "version (X.Y.Z), url, sha256, distro-name, distro-version and arch.",
        ) from exc


def load_manifest(url: str, environ: Mapping[str, str]) -> list[Runtime]:
    try:
        with open_url(url, environ) as response:
            text = response.read().decode("utf-8")
    except (OSError, urllib.error.URLError, ValueError, UnicodeDecodeError) as exc:
        raise BuildpackError(
            "Python runtime manifest not found",
            f"Could not read the Python runtime manifest at {url}: {exc}. Set {MANIFEST_ENV} (a file:// or "
            "https:// URL) in the platform env to point at one, or provide the default location.",
        ) from exc
    return parse_manifest(text, url)


def runtimes_for(target: Target, runtimes: list[Runtime]) -> dict[Version, Runtime]:
    return {runtime.version: runtime for runtime in runtimes if runtime.runs_on(target)}


def download_verified(runtime: Runtime, destination: Path, environ: Mapping[str, str]) -> None:
    """Stream the archive to `destination`, failing clearly when its sha256 is not the manifest's."""
    digest = hashlib.sha256()
    try:
        with open_url(runtime.url, environ) as response, destination.open("wb") as out:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise BuildpackError(
            "Could not download Python",
            f"Downloading Python {runtime.version} from {runtime.url} failed: {exc}. Check that the URL in "
            "the runtime manifest is reachable from the build container.",
        ) from exc
    if digest.hexdigest() != runtime.sha256:
        raise BuildpackError(
            "Python download failed verification",
            f"The archive for Python {runtime.version} from {runtime.url} has sha256 {digest.hexdigest()}, "
            f"but the runtime manifest says {runtime.sha256}. The file is corrupt or was replaced; "
            "rebuild the runtime or fix the manifest.",
        )


def _extract(archive: Path, layer_dir: Path) -> None:
    """Unpack in one streaming pass: random access would decompress the archive twice (once to list
    the members, once to extract them), and decompression is most of the cost."""
    with tarfile.open(archive, "r|*") as tar:
        members = _safe_members(tar, archive)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(layer_dir, members=members, filter="data")
        else:
            tar.extractall(layer_dir, members=members)


def _safe_members(tar: tarfile.TarFile, archive: Path) -> Iterator[tarfile.TarInfo]:
    """The archive's members, refusing escapes ourselves on Pythons without extraction filters."""
    for member in tar:
        name = Path(member.name)
        if name.is_absolute() or ".." in name.parts or member.isdev():
            raise BuildpackError("Unsafe Python archive", f"{archive.name} has an unsafe entry {member.name!r}")
        yield member


def remove_bundled_pip(layer_dir: Path) -> list[str]:
    """The python layer must not contain pip (it lives in the pip layer); strip one a runtime ships."""
    removed = []
    for site_packages in layer_dir.glob("lib/python3.*/site-packages"):
        for entry in site_packages.iterdir():
            if entry.name == "pip" or (entry.name.startswith("pip-") and entry.name.endswith(".dist-info")):
                shutil.rmtree(entry)
                removed.append(entry.name)
    for script in layer_dir.glob("bin/pip*"):
        script.unlink()
        removed.append(script.name)
    return removed


def python_executable(layer_dir: Path) -> Path:
    return layer_dir / "bin" / "python3"


def install_runtime(runtime: Runtime, layer_dir: Path, environ: Mapping[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="bpconform-python-") as scratch:
        archive = Path(scratch) / "python.tar.gz"
        download_verified(runtime, archive, environ)
        _extract(archive, layer_dir)
    remove_bundled_pip(layer_dir)
    executable = python_executable(layer_dir)
    if not executable.exists():
        raise BuildpackError(
            "Broken Python runtime",
            f"The archive for Python {runtime.version} from {runtime.url} has no bin/python3 at its top level.",
        )
    env = {key: value for key, value in environ.items() if key not in ("PYTHONHOME", "PYTHONPATH")}
    check = subprocess.run(
        [str(executable), "-B", "-c", "import sys, ssl, sqlite3"], capture_output=True, text=True, env=env, cwd="/"
    )
    if check.returncode != 0:
        raise BuildpackError(
            "Broken Python runtime",
            f"Python {runtime.version} from {runtime.url} does not run on this image: "
            f"{(check.stderr or check.stdout).strip()[-800:]}",
        )


def runtime_dir_is_complete(layer_dir: Path) -> bool:
    return python_executable(layer_dir).exists()
