"""Helpers for tests that use the suite as a user does: a wheel built from this tree, installed
into a fresh venv outside any checkout, run from an empty project dir.

The wheel's dependencies are downloaded once into the shared cache (`test-wheels/`), so builds
and installs after the first are offline (`--no-index --find-links`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from conformance import engine
from conformance.locks import exclusive_lock
from conformance.paths import REPO_ROOT, cache_dir
from conformance.shared_builds import SESSIONS_DIR
from conformance.tomlcompat import load_toml

TOP_IGNORED = {".git", ".venv", "build", "dist", "reports"}  # only at the top: bin/build is a buildpack's
ANYWHERE_IGNORED = shutil.ignore_patterns("*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache")


def _ignored(directory: str, names: list[str]) -> set[str]:
    ignored = set(ANYWHERE_IGNORED(directory, names))
    if Path(directory) == REPO_ROOT:
        ignored |= TOP_IGNORED & set(names)
    return ignored


def _requirements() -> list[str]:
    """The package's run-time and build-time requirements, from pyproject.toml."""
    data = load_toml(REPO_ROOT / "pyproject.toml", what="pyproject")
    return [*data["project"]["dependencies"], *data["build-system"]["requires"], "wheel"]


def dependency_wheels() -> Path:
    """A directory of wheels for everything the package needs, downloaded once (then reused offline)."""
    requirements = _requirements()
    digest = hashlib.sha256(json.dumps([requirements, sys.version_info[:2]]).encode()).hexdigest()[:16]
    folder = cache_dir("test-wheels") / digest
    with exclusive_lock(folder.with_suffix(".lock")):
        if not (folder / ".complete").is_file():
            folder.mkdir(parents=True, exist_ok=True)
            pip = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q"]
            subprocess.run([*pip, "-d", str(folder), *requirements], check=True, timeout=900)
            (folder / ".complete").touch()
    return folder


def build_wheel(dest: Path) -> Path:
    """The wheel of this working tree (a copy of it, so the build leaves nothing in the checkout)."""
    source = dest / "source"
    shutil.copytree(REPO_ROOT, source, ignore=_ignored, symlinks=True)
    wheels = dependency_wheels()
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps", "--no-index"]
    subprocess.run([*pip, "--find-links", str(wheels), "-w", str(dest / "dist"), str(source)], check=True, timeout=600)
    shutil.rmtree(source)
    [wheel] = (dest / "dist").glob("buildpack_conformance-*.whl")
    return wheel


@dataclass(frozen=True)
class Installed:
    venv: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    @property
    def site_packages(self) -> Path:
        [found] = (self.venv / "lib").glob("python*/site-packages")
        return found

    @property
    def package(self) -> Path:
        return self.site_packages / "conformance"


def install_wheel(wheel: Path, venv: Path) -> Installed:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index"]
    subprocess.run([*pip, "--find-links", str(dependency_wheels()), str(wheel)], check=True, timeout=600)
    return Installed(venv)


def user_env(session: str, work_dir: Path) -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH into the checkout, no pytest/xdist state of
    this test run, its own session label and build work dir (so leftovers are attributable)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST", "BPCONFORM_", "PYTHON", "VIRTUAL_ENV"))
    }
    work_dir.mkdir(parents=True, exist_ok=True)
    env.update(BPCONFORM_SESSION=session, BPCONFORM_WORK_DIR=str(work_dir))
    # the same shared caches (stacks, runtimes, wheelhouse) and the same stack images
    for shared in ("BPCONFORM_CACHE", "BPCONFORM_STACK_REPO"):
        if shared in os.environ:
            env[shared] = os.environ[shared]
    return env


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root` with its size and mtime: a write anywhere changes it."""
    state = {}
    for path in root.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            status = path.lstat()
            state[str(path.relative_to(root))] = (status.st_size, status.st_mtime_ns)
    return state


def leftovers(run: str, work_dir: Path | None = None) -> list[str]:
    """Everything in the engine or on disk still carrying the run's session (or a worker's)."""
    client = engine.ensure_engine()
    managed = {"label": [f"{engine.MANAGED}=true"]}

    def ours(labels: dict[str, str] | None) -> bool:
        session = (labels or {}).get(engine.SESSION, "")
        return session == run or session.startswith(f"{run}-")

    # the low-level lists: no inspect per item, which races with other sessions removing theirs
    containers = client.api.containers(all=True, filters=managed)
    found = [f"container {c['Names']}" for c in containers if ours(c.get("Labels"))]
    networks = client.api.networks(filters=managed)
    found += [f"network {n['Name']}" for n in networks if ours(n.get("Labels"))]
    images = client.api.images()
    found += [f"image {i['RepoTags'] or i['Id']}" for i in images if ours(i.get("Labels"))]
    found += [f"image {tag}" for i in images for tag in i.get("RepoTags") or [] if tag.endswith(f":{run}")]
    volumes = client.api.volumes(filters=managed).get("Volumes") or []
    found += [f"volume {v['Name']}" for v in volumes if ours(v.get("Labels"))]
    found += [f"dir {path}" for path in cache_dir(SESSIONS_DIR).glob(f"{run}*")]
    found += [f"work dir {path}" for path in work_dir.iterdir()] if work_dir and work_dir.is_dir() else []
    return sorted(set(found))


def running_builds(run: str) -> list[str]:
    """Containers of the run (or of one of its workers) that exist right now."""
    client = engine.ensure_engine()
    found = []
    for container in client.api.containers(all=True, filters={"label": [f"{engine.MANAGED}=true"]}):
        session = (container.get("Labels") or {}).get(engine.SESSION, "")
        if session == run or session.startswith(f"{run}-"):
            found.append(container["Id"])
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return status.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


@contextlib.contextmanager
def stopped_on_exit(process: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Never leave the process running if the test fails half-way."""
    try:
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
