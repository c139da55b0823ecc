"""Package access from build containers: an offline wheelhouse, or the network with the host's CA.

Builds install the app's dependencies with pip, so a build container needs PyPI. Two situations
make a plain container fail at that: no network at all (air-gapped CI), and a TLS-intercepting
proxy whose CA the host trusts but a fresh Debian image does not (this machine, and most
corporate networks). Both are first-class here, as one `PackageAccess` record that the platform
turns into read-only mounts plus variables in `<platform>/env/`, the CNB way of giving buildpacks
user settings:

- offline: wheels downloaded once on the host (`ensure_wheelhouse`) are mounted at
  /bpconform/wheelhouse and pip is told `PIP_NO_INDEX=1`, `PIP_FIND_LINKS=/bpconform/wheelhouse`;
- online: the host CA bundle is mounted at /bpconform/ca-certificates.crt and named by `PIP_CERT`
  (pip) and `SSL_CERT_FILE` (OpenSSL's default for everything else, e.g. urllib).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from conformance.engine import Mount
from conformance.errors import ConformanceError
from conformance.locks import exclusive_lock
from conformance.paths import cache_dir

OutputFn = Callable[[str], None]

WHEELHOUSE_TARGET = "/bpconform/wheelhouse"
CA_BUNDLE_TARGET = "/bpconform/ca-certificates.crt"
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
STAMP_NAME = ".bpconform-wheelhouse.json"
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "any")
DOWNLOAD_TIMEOUT = 30 * 60.0
TAIL_CHARS = 3000

MODES = ("offline", "online")


@dataclass(frozen=True)
class PackageAccess:
    mode: str
    wheelhouse: Path | None = None
    ca_bundle: Path | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConformanceError(f"unknown package access mode {self.mode!r}", f"use one of: {', '.join(MODES)}")
        if self.mode == "offline" and self.wheelhouse is None:
            raise ConformanceError(
                "offline package access needs a wheelhouse directory",
                "run `bpconform setup` (it downloads the wheelhouse once), or build with --online",
            )

    def mounts(self) -> list[Mount]:
        result = []
        if self.mode == "offline" and self.wheelhouse is not None:
            result.append(Mount(self.wheelhouse.resolve(), WHEELHOUSE_TARGET, read_only=True))
        if self.ca_bundle is not None:
            # Docker bind-mounts what a symlink points to; resolving makes that explicit.
            result.append(Mount(self.ca_bundle.resolve(), CA_BUNDLE_TARGET, read_only=True))
        return result

    def platform_env(self) -> dict[str, str]:
        """Variables for `<platform>/env/`: what the buildpack passes on to pip."""
        env: dict[str, str] = {}
        if self.mode == "offline":
            env["PIP_NO_INDEX"] = "1"
            env["PIP_FIND_LINKS"] = WHEELHOUSE_TARGET
        if self.ca_bundle is not None:
            env["PIP_CERT"] = CA_BUNDLE_TARGET
            env["SSL_CERT_FILE"] = CA_BUNDLE_TARGET
        return env

    def describe(self) -> str:
        if self.mode == "offline":
            return f"offline, wheels from {self.wheelhouse}"
        return f"online, CA bundle {self.ca_bundle}" if self.ca_bundle else "online, image's own CA certificates"


def default_ca_bundle() -> Path | None:
    """The CA bundle the host trusts: an explicit $BPCONFORM_CA_BUNDLE wins, then the usual variables.

    An explicitly named bundle that does not exist is an error (a typo should not silently turn
    into TLS failures inside a container); the conventional variables are only used if they exist.
    """
    explicit = os.environ.get("BPCONFORM_CA_BUNDLE")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConformanceError(
                f"BPCONFORM_CA_BUNDLE names {explicit}, which is not a file",
                "point it at a PEM bundle (e.g. /etc/ssl/certs/ca-certificates.crt) or unset it",
            )
        return path
    for variable in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(variable)
        if value and Path(value).is_file():
            return Path(value)
    return SYSTEM_CA_BUNDLE if SYSTEM_CA_BUNDLE.is_file() else None


def online(ca_bundle: Path | None = None) -> PackageAccess:
    bundle = ca_bundle if ca_bundle is not None else default_ca_bundle()
    if bundle is not None and not bundle.is_file():
        raise ConformanceError(f"CA bundle {bundle} is not a file", "pass a PEM bundle with --ca-bundle FILE")
    return PackageAccess("online", None, bundle)


def offline(wheelhouse: Path) -> PackageAccess:
    if not wheelhouse.is_dir():
        raise ConformanceError(
            f"wheelhouse {wheelhouse} is not a directory",
            "run `bpconform setup` once with network access (it downloads the wheels the sample apps need), "
            "or build with --online",
        )
    return PackageAccess("offline", wheelhouse, None)


# --------------------------------------------------------------------------------------------
# Wheelhouse
# --------------------------------------------------------------------------------------------

Downloader = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


def python_minor(version: str) -> str:
    """`3.13.5` or `3.13` -> `3.13` (pip's --python-version takes the minor version)."""
    parts = version.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise ConformanceError(f"{version!r} is not a Python version", "use e.g. 3.13 or 3.13.5")
    return f"{parts[0]}.{parts[1]}"


def wheelhouse_inputs_digest(requirements: Sequence[Path], python_versions: Iterable[str], extra: Iterable[str]) -> str:
    """What decides the wheelhouse's content: requirement texts (not paths), Python minors, extras."""
    data = {
        "requirements": sorted(hashlib.sha256(path.read_bytes()).hexdigest() for path in requirements),
        "python": sorted({python_minor(v) for v in python_versions}),
        "extra": sorted(set(extra)),
        "platforms": list(PLATFORMS),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def download_commands(
    requirements: Sequence[Path], python_versions: Iterable[str], extra: Iterable[str], dest: Path
) -> list[list[str]]:
    """One pip download per Python minor version for the requirement files, and one per extra spec.

    Extras go alone because they may conflict with each other on purpose (`pip==25.3`, `pip==25.2`),
    which a single resolve would reject.
    """
    platform_args = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    commands = []
    for minor in sorted({python_minor(v) for v in python_versions}):
        base = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            *platform_args,
            "--python-version",
            minor,
            "--implementation",
            "cp",
            "-d",
            str(dest),
        ]
        if requirements:
            commands.append(base + [arg for req in requirements for arg in ("-r", str(req))])
        commands.extend([*base, spec] for spec in sorted(set(extra)))
    return commands


def _run_pip(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT)


def _print_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def ensure_wheelhouse(
    requirements: list[Path],
    *,
    python_versions: list[str],
    extra: Sequence[str] = (),
    dest: Path | None = None,
    on_output: OutputFn | None = None,
    downloader: Downloader | None = None,
) -> Path:
    """Download, once, every wheel the given requirements need for each Python version.

    A stamp in the wheelhouse records the digests of the inputs it already satisfies; known inputs
    mean nothing to do. Wheels are only ever added, so one wheelhouse serves several input sets
    (`bpconform setup` for all sample apps, `bpconform build` for one app) without re-downloading
    when callers alternate. A digest is recorded only after all its downloads succeeded.
    """
    say = on_output or _print_to_stderr
    download = downloader or _run_pip
    dest = dest or cache_dir("wheelhouse")
    dest.mkdir(parents=True, exist_ok=True)
    for req in requirements:
        if not req.is_file():
            raise ConformanceError(f"requirement file {req} does not exist", "check the path")
    digest = wheelhouse_inputs_digest(requirements, python_versions, extra)
    stamp = dest / STAMP_NAME
    # One download at a time per wheelhouse: parallel workers would run pip on the same files at once.
    # The stamp is read under the lock, so a process that waited sees what the other one downloaded.
    with exclusive_lock(dest.parent / f"{dest.name}.lock"):
        if digest in _satisfied_digests(stamp):
            say(f"wheelhouse {dest} is up to date")
            return dest
        _download_wheels(download, download_commands(requirements, python_versions, extra, dest), dest, say)
        _write_stamp(stamp, [*_satisfied_digests(stamp), digest])
    say(f"wheelhouse ready: {len(list(dest.glob('*.whl')))} wheels in {dest}")
    return dest


def _download_wheels(download: Downloader, commands: list[list[str]], dest: Path, say: OutputFn) -> None:
    say(f"downloading wheels into {dest} ({len(commands)} pip runs)")
    for command in commands:
        try:
            proc = download(command)
        except subprocess.TimeoutExpired:
            raise ConformanceError(
                f"pip download timed out after {DOWNLOAD_TIMEOUT:.0f}s", "check the network or the proxy"
            ) from None
        if proc.returncode != 0:
            tail = ((proc.stdout or "") + (proc.stderr or ""))[-TAIL_CHARS:]
            raise ConformanceError(
                f"pip download failed (exit {proc.returncode}): {' '.join(command[3:])}\n{tail}",
                "check the network (HTTPS proxy? set PIP_CERT / BPCONFORM_CA_BUNDLE) and that every requirement "
                "names a package and version that exists as a wheel for this platform",
            )


def _satisfied_digests(stamp: Path) -> list[str]:
    try:
        inputs = json.loads(stamp.read_text()).get("inputs", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [d for d in inputs if isinstance(d, str)] if isinstance(inputs, list) else []


def _write_stamp(stamp: Path, digests: list[str]) -> None:
    tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"inputs": sorted(set(digests))}, indent=1) + "\n")
    os.replace(tmp, stamp)


