"""The Docker engine: finding (or starting) one, running containers, and cleaning up after us.

Everything the harness creates in the engine carries the `MANAGED` label plus a `KIND` label, and
short-lived things also carry this process's `SESSION` label. That is what lets a session-end hook,
a Ctrl-C, or `bpconform clean` after a crash remove exactly what we made and nothing else.
Stack images are the one long-lived kind: they are a cache, kept until `bpconform clean --all`.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# testcontainers' reaper image (ryuk) cannot be pulled without a registry; we clean up ourselves.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

import docker
import docker.errors
from docker.models.containers import Container

from conformance import host
from conformance.errors import EngineError

MANAGED = "io.bpconform.managed"
KIND = "io.bpconform.kind"
SESSION = "io.bpconform.session"
PERSISTENT_KINDS = frozenset({"stack"})


def _process_session_id() -> str:
    """BPCONFORM_SESSION, or a random id. A pytest-xdist worker (which inherits BPCONFORM_SESSION from
    the run that started it) adds its name: workers sharing a session would, at exit, remove resources
    of the others that are still in use."""
    base = os.environ.get("BPCONFORM_SESSION") or uuid.uuid4().hex[:12]
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"{base}-{worker}" if worker else base


SESSION_ID = _process_session_id()
DOCKERD_LOG = Path(os.environ.get("BPCONFORM_DOCKERD_LOG", "/var/log/bpconform-dockerd.log"))
DOCKERD_PIDFILE = Path("/run/bpconform-dockerd.pid")  # a dockerd we started (gone after a reboot)
ENGINE_START_TIMEOUT = 90.0


def labels(kind: str, *, session: bool = True, session_id: str | None = None, **extra: str) -> dict[str, str]:
    """Labels for a resource the harness creates.

    Without the session label (persistent kinds, or `session=False` for an image the user asked
    for) a resource outlives this process; `bpconform clean` still finds it by the other labels.
    `session_id` hands the resource to another session than this process's (e.g. an image that
    parallel test workers share belongs to the run that started them, not to the worker).
    """
    result = {MANAGED: "true", KIND: kind, **extra}
    if session and kind not in PERSISTENT_KINDS:
        result[SESSION] = session_id or SESSION_ID
        hold_session(result[SESSION])
    return result


# --------------------------------------------------------------------------------------------
# Which sessions are alive (so a plain `bpconform clean` leaves running builds alone)
# --------------------------------------------------------------------------------------------

_held_sessions: dict[str, int] = {}


def _sessions_dir() -> Path:
    from conformance.paths import cache_root

    return cache_root() / "live-sessions"


def hold_session(session: str) -> None:
    """Mark `session` alive for as long as this process lives: a shared flock on its lock file, taken
    by every process that labels a resource with it (an xdist run's workers all hold the run's).
    Best effort: without it a session counts as ended, as it did before this existed."""
    if session in _held_sessions or not re.fullmatch(r"[A-Za-z0-9_.-]+", session):
        return
    try:
        _sessions_dir().mkdir(parents=True, exist_ok=True)
        fd = os.open(_sessions_dir() / f"{session}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:
        os.close(fd)
        return
    _held_sessions[session] = fd


def live_sessions() -> set[str]:
    """The sessions some process still holds; the lock files of ended ones are removed on the way."""
    live: set[str] = set()
    try:
        names = [name for name in os.listdir(_sessions_dir()) if name.endswith(".lock")]
    except OSError:
        return live
    for name in names:
        path = _sessions_dir() / name
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            live.add(name.removesuffix(".lock"))
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)
        finally:
            os.close(fd)
    return live


# --------------------------------------------------------------------------------------------
# Finding or starting an engine
# --------------------------------------------------------------------------------------------

_client: docker.DockerClient | None = None
_client_lock = threading.Lock()


def _try_connect() -> docker.DockerClient | None:
    try:
        client = docker.from_env(timeout=600)
        client.ping()
        return client
    except Exception:  # the SDK raises several unrelated types for "no engine"
        return None


def _can_start_local_engine() -> bool:
    return host.can_install_packages() and not os.environ.get("DOCKER_HOST")


def _start_dockerd() -> None:
    if shutil.which("dockerd") is None:
        print("bpconform: installing docker.io with apt (no Docker engine found)", file=sys.stderr, flush=True)
        host.apt_install(
            "docker.io",
            EngineError,
            "install a Docker engine yourself and start it, or set DOCKER_HOST to a reachable one",
        )
    DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
    print(f"bpconform: starting dockerd in the background (log: {DOCKERD_LOG})", file=sys.stderr, flush=True)
    with DOCKERD_LOG.open("ab") as log:
        daemon = subprocess.Popen(
            ["dockerd"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    with contextlib.suppress(OSError):
        DOCKERD_PIDFILE.write_text(f"{daemon.pid}\n")


def started_by_us(dockerd_pid: int) -> bool:
    """Whether that dockerd is one the harness started (so stopping it disturbs nobody else's)."""
    try:
        return int(DOCKERD_PIDFILE.read_text().strip()) == dockerd_pid
    except (OSError, ValueError):
        return False


def ensure_engine(*, auto_start: bool = True) -> docker.DockerClient:
    """Return a client for a reachable engine, starting a local one when we are allowed to."""
    global _client
    with _client_lock:
        if _client is not None:
            return _client
        client = _try_connect()
        if client is None and auto_start and _can_start_local_engine():
            _start_dockerd()
            deadline = time.monotonic() + ENGINE_START_TIMEOUT
            while client is None and time.monotonic() < deadline:
                time.sleep(0.5)
                client = _try_connect()
            if client is None:
                raise EngineError(
                    f"started dockerd but it did not answer within {ENGINE_START_TIMEOUT:.0f}s",
                    f"look at {DOCKERD_LOG} for the reason",
                )
        if client is None:
            where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
            raise EngineError(
                f"no Docker engine is reachable at {where}",
                "start one (e.g. `sudo systemctl start docker` or `sudo dockerd &`), or set DOCKER_HOST;"
                " as root on Debian, `make setup` installs and starts docker.io for you",
            )
        _client = client
        _install_cleanup_hooks()
        return client


# --------------------------------------------------------------------------------------------
# Running containers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    """A bind mount from the host into a container."""

    source: Path
    target: str
    read_only: bool = False

    def as_volume_entry(self) -> tuple[str, dict[str, str]]:
        return str(self.source), {"bind": self.target, "mode": "ro" if self.read_only else "rw"}


MEMORY_ENV = "BPCONFORM_BUILD_MEMORY"
PIDS_ENV = "BPCONFORM_BUILD_PIDS"
DEFAULT_BUILD_MEMORY = 8 * 1024**3
DEFAULT_BUILD_PIDS = 4096
MIN_MEMORY = 64 * 1024**2  # below this not even the build container's own processes start reliably
MIN_PIDS = 16
_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2}
_UNITS |= {"g": 1024**3, "gb": 1024**3, "gib": 1024**3, "t": 1024**4, "tb": 1024**4, "tib": 1024**4}


