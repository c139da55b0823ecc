"""Several builds at once on one stack, and concurrent set-up calls on the shared runtimes and wheelhouse."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from platform_integration.conftest import records, shell

from conformance import access, runtimes, stacks
from conformance.platform.creator import BuildResult, create
from conformance.tomlcompat import load_toml

pytestmark = pytest.mark.serial  # the serial pass (tests/conftest.py)

BUILDS = 3


def _app_files(index: int) -> dict[str, str]:
    """Each build writes its own marker into a launch layer, a cache layer and the app dir, slowly
    enough (a short sleep mid-layer) that the builds overlap."""
    return {
        "marker.txt": f"app-{index}\n",
        "layers.build.sh": f"""
            layer own launch cache metadata build-index {index}
            put own/first "build-{index}"
            sleep 1
            put own/second "build-{index}"
            echo "build-{index}" >/workspace/written-by-build.txt
            record index {index}
        """,
    }


@pytest.mark.docker
def test_three_builds_at_once_all_succeed_without_crosstalk(builder, app, leak_guard, record_property) -> None:
    requests = [builder.request(app(_app_files(i), name=f"app-{i}"), ["layers"]) for i in range(BUILDS)]
    assert len({r.image for r in requests}) == BUILDS
    barrier = threading.Barrier(BUILDS)

    def build(request) -> tuple[BuildResult, float, float]:
        barrier.wait()
        start = time.monotonic()
        result = create(request)
        return result, start, time.monotonic()

    with ThreadPoolExecutor(BUILDS) as pool:
        outcomes = list(pool.map(build, requests))

    starts, ends = [o[1] for o in outcomes], [o[2] for o in outcomes]
    assert max(starts) < min(ends), "the builds did not overlap: this proves nothing about concurrency"
    record_property("concurrent_wall_s", round(max(ends) - min(starts), 2))
    for index, (result, _start, _end) in enumerate(outcomes):
        assert records(result.output, "layers")["index"] == [str(index)]
        assert [(layer.name, layer.metadata) for layer in result.layers] == [("own", {"build-index": str(index)})]
        probe = shell(
            result.image,
            "cat /layers/fixture_layers/own/first /layers/fixture_layers/own/second; echo; "
            "cat /workspace/marker.txt /workspace/written-by-build.txt",
        )
        assert probe.output.split() == [f"build-{index}build-{index}", f"app-{index}", f"build-{index}"]
    assert len({result.image_id for result, _s, _e in outcomes}) == BUILDS
    leak_guard.assert_clean(allowed_images=[r.image for r in requests])


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.docker
def test_concurrent_set_up_calls_leave_runtimes_and_wheelhouse_intact(stack) -> None:
    """Two workers calling the set-up functions at once (as `pytest -n 2` does) on the cached state:
    they serialise on the runtimes' file locks, change nothing, and leave every archive verifiable."""
    before = runtimes.read_manifest()
    if not before:
        pytest.skip("no runtimes built yet (run `make setup`)")
    version = before[0].version if before[0].stack == stack.name else runtimes.DEFAULT_VERSIONS[0]
    manifest_text = runtimes.manifest_path().read_text()
    requirements = access.sample_app_requirements()
    python_versions = sorted({runtimes.minor_version(v) for v in runtimes.DEFAULT_VERSIONS})
    quiet = lambda _line: None  # noqa: E731

    def worker(_n: int) -> tuple[str, str]:
        archive = runtimes.ensure_runtime(version, stack.name, on_output=quiet)
        wheelhouse = access.ensure_wheelhouse(
            requirements, python_versions=python_versions, extra=list(access.PIP_REQUIREMENTS), on_output=quiet
        )
        return archive.sha256, str(wheelhouse)

    def register_again(_n: int) -> None:
        """Re-register the existing entries (same content) to race writers on the manifest lock."""
        for _round in range(5):
            for archive in before:
                runtimes.register(archive, stacks.get_stack(archive.stack))

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(worker, range(2)))
        list(pool.map(register_again, range(2)))

    assert results[0] == results[1]
    assert runtimes.manifest_path().read_text() == manifest_text  # a cached runtime is not re-registered
    tables = load_toml(runtimes.manifest_path(), what="runtime manifest")["runtimes"]
    assert len(tables) == len(before)
    for archive in runtimes.read_manifest():
        assert archive.path.is_file(), archive.path
        assert archive.path.stat().st_size == archive.size
        assert _sha256(archive.path) == archive.sha256, f"{archive.path} does not match the manifest"
    stamp = access.wheelhouse_inputs_digest(requirements, python_versions, list(access.PIP_REQUIREMENTS))
    assert stamp in access._satisfied_digests(access.cache_dir("wheelhouse") / access.STAMP_NAME)