# The reference buildpack's pinned pip and the suite's "other" pip: the pip layers install these.
PIP_REQUIREMENTS = ("pip==25.3", "pip==25.2")
# The lock-file package managers the reference buildpack installs (uv's wheel; Poetry and its
# dependencies), and what the sample lock-file apps lock: they have no requirements.txt to collect.
LOCKFILE_REQUIREMENTS = ("uv==0.13.9", "poetry==2.5.1", "six==1.17.0", "idna==3.10")
# The "other" uv and Poetry versions of the reference profile's `tool-version` (the suite's tool-version
# change check builds with them in a copy of the buildpack), as pip's "other" version is in PIP_REQUIREMENTS.
OTHER_TOOL_REQUIREMENTS = ("uv==0.13.8", "poetry==2.5.0")


def app_requirements(apps_dir: Path, exclude: Iterable[str] = ()) -> list[Path]:
    """Requirement files of the apps in `apps_dir` meant to install: not those named in `exclude`
    (e.g. a profile's missing-dependency app) nor those with a `.wheelhouse-skip` file, whose
    requirements are broken on purpose (a package that does not exist)."""
    skipped = set(exclude)
    return sorted(
        path
        for path in apps_dir.glob("*/requirements.txt")
        if path.parent.name not in skipped and not (path.parent / ".wheelhouse-skip").exists()
    )