def parse_memory(text: str, what: str = "--memory") -> int:
    """`8g`, `256m`, `512MiB`, `1073741824` -> bytes (binary units, as `docker run --memory`)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text), re.ASCII)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise EngineError(
            f"{what} {text!r} is not a memory size",
            "write a number with an optional unit: 512m, 8g, 8GiB (binary units)",
        )
    size = int(float(match.group(1)) * _UNITS[unit])
    if size < MIN_MEMORY:
        raise EngineError(f"{what} {text!r} is below the minimum of {MIN_MEMORY // 1024**2} MiB", "give more memory")
    return size


def parse_pids(text: str | int, what: str = "--pids-limit") -> int:
    try:
        pids = int(str(text).strip())
    except ValueError:
        raise EngineError(f"{what} {text!r} is not a whole number", "write a process count, e.g. 4096") from None
    if pids < MIN_PIDS:
        raise EngineError(f"{what} {pids} is below the minimum of {MIN_PIDS}", "allow more processes")
    return pids


def format_memory(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


@dataclass(frozen=True)
class ContainerLimits:
    """The box an untrusted buildpack runs in: memory, processes, privileges.

    Defaults fit the 2-core, 24 GiB machines we run on with other builds in parallel: 8 GiB of
    memory and no swap (`memswap == memory`) is several times what a compile-heavy pip install
    needs (gcc on a large C extension stays under 2 GiB) and leaves two thirds of the machine to
    the host, which a memory hog would otherwise take down; files a buildpack writes to the work
    dir in /dev/shm count against it too (tmpfs pages are charged to the writer). 4096 processes
    are ten times what `make -j` or pip's build isolation start, and end a fork bomb long before
    the host's process table fills. `BPCONFORM_BUILD_MEMORY` / `BPCONFORM_BUILD_PIDS` (and the CLI's
    `--memory` / `--pids-limit`) change them.
    """

    memory: int = DEFAULT_BUILD_MEMORY
    pids: int = DEFAULT_BUILD_PIDS

    @classmethod
    def from_env(cls) -> ContainerLimits:
        memory = os.environ.get(MEMORY_ENV)
        pids = os.environ.get(PIDS_ENV)
        return cls(
            memory=parse_memory(memory, MEMORY_ENV) if memory else DEFAULT_BUILD_MEMORY,
            pids=parse_pids(pids, PIDS_ENV) if pids else DEFAULT_BUILD_PIDS,
        )

    def describe(self) -> str:
        return f"memory {format_memory(self.memory)}, {self.pids} processes"

    def create_options(self, capabilities: Iterable[str] = ()) -> dict[str, Any]:
        """`containers.create` keyword arguments: the limits, no privilege gain through setuid or
        file capabilities (`no-new-privileges`), and no capability but `capabilities`."""
        return {
            "mem_limit": self.memory,
            "memswap_limit": self.memory,
            "pids_limit": self.pids,
            "security_opt": ["no-new-privileges:true"],
            "cap_drop": ["ALL"],
            "cap_add": sorted(capabilities) or None,
        }


@dataclass
class RunResult:
    exit_code: int
    output: str  # stdout and stderr, interleaved as they happened
    timed_out: bool = False
    stdout: str = ""  # stdout alone, for machine-readable output (one-off runs only)


@functools.cache
def shares_host_ids() -> bool:
    """Whether a bind-mounted file's owner as the host sets it is the owner the container sees, and
    we may set it: we are root and the engine maps no user namespace (no userns-remap, not rootless).
    Then the platform can chown its mounted dirs itself instead of exec-ing `chown` in a container."""
    if os.geteuid() != 0:
        return False
    options = " ".join(ensure_engine().info().get("SecurityOptions") or [])
    return "userns" not in options and "rootless" not in options


def _volumes(mounts: Iterable[Mount]) -> dict[str, dict[str, str]]:
    return dict(m.as_volume_entry() for m in mounts)


def create_container(
    image: str,
    command: list[str] | None = None,
    *,
    kind: str = "container",
    mounts: Iterable[Mount] = (),
    user: str | None = None,
    environment: dict[str, str] | None = None,
    network_disabled: bool = False,
    working_dir: str | None = None,
    entrypoint: list[str] | None = None,
    **kwargs: Any,
) -> Container:
    """Create (not start) a labelled container; `kind` says what it is for in `bpconform clean`."""
    client = ensure_engine()
    try:
        return client.containers.create(
            image,
            command,
            labels=labels(kind),
            volumes=_volumes(mounts),
            user=user or "",
            environment=environment or {},
            network_mode="none" if network_disabled else None,
            working_dir=working_dir,
            entrypoint=entrypoint,
            **kwargs,
        )
    except docker.errors.ImageNotFound:
        raise EngineError(
            f"image {image} is not in the Docker engine",
            "build the stack first: `bpconform stack build <name>` (or `make setup`)",
        ) from None
    except docker.errors.APIError as exc:
        raise EngineError(
            f"the Docker engine refused to create a container of {image}: {exc.explanation or exc}",
            "check the mounts and options shown above; `docker info` shows whether the engine is healthy",
        ) from None


def remove_container(container: Container) -> None:
    """Force-remove; already gone, or being removed by someone else (409), is fine too."""
    try:
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code != 409:
            raise


@contextmanager
def running_container(image: str, command: list[str] | None = None, **kwargs: Any) -> Iterator[Container]:
    """A started container that is force-removed when the block ends, whatever happens in it."""
    container = create_container(image, command, **kwargs)
    try:
        container.start()
        yield container
    finally:
        remove_container(container)


def run(
    image: str,
    command: list[str],
    *,
    on_output: Callable[[str], None] | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> RunResult:
    """Run a one-off container to completion, streaming its combined output to `on_output`.

    The returned output is read again once the container has exited: a followed log stream can
    end before the last chunk of a short-lived container arrives.
    """
    if timeout is not None:
        timeout = check_timeout(timeout)
    with running_container(image, command, **kwargs) as container:
        try:
            timed_out = _stream_until_exit(container, [], on_output, timeout)
            status = {"StatusCode": 124} if timed_out else container.wait()
            output = container.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")
            stdout = container.logs(stdout=True, stderr=False).decode("utf-8", errors="replace")
            container.reload()  # still ours? a container removed under us ends its log and wait early
        except docker.errors.APIError as exc:
            if not (isinstance(exc, docker.errors.NotFound) or exc.status_code == 409):  # 409: being removed
                raise
            raise EngineError(
                f"the container running {' '.join(command)[:200]!r} in {image} was removed while the harness waited"
                " for it",
                "something outside the harness removed it (`docker rm -f`, `docker system prune`, another session's"
                " cleanup); run again",
            ) from None
        return RunResult(int(status.get("StatusCode", 1)), output, timed_out, stdout)


def check_timeout(timeout: float, what: str = "timeout") -> float:
    """A positive, finite number of seconds; 0, negative, NaN and infinity are refused with a message
    (0 used to mean no timeout, -1 and NaN to kill at once, infinity broke `threading.Timer`)."""
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        raise EngineError(
            f"{what} {timeout!r} is not a number of seconds", "give a positive number, e.g. 600"
        ) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise EngineError(
            f"{what} {timeout!r} is not a positive, finite number of seconds",
            "give a positive number of seconds, e.g. 600 (there is no 'no timeout': use a large value)",
        )
    return seconds


def _stream_until_exit(
    container: Container, chunks: list[str], on_output: Callable[[str], None] | None, timeout: float | None
) -> bool:
    """Follow the container's logs; kill it past `timeout`. Returns whether it timed out."""
    timer = None
    expired = threading.Event()
    if timeout is not None:

        def kill() -> None:
            expired.set()
            with contextlib.suppress(docker.errors.APIError):
                container.kill()

        timer = threading.Timer(timeout, kill)
        timer.daemon = True
        timer.start()
    try:
        for raw in container.logs(stream=True, follow=True):
            text = raw.decode("utf-8", errors="replace")
            chunks.append(text)
            if on_output is not None:
                on_output(text)
    finally:
        if timer is not None:
            timer.cancel()
    return expired.is_set()


