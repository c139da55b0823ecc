"""Faults from outside: a killed build container, a restarted engine, a corrupted cache index.

Not repeated here: Ctrl-C during a build and session cleanup (tests/integration/test_engine_docker.py),
a cache tar with the wrong digest (tests/platform_integration/test_cache.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from platform_integration.conftest import records

from conformance import engine
from conformance.engine import KIND, SESSION, SESSION_ID, ensure_engine
from conformance.errors import PlatformError
from conformance.platform.cache import INDEX_NAME
from conformance.platform.creator import BuildResult, create

from .conftest import assert_clear_error

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

RESTART_VARIABLE = "BPCONFORM_ALLOW_ENGINE_RESTART"


def _dockerd_pid() -> int | None:
    found = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True)
    pids = found.stdout.split()
    return int(pids[0]) if len(pids) == 1 else None


def _stop_dockerd(pid: int, timeout: float = 60) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"dockerd {pid} did not stop within {timeout:.0f}s")
        time.sleep(0.5)


@pytest.mark.docker
def test_engine_restarted_between_build_and_rebuild_then_the_rebuild_reuses_the_cache(builder, app, leak_guard) -> None:
    """Runs where stopping the engine disturbs nobody: a dockerd the harness started itself (as on
    CI), or anywhere with BPCONFORM_ALLOW_ENGINE_RESTART=1."""
    pid = _dockerd_pid()
    if pid is None:
        pytest.skip("no single local dockerd process to restart (remote engine or several daemons)")
    if not engine.started_by_us(pid) and os.environ.get(RESTART_VARIABLE) != "1":
        pytest.skip(f"stops a Docker engine the harness did not start; set {RESTART_VARIABLE}=1 to allow it")
    image, cache, source = builder.image_name(), builder.cache(), app(CACHED_LAYER_APP)
    first = builder.build(source, ["layers"], image=image, cache=cache)
    _stop_dockerd(pid)

    engine._client = None  # forget the dead connection for good, as a new process would; later tests reconnect
    engine.ensure_engine()  # starts dockerd again (root, local engine)
    assert _dockerd_pid() not in (None, pid)
    second = builder.build(source, ["layers"], image=image, cache=cache)

    assert records(second.output, "layers")["file:deps/data.txt"] == ["cached-content"]
    assert second.layers[0].diff_id == first.layers[0].diff_id
    assert second.export.sent_layers == []  # the engine kept the image: nothing re-loaded
    leak_guard.assert_clean(allowed_images=[image])
