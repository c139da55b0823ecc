"""Faults from outside: a killed build container, a restarted engine, a corrupted cache index.

Not repeated here: Ctrl-C during a build and session cleanup (tests/integration/test_engine_docker.py),
a cache tar with the wrong digest (tests/platform_integration/test_cache.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest
from platform_integration.conftest import records

from conformance import engine
from conformance.engine import KIND, SESSION, SESSION_ID, ensure_engine
from conformance.errors import PlatformError
from conformance.platform.cache import INDEX_NAME
from conformance.platform.creator import BuildResult, create
from conformance.stacks import Stack

from .conftest import LeakGuard, assert_clear_error

pytestmark = pytest.mark.serial  # the serial pass (tests/conftest.py)

CACHED_LAYER_APP = {
    "layers.build.sh": """
        show deps/data.txt
        layer deps build launch cache metadata version 1
        put deps/data.txt cached-content
    """
}


def _build_in_thread(request) -> tuple[threading.Thread, dict[str, object]]:
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["result"] = create(request)
        except BaseException as exc:  # the test inspects whatever ended the build
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def _session_build_containers() -> list:
    filters = {"label": [f"{KIND}=build", f"{SESSION}={SESSION_ID}"]}
    return ensure_engine().containers.list(all=True, filters=filters)


def _kill_build_mid_way(builder, app, work_root) -> BaseException | None:
    """Start a build whose bin/build sleeps, kill its container as `docker kill` would; the error it ended in."""
    started = threading.Event()

    def watch(text: str) -> None:
        if "@@layers|started|yes" in text:
            started.set()

    request = builder.request(app({"layers.build.sh": "record started yes\nsleep 120\n"}), ["layers"], timeout=300)
    request.on_output = watch
    thread, outcome = _build_in_thread(request)
    assert started.wait(60), "the fixture build never started"
    containers = _session_build_containers()
    assert len(containers) == 1
    assert list(work_root.iterdir()), "no work dir while building: the leak check would prove nothing"

    killed_at = time.monotonic()
    containers[0].kill()
    thread.join(60)
    assert not thread.is_alive(), "create() did not return after its container was killed"
    assert time.monotonic() - killed_at < 30
    assert "result" not in outcome
    return outcome.get("error")  # type: ignore[return-value]


@pytest.mark.docker
def test_build_container_killed_mid_build_fails_cleanly_and_the_next_build_works(
    builder, app, leak_guard, work_root
) -> None:
    error = _kill_build_mid_way(builder, app, work_root)

    assert isinstance(error, PlatformError)
    assert_clear_error(error, "fixture/layers", "bin/build")
    leak_guard.assert_clean()
    after = builder.build(app({"layers.build.sh": "layer l launch\nput l/f x\n"}, name="next"), ["layers"])
    assert [layer.name for layer in after.layers] == ["l"]
    leak_guard.assert_clean(allowed_images=[after.image])


@pytest.mark.docker
def test_build_container_killed_mid_build_is_reported_as_a_kill_not_a_buildpack_failure(
    builder, app, leak_guard, work_root
) -> None:
    error = _kill_build_mid_way(builder, app, work_root)
    leak_guard.assert_clean()

    assert isinstance(error, PlatformError)
    assert "killed" in error.message or "stopped" in error.message, error.message
    assert "buildpack's output" not in error.hint


def _first_and_second(builder, source, cache, image, corrupt) -> tuple[BuildResult, BuildResult]:
    first = builder.build(source, ["layers"], image=image, cache=cache)
    corrupt(cache.root / INDEX_NAME)
    second = builder.build(source, ["layers"], image=image, cache=cache)
    return first, second


@pytest.mark.docker
def test_garbage_cache_index_means_an_empty_cache_and_the_build_still_works(builder, app, leak_guard) -> None:
    image, cache, source = builder.image_name(), builder.cache(), app(CACHED_LAYER_APP)
    _first, second = _first_and_second(
        builder, source, cache, image, lambda index: index.write_text('{"fixture/layers": {"deps": {"sha": ')
    )

    assert records(second.output, "layers")["exists:deps/data.txt"] == ["no"]  # nothing restored
    assert [(layer.name, layer.action) for layer in second.layers] == [("deps", "exported")]
    third = builder.build(source, ["layers"], image=image, cache=cache)  # and the cache works again
    assert records(third.output, "layers")["file:deps/data.txt"] == ["cached-content"]
    leak_guard.assert_clean(allowed_images=[image])


@pytest.mark.docker
@pytest.mark.parametrize("text", ["null", '{"fixture/layers": {"deps": {"sha": "sha256:00"}}}'])
def test_wrong_shape_cache_index_means_an_empty_cache_and_the_build_still_works(builder, app, leak_guard, text) -> None:
    image, cache, source = builder.image_name(), builder.cache(), app(CACHED_LAYER_APP)
    try:
        _first, second = _first_and_second(builder, source, cache, image, lambda index: index.write_text(text))
    finally:
        leak_guard.assert_clean(allowed_images=[image])

    assert records(second.output, "layers")["exists:deps/data.txt"] == ["no"]


# ------------------------------------------------------------------------------------------------
# The engine restarted between a build and a rebuild
# ------------------------------------------------------------------------------------------------
#
# Stopping an engine stops every container in it, so this scenario never touches the shared engine
# (other sessions build in it): it brings up a dockerd of its own, with its own socket, data root,
# exec root (and so its own containerd), pidfile and bridge, no iptables or sysctl changes, points
# the harness at it through DOCKER_HOST, and restarts *that* one.
#
# Not `--bridge=none`: a dockerd started with it deletes the host's `docker0` interface
# (moby daemon_unix.go, `removeDefaultBridgeInterface`), which cuts the shared engine's containers
# off the network. The private engine gets a bridge interface of its own, deleted at the end.


def _free_subnet() -> str:
    """A /24 in 10.213.0.0/16 that no interface of the host uses."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    for third in random.sample(range(1, 255), 254):
        if f" 10.213.{third}." not in used:
            return f"10.213.{third}.1/24"
    raise RuntimeError("no free 10.213.x.0/24 subnet for the private engine's bridge")