def exec_in(
    container: Container,
    command: list[str],
    *,
    user: str = "",
    environment: dict[str, str] | None = None,
    workdir: str | None = None,
    on_output: Callable[[str], None] | None = None,
) -> RunResult:
    """Run a command in a running container; returns its exit code.

    With `on_output` the output goes there as it arrives and is not kept (`RunResult.output` is
    empty): a buildpack printing megabytes must not cost the harness that much memory twice.
    """
    api = container.client.api
    exec_id = api.exec_create(
        container.id, command, user=user, environment=environment or {}, workdir=workdir, stdout=True, stderr=True
    )["Id"]
    chunks: list[str] = []
    sink = on_output if on_output is not None else chunks.append
    for raw in api.exec_start(exec_id, stream=True):
        sink(raw.decode("utf-8", errors="replace"))
    exit_code = api.exec_inspect(exec_id)["ExitCode"]
    return RunResult(int(exit_code if exit_code is not None else 1), "".join(chunks))


def image_exists(reference: str) -> bool:
    try:
        ensure_engine().images.get(reference)
        return True
    except docker.errors.ImageNotFound:
        return False


# --------------------------------------------------------------------------------------------
# Cleanup
# --------------------------------------------------------------------------------------------


@dataclass
class CleanupReport:
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    kept: int = 0  # resources of sessions still alive, left alone (plain `bpconform clean`)

    @property
    def total(self) -> int:
        return len(self.containers) + len(self.volumes) + len(self.networks) + len(self.images)

    def summary(self) -> str:
        return (
            f"removed {len(self.containers)} containers, {len(self.volumes)} volumes, "
            f"{len(self.networks)} networks, {len(self.images)} images"
            + (f"; left {self.kept} of runs still going alone (--all removes them too)" if self.kept else "")
        )


