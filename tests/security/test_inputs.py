"""Hostile inputs and faults: names validated before use, bad CLI input refused clearly, nothing leaked.

Each case ends in a clear error (our error type, message naming the value and the rule, a hint; for
the CLI: a two-line message and no traceback) or a clean success, and leaves nothing behind.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time

import hostile
import pytest
from hostile import Box, assert_clear, hostile_buildpack
from platform_integration.conftest import fixture_buildpack

from conformance import build_caches, cli
from conformance.engine import KIND, SESSION, SESSION_ID, ensure_engine
from conformance.errors import EngineError
from conformance.image import AppImage

pytestmark = pytest.mark.docker
box = hostile.box  # the fixtures (no conftest of ours in tests/security)
security_stack = hostile.security_stack


def _containers_created_since(started: float) -> list[str]:
    """Containers this session created since `started` (the engine's event log: even removed ones)."""
    until = time.time() + 0.5
    events = ensure_engine().events(
        since=f"{started:.6f}",
        until=f"{until:.6f}",
        filters={"type": "container", "event": "create", "label": f"{SESSION}={SESSION_ID}"},
        decode=True,
    )
    return [event.get("id", "") for event in events]


def test_a_buildpack_id_with_a_trailing_newline_is_refused_before_any_container(box: Box) -> None:
    """`^...$` lets "id\\n" through; the id used to be pasted into a root `sh -c` in the container."""
    bad = hostile_buildpack(box.tmp_path, bp_id="hostile/bp\n")
    started = time.time()
    error = box.fail([bad])

    assert_clear(error, "invalid buildpack id", repr("hostile/bp\n"), "buildpack.toml")
    assert _containers_created_since(started) == []
    box.assert_no_leaks()


def test_a_version_that_climbs_out_of_the_buildpacks_dir_is_refused_before_any_mount(box: Box) -> None:
    """It named the mount target /cnb/buildpacks/<id>/<version>: the buildpack was mounted over /usr/bin."""
    bad = hostile_buildpack(box.tmp_path, version="../../../../usr/bin")
    started = time.time()
    error = box.fail([bad])

    assert_clear(error, "invalid buildpack version", "'../../../../usr/bin'")
    assert "1.2.3" in error.hint
    assert _containers_created_since(started) == []
    box.assert_no_leaks()


@pytest.mark.parametrize(
    ("name", "rule"),
    [(".", "path steps"), ("..", "path steps")],
    ids=["dot", "dotdot"],
)
def test_layer_names_the_host_cannot_use_are_refused_cleanly(box: Box, name: str, rule: str) -> None:
    """`..toml` named the buildpack's own layers dir, `...toml` the whole /layers root (tarred as one
    layer). (A 250-character name, which once failed half-way with `File name too long`, now builds:
    tests/security/test_links.py.)"""
    bad = hostile_buildpack(
        box.tmp_path,
        f"""
        mkdir -p "$1/{name}" 2>/dev/null || true
        printf '[types]\\nlaunch = true\\n' >"$1/{name}.toml"
        """,
    )
    error = box.fail([bad])

    assert_clear(error, "buildpack hostile/bp", "invalid layer name", rule)
    assert "rename the layer" in error.hint
    box.assert_no_leaks()


@pytest.mark.parametrize(
    "image", ["MyApp", "my app", "my-app:", "-app"], ids=["uppercase", "space", "empty-tag", "dash"]
)
def test_an_invalid_image_name_is_a_clear_cli_error(box: Box, image: str) -> None:
    bp = hostile_buildpack(box.tmp_path)
    result = box.cli("build", "--path", str(box.app), "--buildpack", str(bp), "--", image)

    assert result.exit_code == 2  # a usage error, as every command's (not 1, not a lifecycle code)
    assert f"bpconform: error: IMAGE {image!r} is not a valid image name" in result.stderr
    assert "  -> name the image like my-app" in result.stderr
    box.assert_no_leaks()


def test_the_run_image_can_never_be_the_target_of_a_cli_build(box: Box) -> None:
    bp = hostile_buildpack(box.tmp_path)
    run_image = box.stack.run_image
    before = ensure_engine().images.get(run_image).id
    result = box.cli("build", run_image, "--path", str(box.app), "--buildpack", str(bp))

    assert result.exit_code == 2  # the command line names a stack image: a usage error
    assert f"the image to build, {run_image}, is one of the stack's images" in result.stderr
    assert ensure_engine().images.get(run_image).id == before
    box.assert_no_leaks()


def test_no_stack_image_can_be_the_target_of_a_build_whatever_it_is_called(box: Box) -> None:
    """By name (the build image, here without its tag's default) and by label (a tag of its own
    pointing at the run image)."""
    bp = hostile_buildpack(box.tmp_path)
    by_name = box.fail([bp], image=box.stack.build_image)
    alias = f"bpconform-security/alias-of-run-image:{SESSION_ID}"
    ensure_engine().images.get(box.stack.run_image).tag(alias)
    try:
        by_label = box.fail([bp], image=alias)
    finally:
        ensure_engine().images.remove(alias)

    assert_clear(by_name, "is one of the stack's images")
    assert_clear(by_label, "is a stack image")
    box.assert_no_leaks()


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf"])
def test_a_timeout_that_is_not_a_positive_finite_number_is_refused(box: Box, timeout: str) -> None:
    """0 meant no timeout, -1 and nan killed at once, inf printed thread tracebacks."""
    bp = hostile_buildpack(box.tmp_path)
    result = box.cli("build", "ok-name", "--path", str(box.app), "--buildpack", str(bp), "--timeout", timeout)
    in_process = box.fail([bp], timeout=float(timeout))

    assert result.exit_code == 2  # a usage error
    assert f"bpconform: error: --timeout {float(timeout)!r} is not a positive, finite number of seconds" in (
        result.stderr
    )
    assert_clear(in_process, "is not a positive, finite number of seconds")
    box.assert_no_leaks()


REUSE_FIRST = {
    "layers.build.sh": """
        layer a launch
        put a/data first
        layer b launch
        put b/data kept
    """
}
REUSE_SECOND = {
    "layers.build.sh": """
        layer a launch
        put a/data changed
        layer_toml_only b launch
    """
}


def test_reusing_a_launch_layer_above_a_changed_layer_leaves_no_docker_save_scratch(box: Box) -> None:
    """Layer b is kept from the previous image while a, below it, changed: the exporter must send b
    and can only get it with a `docker save` of the previous image, which used to stay in /tmp."""
    image, script = box.image_name(), box.app / "layers.build.sh"
    script.write_text(textwrap.dedent(REUSE_FIRST["layers.build.sh"]))
    first = box.build([fixture_buildpack("layers")], image=image)
    script.write_text(textwrap.dedent(REUSE_SECOND["layers.build.sh"]))
    second = box.build([fixture_buildpack("layers")], image=image)

    reused = {layer.name: layer for layer in second.layers}["b"]
    assert reused.action == "reused"
    assert reused.diff_id == {layer.name: layer for layer in first.layers}["b"].diff_id
    assert reused.diff_id in second.export.sent_layers  # it really came out of a `docker save`
    assert list(box.scratch.iterdir()) == []
    box.assert_no_leaks(allowed_images=[image])


def test_a_cli_build_cache_is_tracked_and_bpconform_clean_removes_it_once_its_image_is_gone(
    box: Box, monkeypatch
) -> None:
    """`bpconform clean` itself removes every session's engine resources, so it is not run on a shared
    machine; its cache step (`cli._clean_build_caches`) runs here against this box's cache root."""
    bp = hostile_buildpack(box.tmp_path, 'mkdir -p "$1/c" && printf "[types]\\ncache = true\\n" >"$1/c.toml"\n')
    gone, kept = f"bpconform-security/gone:{SESSION_ID}", f"bpconform-security/kept:{SESSION_ID}"
    box.images += [gone, kept]
    for image in (gone, kept):
        result = box.cli("build", image, "--path", str(box.app), "--buildpack", str(bp))
        assert result.exit_code == 0, result.output
    caches = {cache.image: cache.path for cache in build_caches.find_caches(box.cache_root / "build-caches")}
    assert set(caches) == {gone, kept}
    assert all((path / "index.json").is_file() for path in caches.values())

    ensure_engine().images.remove(gone)
    monkeypatch.setenv("BPCONFORM_CACHE", str(box.cache_root))
    removed = cli._clean_build_caches(everything=False)

    assert [cache.image for cache in removed] == [gone]
    assert not caches[gone].exists() and caches[kept].is_dir()
    owners = sorted(p.name for p in (box.cache_root / "build-caches" / build_caches.OWNERS).iterdir())
    assert owners == [f"{caches[kept].name}.json"]
    assert json.loads((caches[kept].parent / build_caches.OWNERS / owners[0]).read_text())["image"] == kept
    removed_all = cli._clean_build_caches(everything=True)
    assert [cache.image for cache in removed_all] == [kept]
    box.assert_no_leaks(allowed_images=[kept])


def test_a_container_removed_from_outside_while_appimage_run_waits_is_a_clear_error(box: Box) -> None:
    built = box.build([hostile_buildpack(box.tmp_path)])
    image = AppImage.load(built.image)
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            image.run(["sleep", "60"], via_launcher=False, timeout=120)
        except BaseException as exc:  # the test inspects what ended the wait
            outcome["error"] = exc

    waiter = threading.Thread(target=run, daemon=True)
    waiter.start()
    filters = {"label": [f"{KIND}=inspect", f"{SESSION}={SESSION_ID}"], "status": "running"}
    deadline = time.monotonic() + 30
    while not (running := ensure_engine().api.containers(filters=filters)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(running) == 1, "the image's container never started"
    ensure_engine().api.remove_container(running[0]["Id"], force=True)
    waiter.join(60)

    assert not waiter.is_alive()
    error = outcome.get("error")
    assert isinstance(error, EngineError), repr(error)
    assert_clear(error, "was removed while the harness waited")
    box.assert_no_leaks(allowed_images=box.images)


def test_the_limit_flags_refuse_nonsense_before_building(box: Box) -> None:
    bp = hostile_buildpack(box.tmp_path)
    memory = box.cli("build", "ok-name", "-p", str(box.app), "-b", str(bp), "--memory", "lots")
    pids = box.cli("build", "ok-name", "-p", str(box.app), "-b", str(bp), "--pids-limit", "3")

    assert memory.exit_code == 2 and "--memory 'lots' is not a memory size" in memory.stderr  # usage errors
    assert pids.exit_code == 2 and "--pids-limit 3 is below the minimum of 16" in pids.stderr
    box.assert_no_leaks()