@dataclass
class PrivateEngine:
    root: Path
    process: subprocess.Popen | None = None
    bridge: str = field(default_factory=lambda: f"bpcd{uuid.uuid4().hex[:8]}")  # at most 15 characters
    bridge_made: bool = False

    def make_bridge(self) -> None:
        subnet = _free_subnet()
        for step, argv in enumerate(
            (
                ["ip", "link", "add", "name", self.bridge, "type", "bridge"],
                ["ip", "addr", "add", subnet, "dev", self.bridge],
                ["ip", "link", "set", self.bridge, "up"],
            )
        ):
            done = subprocess.run(argv, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")
            self.bridge_made = self.bridge_made or step == 0

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def argv(self) -> list[str]:
        return [
            "dockerd",
            f"--host={self.url}",
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.root / 'dockerd.pid'}",
            f"--config-file={self.root / 'daemon.json'}",  # not /etc/docker/daemon.json, whatever it says
            f"--bridge={self.bridge}",  # its own; never --bridge=none (see above)
            "--iptables=false",
            "--ip-masq=false",
            "--ip-forward=false",
        ]

    def start(self, timeout: float = 60) -> docker.DockerClient:
        if not self.bridge_made:
            self.make_bridge()
        (self.root / "daemon.json").write_text("{}\n")
        with (self.root / "dockerd.log").open("ab") as log:
            self.process = subprocess.Popen(
                self.argv(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.process.returncode}: {self.log_tail()}")
            with contextlib.suppress(Exception):  # not listening yet
                client = docker.DockerClient(base_url=self.url, timeout=120)
                client.ping()
                return client
            time.sleep(0.3)
        raise RuntimeError(f"dockerd did not answer within {timeout:.0f}s: {self.log_tail()}")

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM to *our* dockerd (its pid from our Popen, never looked up by name)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "dockerd.log").read_text(errors="replace")[-1500:]
        return ""

    def destroy(self) -> None:
        self.stop()
        mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True).stdout.split()
        for target in sorted((m for m in mounts if m.startswith(str(self.root) + "/")), reverse=True):
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
        if self.bridge_made:  # ours only, by its exact name
            subprocess.run(["ip", "link", "delete", self.bridge, "type", "bridge"], check=False, capture_output=True)