def _label_filters(session: str | None) -> list[str]:
    return [f"{MANAGED}=true"] + ([f"{SESSION}={session}"] if session else [])


def _is_persistent(resource_labels: dict[str, str] | None) -> bool:
    return (resource_labels or {}).get(KIND) in PERSISTENT_KINDS


def _is_user_image(resource_labels: dict[str, str] | None) -> bool:
    """An app image the user asked for (`bpconform build`): no session label, so no run owns it.
    A plain `bpconform clean` leaves it (and its build cache) alone; `--all` removes it."""
    found = resource_labels or {}
    return found.get(KIND) == "app" and SESSION not in found


def cleanup(
    client: docker.DockerClient | None = None, *, session: str | None = None, everything: bool = False
) -> CleanupReport:
    """Remove harness resources: one session's, or all of them (stack images and the images `bpconform
    build` made only if `everything`).

    Without a `session`, what belongs to a session that is still alive (another run on the same
    engine: see `live_sessions`) is left alone unless `everything`, and counted in `report.kept`."""
    client = client or ensure_engine()
    report = CleanupReport()
    filters = {"label": _label_filters(session)}
    spared = set() if session or everything else live_sessions()

    def kept(resource_labels: dict[str, str] | None) -> bool:
        if (resource_labels or {}).get(SESSION) in spared:
            report.kept += 1
            return True
        return False

    for container in client.api.containers(all=True, filters=filters):  # plain records: no per-item lookup
        if kept(container.get("Labels")):
            continue
        _ignore_missing(client.api.remove_container, container["Id"], force=True, v=True)
        report.containers.append((container.get("Names") or [container["Id"][:12]])[0].lstrip("/"))
    for volume in client.volumes.list(filters=filters):
        if kept(volume.attrs.get("Labels")):
            continue
        _ignore_missing(volume.remove, force=True)
        report.volumes.append(volume.name)
    for network in client.networks.list(filters=filters):
        if kept(network.attrs.get("Labels")):
            continue
        _ignore_missing(network.remove)
        report.networks.append(network.name)
    for image in client.api.images(filters=filters):
        spared_kind = _is_persistent(image.get("Labels")) or _is_user_image(image.get("Labels"))
        if (spared_kind and not everything) or kept(image.get("Labels")):
            continue
        _ignore_missing(client.images.remove, image["Id"], force=True, noprune=False)
        report.images.append((image.get("RepoTags") or [image["Id"][7:19]])[0])
    return report