def sample_app_requirements() -> list[Path]:
    """Requirement files of the sample apps shipped with the suite."""
    from conformance.data import sample_apps_dir

    return app_requirements(sample_apps_dir())


def ensure_apps_wheelhouse(
    apps_dir: Path, *, exclude: Iterable[str] = (), on_output: Callable[[str], None] | None = None
) -> Path:
    """The offline wheelhouse for a run whose apps are in `apps_dir` (a user's own apps, or the shipped
    ones): their requirements plus the pip versions, so every app the run builds installs offline.
    Wheels are only added, so alternating between apps dirs downloads nothing twice."""
    return ensure_sample_wheelhouse(app_requirements(apps_dir, exclude), on_output=on_output)


def ensure_sample_wheelhouse(
    requirements: list[Path] | None = None,
    *,
    python_versions: Iterable[str] | None = None,
    on_output: Callable[[str], None] | None = None,
) -> Path:
    """The offline wheelhouse builds use: the sample apps' requirements (or the given ones) plus the
    pip versions the pip layers install, for every default runtime's Python version."""
    from conformance import runtimes

    versions = python_versions or runtimes.DEFAULT_VERSIONS
    return ensure_wheelhouse(
        sample_app_requirements() if requirements is None else requirements,
        python_versions=sorted({runtimes.minor_version(v) for v in versions}),
        extra=[*PIP_REQUIREMENTS, *LOCKFILE_REQUIREMENTS, *OTHER_TOOL_REQUIREMENTS],
        on_output=on_output,
    )