@pytest.fixture
def private_engine(stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[PrivateEngine, Stack]]:
    """A dockerd of this test's own, made current for the harness (DOCKER_HOST, `engine._client`),
    holding the stack's run image (used as build image too: one 80 MB image to copy, not 460 MB).
    Skips, with the reason, where a second dockerd cannot run (not root, no dockerd binary)."""
    if os.geteuid() != 0 or shutil.which("dockerd") is None or shutil.which("ip") is None:
        pytest.skip("a private dockerd needs root, the dockerd binary and `ip` (for its own bridge)")
    shared_client = ensure_engine()
    # a short path: the socket path must stay under the 108-byte limit of unix sockets
    private = PrivateEngine(Path(tempfile.mkdtemp(prefix="bpcd-", dir="/tmp")))
    try:
        try:
            client = private.start()
        except RuntimeError as exc:
            pytest.skip(f"a private dockerd cannot start here: {exc}")
        image = shared_client.images.get(stack.run_image)
        client.images.load(b"".join(image.save(named=True)))
        monkeypatch.setenv("DOCKER_HOST", private.url)
        monkeypatch.setattr(engine, "_client", None)
        assert engine.ensure_engine().info()["DockerRootDir"] == str(private.root / "data")
        own_stack = dataclasses.replace(
            stack, build_image=stack.run_image, build_uid=stack.run_uid, build_gid=stack.run_gid
        )
        yield private, own_stack
    finally:
        engine._client = shared_client  # monkeypatch restores it too; the private client must not outlive us
        private.destroy()


@pytest.mark.docker
def test_engine_restarted_between_build_and_rebuild_then_the_rebuild_reuses_the_cache(
    private_engine, builder, app, work_root, scratch_root
) -> None:
    """The shared engine is never stopped: the one restarted is the test's own (see `private_engine`)."""
    private, own_stack = private_engine
    leak_guard = LeakGuard(work_root, scratch_root=scratch_root)  # an inventory of the private engine
    builder.stack = own_stack
    shared_pid = _dockerd_pid_of_shared_engine()
    had_docker0 = Path("/sys/class/net/docker0").exists()
    image, cache, source = builder.image_name(), builder.cache(), app(CACHED_LAYER_APP)
    first = builder.build(source, ["layers"], image=image, cache=cache)
    old_pid = private.process.pid if private.process else None
    private.stop()

    engine._client = None  # forget the dead connection for good, as a new process would
    private.start()
    assert private.process is not None and private.process.pid != old_pid
    second = builder.build(source, ["layers"], image=image, cache=cache)

    assert records(second.output, "layers")["file:deps/data.txt"] == ["cached-content"]
    assert second.layers[0].diff_id == first.layers[0].diff_id
    assert second.export.sent_layers == []  # the engine kept the image: nothing re-loaded
    leak_guard.assert_clean(allowed_images=[image])
    assert _dockerd_pid_of_shared_engine() == shared_pid, "the shared engine was restarted"
    assert Path("/sys/class/net/docker0").exists() or not had_docker0, "the shared engine's bridge was removed"


def _dockerd_pid_of_shared_engine() -> int | None:
    """The shared dockerd's pid from its default pidfile (read only; None where there is none)."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(Path("/var/run/docker.pid").read_text().strip())
        return pid if Path(f"/proc/{pid}").exists() else None
    return None
