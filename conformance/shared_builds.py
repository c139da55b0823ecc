"""Session builds shared by every process of one test run, so each sample app is built once per run.

Under pytest-xdist (`-n N`) every worker is a process with its own session id: a per-process memo
would build each app once per worker, and a worker's exit-time cleanup could remove an image that
another worker still reads. So a run has one id, the controller's session id (handed to workers in
`workerinput`; without xdist it is the process's own). The first process to ask for an app builds it
under a file lock in the run's shared dir and writes a `BuildRecord`; the others wait on the lock,
then read the record and use the same image. Shared images are named and labelled with the run id:
they belong to the run, not to a worker. No worker removes them; the process whose session is the
run (the controller, or the only process) does, in `release_run`, when the run ends.

When things go wrong:
- a worker dies while building: the kernel drops its lock, and the next process to ask finds no
  record and builds the app itself (the caller first removes a half-made image of that name);
- a worker dies at all: each worker registered its session id here, and `release_run` removes what
  is labelled with any of them, and their work dirs;
- Ctrl-C: workers end as usual, and the controller's `pytest_unconfigure` still releases the run;
- the controller dies: everything is labelled with the run or a worker session, so `bpconform clean`
  finds it (except images made by `pack`, which does not label them).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import docker.errors
import pytest

from conformance import engine
from conformance.errors import EngineError
from conformance.locks import exclusive_lock
from conformance.paths import cache_dir

RUN_ID_KEY = "bpconform_run_id"  # in xdist's workerinput
IMAGE_PREFIX = "bpconform-app/shared-"
SESSIONS_DIR = "test-sessions"  # under the cache: each process's work dir, and each run's shared dir


def run_id(config: pytest.Config) -> str:
    """The id of the test run this process belongs to: the controller's session id in an xdist
    worker, this process's session id otherwise."""
    workerinput = getattr(config, "workerinput", None) or {}
    return str(workerinput.get(RUN_ID_KEY) or engine.SESSION_ID)


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def shared_dir(run: str) -> Path:
    return cache_dir(SESSIONS_DIR) / f"{run}-shared"


@dataclass(frozen=True)
class BuildRecord:
    """One app's build in a run, as the process that made it saw it: enough for another process to
    use the image, or to raise the same failure, without building again."""

    app: str
    app_dir: str
    image: str = ""
    output: str = ""
    layer_actions: dict[str, str] = field(default_factory=dict)
    failure: str | None = None  # the platform's message when the build failed
    exit_code: int = 0
    built_by: str = ""  # the session id of the process that built it

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BuildRecord:
        data = json.loads(text)
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


class SharedBuilds:
    """A run's shared dir: per app a lock, a record and an image name; and the workers' sessions."""

    def __init__(self, run: str, directory: Path | None = None) -> None:
        self.run_id = run
        self.directory = directory or shared_dir(run)

    @staticmethod
    def key(app: str) -> str:
        """A name for files and image tags; the digest keeps `a_b` and `a-b` apart."""
        slug = re.sub(r"[^a-z0-9]+", "-", app.lower()).strip("-") or "app"
        return f"{slug}-{hashlib.sha256(app.encode()).hexdigest()[:6]}"

    def image_name(self, key: str) -> str:
        return f"{IMAGE_PREFIX}{key}:{self.run_id}"

    def obtain(self, app: str, build: Callable[[str], BuildRecord]) -> BuildRecord:
        """The run's record of `app`: read when another process made it, else made now by
        `build(image name)`. An exception from `build` leaves no record: the next caller builds."""
        key = self.key(app)
        record_path = self.directory / f"{key}.json"
        with exclusive_lock(self.directory / f"{key}.lock"):
            if record_path.is_file():
                return BuildRecord.from_json(record_path.read_text())
            record = build(self.image_name(key))
            _write_atomically(record_path, record.to_json())
            return record

    def images(self) -> set[str]:
        """Every shared image of the run, also one whose builder died before writing its record."""
        attempted = {self.image_name(lock.stem) for lock in self.directory.glob("*.lock")}
        recorded = {BuildRecord.from_json(path.read_text()).image for path in self.directory.glob("*.json")}
        return (attempted | recorded) - {""}

    def register_session(self, session: str) -> None:
        """A worker says it belongs to this run, so the run's end can clean up after it if it died."""
        (self.directory / "sessions").mkdir(parents=True, exist_ok=True)
        (self.directory / "sessions" / session).touch()

    def sessions(self) -> list[str]:
        folder = self.directory / "sessions"
        return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def is_shared_image(reference: str) -> bool:
    return reference.startswith(IMAGE_PREFIX)


def _write_atomically(path: Path, text: str) -> None:
    """Readers see the whole record or none (a process killed mid-write leaves only a temp file)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def release_run(run: str, *, had_workers: bool) -> None:
    """The run is over: remove its shared images, whatever is labelled with a worker's session or (with
    workers) the run's, the workers' work dirs, and the shared dir. `BPCONFORM_KEEP` keeps it all.

    Without workers the run's label is this process's session, which its exit-time cleanup sweeps: not
    here, where the process may go on (`bpconform run` in-process, a pytester run inside a test).
    """
    shared = SharedBuilds(run)
    if not shared.directory.is_dir() or os.environ.get("BPCONFORM_KEEP"):
        return
    workers = shared.sessions()
    try:
        client = engine.ensure_engine(auto_start=False)
        for image in shared.images():
            remove_image(image)
        for session in [*([run] if had_workers else []), *workers]:
            engine.cleanup(client, session=session)
    except EngineError:
        pass  # no engine, so nothing in it to remove
    except Exception as exc:  # at the very end of a run there is nobody left to handle it
        print(f"bpconform: removing the run's shared builds failed: {exc}", file=sys.stderr)
    for session in workers:
        shutil.rmtree(cache_dir(SESSIONS_DIR) / session, ignore_errors=True)
    shutil.rmtree(shared.directory, ignore_errors=True)


def remove_image(reference: str) -> None:
    """Remove an image by name if it exists (pack does not label images, so names are what we have)."""
    with contextlib.suppress(docker.errors.APIError):  # absent, or already being removed: it is going
        engine.ensure_engine().images.remove(reference, force=True)
