"""The build container: one long-lived container of the build image in which every buildpack runs.

Its pid 1 (`sleep`) runs as root so that buildpacks, run as the build user through `docker exec`,
cannot signal it; each exec gets exactly the environment the lifecycle would give, a timeout, and
the container's memory and process limits, and a failure is told apart from the container dying
under it (an engine restart, `docker kill`, the OOM killer).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker.errors
import requests.exceptions
from docker.models.containers import Container

from conformance.engine import ContainerLimits, Mount, exec_in, format_memory, running_container, shares_host_ids
from conformance.errors import PlatformError
from conformance.platform import env as cnb_env
from conformance.platform import planfiles, safefs, spec
from conformance.platform.archive import Owner
from conformance.platform.log import Output
from conformance.platform.workdir import WorkDirs

_BUILD_USER_HOMES: dict[tuple[str, int], str] = {}  # (build image id, uid) -> home directory

_LIMIT_COUNTER_FILES = (  # cgroup v2, then v1 (each container sees its own cgroup there)
    "/sys/fs/cgroup/memory.events",
    "/sys/fs/cgroup/pids.events",
    "/sys/fs/cgroup/memory/memory.oom_control",
    "/sys/fs/cgroup/pids/pids.events",
)
_CGROUP_ROOT = Path("/sys/fs/cgroup")  # the host's cgroup mount, when the engine runs on this host


@dataclass
class BuildContainer:
    container: Container
    dirs: WorkDirs
    owner: Owner
    limits: ContainerLimits
    timeout: float | None

    def __post_init__(self) -> None:
        self._limit_events: dict[str, int] = {}  # cgroup counters already blamed on a failure

    @property
    def ids(self) -> str:
        return f"{self.owner.uid}:{self.owner.gid}"

    # -- ownership of the work dirs -----------------------------------------------------------------

    def own_work_dirs(self) -> None:
        """Give the build user the dirs it writes to (not the platform dir: it is read-only)."""
        self.give_to_build_user(*self.dirs.writable())

    def give_to_build_user(self, *host_dirs: Path) -> None:
        """`chown -R` mounted work dirs to the build user: on the host when its ids are the
        container's (saves an exec per call), else as root inside the build container. Never
        following links: the layers dir is chowned after buildpacks ran."""
        if shares_host_ids():
            for directory in host_dirs:
                safefs.chown_tree(directory, self.owner.uid, self.owner.gid)
            return
        self.root_exec(["chown", "-R", self.ids, *(self.dirs.in_container(directory) for directory in host_dirs)])

    def fresh_plan(self, name: str) -> str:
        """An empty plan file the build user may write, made so that a link planted there cannot
        redirect it (see `planfiles`); returns its in-container path."""
        plan_path = f"{spec.PLANS_DIR}/{name}"
        if shares_host_ids():
            planfiles.write_plan(self.dirs.plans, name, "", owner=(self.owner.uid, self.owner.gid))
        else:
            planfiles.write_plan(self.dirs.plans, name, "")
            self.root_exec(["chown", "-h", self.ids, plan_path])
        return plan_path

    def root_exec(self, command: list[str]) -> None:
        result = exec_in(self.container, command, user="0:0")
        if result.exit_code != 0:
            raise PlatformError(f"`{' '.join(command)}` failed in the build container: {result.output}")

    # -- the environment --------------------------------------------------------------------------

    def base_env(self) -> dict[str, str]:
        """The build image's environment, reduced to what the lifecycle lets buildpacks see."""
        attrs = self.container.attrs["Config"]
        image_env = dict(item.split("=", 1) for item in attrs.get("Env") or [])
        image_env.setdefault("HOME", self._build_user_home())
        image_env.setdefault("HOSTNAME", attrs.get("Hostname", ""))
        return {key: value for key, value in image_env.items() if key in cnb_env.ALLOWED_BUILD_ENV}

    def _build_user_home(self) -> str:
        """The build user's home in the build image's passwd (looked up once per image and uid)."""
        key = (self.container.attrs["Image"], self.owner.uid)
        if key not in _BUILD_USER_HOMES:
            found = exec_in(
                self.container, ["sh", "-c", 'getent passwd "$0" | cut -d: -f6', str(self.owner.uid)], user=self.ids
            )
            _BUILD_USER_HOMES[key] = found.output.strip() or "/home/cnb"
        return _BUILD_USER_HOMES[key]

    # -- running buildpack executables ----------------------------------------------------------------

    def run_as_build_user(
        self, command: list[str], env: dict[str, str], on_output: Output, *, what: str, exit_code: int
    ) -> int:
        """Run a buildpack executable as the build user with exactly `env`, under the timeout.

        Past the timeout the build container is killed (ending the executable and everything it
        started) and the build fails with `exit_code`, naming `what` hung.
        """
        argv = ["env", "-i", *(f"{key}={value}" for key, value in sorted(env.items())), *command]
        expired = threading.Event()
        timer = None
        if self.timeout:

            def expire() -> None:
                expired.set()
                self.kill()

            timer = threading.Timer(self.timeout, expire)
            timer.daemon = True
            timer.start()
        try:
            result = exec_in(self.container, argv, user=self.ids, workdir=spec.APP_DIR, on_output=on_output)
        except docker.errors.APIError:
            result = None  # the container went away under us: told apart below
        finally:
            if timer is not None:
                timer.cancel()
        if expired.is_set():
            raise PlatformError(
                f"{what} did not finish within {self.timeout:.0f}s and was stopped",
                "look at the output above for where it hung; raise the timeout if the work is legitimately slow",
                exit_code,
            )
        if result is not None and result.exit_code not in (0, 100):
            self._raise_if_limit_hit(what, exit_code)
        if result is None or self._was_stopped(result.exit_code):
            raise PlatformError(
                f"the build container was stopped from outside while {what} ran",
                "something killed it (`docker kill`, the OOM killer, an engine restart); build again",
                spec.ExitCode.BUILD_ERROR,
            )
        return result.exit_code

    def kill(self) -> None:
        with contextlib.suppress(Exception):  # already gone
            self.container.kill()

    def _was_stopped(self, exit_code: int) -> bool:
        """Whether the container itself died (vs. the buildpack exiting non-zero inside it).

        A kill reaches the exec as 137/143 a moment before the engine marks the container exited,
        so for those codes wait briefly for the container to settle.
        """
        try:
            if exit_code in (137, 143):
                self.container.wait(timeout=3)
                return True
            self.container.reload()
        except docker.errors.APIError:
            return True
        except requests.exceptions.RequestException:  # wait() timed out: the container is alive
            return False
        return self.container.status != "running"

    def _raise_if_limit_hit(self, what: str, exit_code: int) -> None:
        """Tell a buildpack that hit the container's memory or process limit from one that failed.

        The kernel counts both in the container's cgroup (cgroup v2 `memory.events` `oom_kill` and
        `pids.events` `max`; v1 `memory.oom_control` and `pids/pids.events`); the engine itself does
        not flag an OOM kill of an exec'd process (only of pid 1). Counts already blamed on an
        earlier failure (an optional buildpack's detect) are not blamed again.
        """
        counters = self._limit_counters()
        fresh = {key: count - self._limit_events.get(key, 0) for key, count in counters.items()}
        self._limit_events.update(counters)
        if fresh.get("oom_kill", 0) > 0:
            raise PlatformError(
                f"{what} ran out of memory: the kernel killed it at the build container's limit of"
                f" {format_memory(self.limits.memory)} (no swap)",
                "give the build more memory with --memory (bpconform build/run) or BPCONFORM_BUILD_MEMORY,"
                " e.g. --memory 16g; or make the buildpack use less",
                exit_code,
            )
        if fresh.get("pids_max", 0) > 0:
            raise PlatformError(
                f"{what} hit the build container's limit of {self.limits.pids} processes (fork failed"
                f" {fresh['pids_max']} times)",
                "raise it with --pids-limit (bpconform build/run) or BPCONFORM_BUILD_PIDS if the work is legitimate;"
                " otherwise the buildpack starts processes without bound",
                exit_code,
            )

    def _limit_counters(self) -> dict[str, int]:
        """The cgroup's OOM-kill and fork-refused counts: read on the host when the engine is local,
        else from inside the container.

        Inside, a container at its pids limit often has no room for the reader: `docker exec` needs
        runc's init plus the command, more than the one slot the failed buildpack left (measured
        here under load: 4 of 30 execs of `head` failed to start, "OCI runtime exec failed ... read
        init-p"), and the leftover processes keep the count just below the limit, so the stats
        fallback saw nothing either. The host's view of the container's cgroup needs no process in it.
        """
        counters = self._host_limit_counters()
        if counters is not None:
            return counters
        return self._container_limit_counters()

    def _host_limit_counters(self) -> dict[str, int] | None:
        """The counters from the host's cgroup files of this container, or None when this host cannot
        see them (a remote engine, another pid namespace, an unknown cgroup layout).

        The container's cgroups come from `/proc/<its pid 1>/cgroup` (kernel text, never buildpack
        text), accepted only if every path names this container's id, so a pid from another pid
        namespace cannot point at another cgroup.
        """
        try:
            self.container.reload()
            pid = int(self.container.attrs["State"]["Pid"])
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines() if pid > 0 else []
        except (docker.errors.APIError, requests.exceptions.RequestException, OSError, KeyError, ValueError):
            return None
        files: list[tuple[Path, str, str]] = []  # (file, key in it, counter name)
        for line in lines:
            _, controllers, path = [*line.split(":", 2), "", ""][:3]
            if self.container.id not in path or ".." in path.split("/"):
                continue
            relative = path.lstrip("/")
            if controllers == "pids":
                files.append((_CGROUP_ROOT / "pids" / relative / "pids.events", "max", "pids_max"))
            elif controllers == "memory":
                files.append((_CGROUP_ROOT / "memory" / relative / "memory.oom_control", "oom_kill", "oom_kill"))
            elif controllers == "" and (_CGROUP_ROOT / "cgroup.controllers").is_file():  # unified (v2) only
                files.append((_CGROUP_ROOT / relative / "pids.events", "max", "pids_max"))
                files.append((_CGROUP_ROOT / relative / "memory.events", "oom_kill", "oom_kill"))
        counters: dict[str, int] = {}
        for file, wanted, name in files:
            try:
                text = file.read_text()
            except OSError:
                continue
            for key, _, value in (line.partition(" ") for line in text.splitlines()):
                if key == wanted and value.strip().isdigit():
                    counters[name] = counters.get(name, 0) + int(value)
        return counters if {"pids_max", "oom_kill"} <= counters.keys() else None

    def _container_limit_counters(self) -> dict[str, int]:
        """The counters read inside the container by one process (`head`, which labels each file),
        since a container at its pids limit may have room for just one; if even that cannot start,
        the engine's stats tell whether the pids limit is reached."""
        try:
            found = exec_in(self.container, ["head", "-n", "50", *_LIMIT_COUNTER_FILES], user=self.ids)
        except docker.errors.APIError:
            found = None
        counters: dict[str, int] = {}
        current = ""
        for line in found.output.splitlines() if found is not None else ():
            if line.startswith("==> ") and line.endswith(" <=="):
                current = line[4:-4]
                continue
            key, _, value = line.partition(" ")
            wanted = "oom_kill" if "memory" in current else "max" if "pids" in current else ""
            if key == wanted and value.strip().isdigit():
                name = "oom_kill" if wanted == "oom_kill" else "pids_max"
                counters[name] = counters.get(name, 0) + int(value)
        if not counters:
            with contextlib.suppress(Exception):  # no stats either: nothing to tell
                pids = self.container.stats(stream=False, one_shot=True).get("pids_stats") or {}
                if pids.get("limit") and pids.get("current", 0) >= pids["limit"]:
                    counters["pids_max"] = self._limit_events.get("pids_max", 0) + 1
        return counters


@contextlib.contextmanager
def build_container(
    build_image: str,
    dirs: WorkDirs,
    owner: Owner,
    *,
    mounts: list[Mount],
    network: bool,
    limits: ContainerLimits,
    timeout: float | None,
) -> Iterator[BuildContainer]:
    """A started build container with the work dirs and `mounts`, force-removed at the end."""
    capabilities = () if shares_host_ids() else ("CHOWN", "DAC_READ_SEARCH")
    with running_container(
        build_image,
        ["sleep", "infinity"],
        kind="build",
        mounts=mounts,
        user="0:0",  # pid 1 (`sleep`) as root: buildpacks, run as the build user, cannot signal it
        network_disabled=not network,
        # The only step run as root in the container is `chown -R` of the work dirs, and only when
        # the host cannot chown them itself: then it needs CHOWN, and DAC_READ_SEARCH to walk
        # directories a buildpack made unreadable. Otherwise: no capabilities.
        **limits.create_options(capabilities),
    ) as container:
        yield BuildContainer(container, dirs, owner, limits, timeout)