def _ignore_missing(func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    try:
        func(*args, **kwargs)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:  # e.g. an image still used by a leftover container
        print(f"bpconform: cleanup could not remove a resource: {exc.explanation}", file=sys.stderr)


def count_managed(client: docker.DockerClient | None = None) -> dict[str, int]:
    """How many harness resources exist now (for leak checks before/after a scenario).

    Read from the engine's plain list records: the SDK's `.list()` inspects each item afterwards,
    which fails when another session removes one in between.
    """
    client = client or ensure_engine()
    filters = {"label": _label_filters(None)}
    return {
        "containers": len(client.api.containers(all=True, filters=filters)),
        "volumes": len(client.volumes.list(filters=filters)),
        "images": len([i for i in client.api.images(filters=filters) if not _is_persistent(i.get("Labels"))]),
    }


_hooks_installed = False


def _install_cleanup_hooks() -> None:
    """Clean this session's resources at exit, and turn SIGTERM into a clean exit too."""
    global _hooks_installed
    if _hooks_installed or os.environ.get("BPCONFORM_KEEP"):
        return
    _hooks_installed = True
    atexit.register(_cleanup_session_quietly)
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _cleanup_session_quietly() -> None:
    if _client is None:
        return
    try:
        cleanup(_client, session=SESSION_ID)
    except Exception as exc:  # at exit there is nobody left to handle it
        print(f"bpconform: session cleanup failed: {exc}", file=sys.stderr)
