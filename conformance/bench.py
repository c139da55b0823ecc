"""`make bench`: where the embedded platform spends time, measured side by side in one run.

These machines are noisy, so every figure that matters is a ratio of two things measured here,
now, in alternation (`--repeat` rounds, median taken); absolute seconds are context only.

- platform overhead: a full embedded build of the minimal app versus the irreducible work, i.e.
  the same `bin/detect` + `bin/build` run directly in one container with the same mounts, plus a
  plain `docker load` of the layers the build produced;
- warm rebuild of the unchanged app (and how many layers it re-sent), and after a one-line change;
- export throughput: our tar+hash of the python layer versus `tar | sha256sum` of the same tree.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from conformance import access, runtimes, stacks
from conformance.engine import SESSION_ID, Mount, ensure_engine, exec_in, running_container
from conformance.paths import REPO_ROOT
from conformance.platform.archive import Owner, write_layer_tar
from conformance.platform.cache import BuildCache
from conformance.platform.creator import BuildRequest, BuildResult, create

BUILDPACK = REPO_ROOT / "buildpack_under_test"
APP = REPO_ROOT / "testapps" / "minimal"


def _timed(func: Callable[..., object], *args: object, **kwargs: object) -> tuple[float, object]:
    started = time.perf_counter()
    value = func(*args, **kwargs)
    return time.perf_counter() - started, value


class Bench:
    def __init__(self, stack_name: str, scratch: Path) -> None:
        self.stack = stacks.ensure_stack(stack_name)
        runtimes.ensure_default_runtimes(stack_name)
        self.access = access.offline(access.ensure_sample_wheelhouse())
        self.scratch = scratch
        self.counter = 0

    def build(self, app: Path, image: str, cache: BuildCache, *, clear: bool = False) -> BuildResult:
        return create(
            BuildRequest(
                image=image,
                app_dir=app,
                buildpacks=[BUILDPACK],
                stack=self.stack,
                access=self.access,
                runtimes_dir=runtimes.runtimes_dir(),
                cache=cache,
                clear_cache=clear,
                on_output=lambda text: None,
            )
        )

    def fresh_image(self) -> tuple[str, BuildCache]:
        self.counter += 1
        return f"bpconform-bench/app-{self.counter}:{SESSION_ID}", BuildCache(self.scratch / f"cache-{self.counter}")

    # -- the irreducible work ---------------------------------------------------------------------

    def direct_build(self) -> float:
        """bin/detect + bin/build in one container with the platform's mounts, nothing else."""
        work = Path(tempfile.mkdtemp(dir=self.scratch))
        app, layers, platform_dir = work / "app", work / "layers", work / "platform"
        shutil.copytree(APP, app)
        (layers / "bpconform_python").mkdir(parents=True)
        (platform_dir / "env").mkdir(parents=True)
        for name, value in self.access.platform_env().items():
            (platform_dir / "env" / name).write_text(value)
        (work / "plan.toml").write_text("")
        mounts = [
            Mount(app, "/workspace"),
            Mount(layers, "/layers"),
            Mount(platform_dir, "/platform"),
            Mount(work / "plan.toml", "/plan.toml"),
            Mount(BUILDPACK, "/cnb/buildpacks/bpconform_python/0.1.0", read_only=True),
            Mount(runtimes.runtimes_dir(), "/bpconform/runtimes", read_only=True),
            *self.access.mounts(),
        ]
        env = {
            "CNB_LAYERS_DIR": "/layers/bpconform_python",
            "CNB_PLATFORM_DIR": "/platform",
            "CNB_BP_PLAN_PATH": "/plan.toml",
            "CNB_BUILD_PLAN_PATH": "/plan.toml",
            "CNB_BUILDPACK_DIR": "/cnb/buildpacks/bpconform_python/0.1.0",
            "CNB_TARGET_OS": "linux",
            "CNB_TARGET_ARCH": self.stack.arch,
            "CNB_TARGET_DISTRO_NAME": self.stack.distro_name,
            "CNB_TARGET_DISTRO_VERSION": self.stack.distro_version,
            "HOME": "/home/cnb",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
        }
        bp = "/cnb/buildpacks/bpconform_python/0.1.0"
        script = f"{bp}/bin/detect /platform /plan.toml && {bp}/bin/build /layers/bpconform_python /platform /plan.toml"
        with running_container(
            self.stack.build_image,
            ["sleep", "infinity"],
            kind="bench",
            mounts=mounts,
            user="0:0",
            network_disabled=True,
        ) as container:
            exec_in(container, ["chown", "-R", "1000:1000", "/workspace", "/layers", "/platform", "/plan.toml"])
            seconds, result = _timed(
                lambda: exec_in(
                    container, ["sh", "-c", script], user="1000:1000", environment=env, workdir="/workspace"
                )
            )
            exec_in(container, ["rm", "-rf", "/workspace/*", "/layers/bpconform_python"])
        shutil.rmtree(work, ignore_errors=True)
        if result.exit_code != 0:  # type: ignore[union-attr]
            raise SystemExit(f"direct bin/build failed: {result.output[-2000:]}")  # type: ignore[union-attr]
        return seconds

    def plain_load(self, image: str) -> float:
        """`docker load` of an image whose run-image layers the engine already has."""
        saved = self.scratch / "saved.tar"
        subprocess.run(["docker", "save", "-o", str(saved), image], check=True)
        ensure_engine().images.remove(image, force=True)
        seconds, _ = _timed(
            lambda: subprocess.run(["docker", "load", "-q", "-i", str(saved)], check=True, capture_output=True)
        )
        saved.unlink()
        return seconds


def measure(rounds: int, stack_name: str) -> dict[str, object]:
    scratch = Path(tempfile.mkdtemp(prefix="bpconform-bench-"))
    bench = Bench(stack_name, scratch)
    full, direct, load, warm, changed, sent_warm = [], [], [], [], [], []
    try:
        bench.build(APP, *bench.fresh_image(), clear=True)  # warm the page cache and the engine
        for _ in range(rounds):
            image, cache = bench.fresh_image()
            seconds, _ = _timed(bench.build, APP, image, cache, clear=True)
            full.append(seconds)
            direct.append(bench.direct_build())
            load.append(bench.plain_load(image))
            bench.build(APP, image, cache, clear=True)  # the image again (plain_load removed it), for the rebuilds
            seconds, result = _timed(bench.build, APP, image, cache)
            warm.append(seconds)
            sent_warm.append(len(result.export.sent_layers))  # type: ignore[union-attr]
            app = Path(tempfile.mkdtemp(dir=scratch)) / "app"
            shutil.copytree(APP, app)
            (app / "app.py").write_text((app / "app.py").read_text() + "\n# one-line change\n")
            seconds, _ = _timed(bench.build, app, image, cache)
            changed.append(seconds)
        python_layer = _python_layer_tree(bench, scratch)
        ours, baseline, size = _export_throughput(python_layer, scratch, rounds)
    finally:
        from conformance.engine import cleanup

        cleanup(session=SESSION_ID)
        shutil.rmtree(scratch, ignore_errors=True)
    irreducible = [d + lo for d, lo in zip(direct, load, strict=True)]
    return {
        "rounds": rounds,
        "full_build_s": statistics.median(full),
        "direct_bin_build_s": statistics.median(direct),
        "plain_docker_load_s": statistics.median(load),
        "platform_overhead_ratio": statistics.median(f / i for f, i in zip(full, irreducible, strict=True)),
        "warm_rebuild_s": statistics.median(warm),
        "warm_rebuild_layers_sent": max(sent_warm),
        "rebuild_after_one_line_change_s": statistics.median(changed),
        "export_layer_mb": size / 1e6,
        "export_ours_mb_s": size / 1e6 / statistics.median(ours),
        "export_tar_sha256sum_mb_s": size / 1e6 / statistics.median(baseline),
    }


def _python_layer_tree(bench: Bench, scratch: Path) -> Path:
    """A python layer as the buildpack makes it, extracted from the runtime archive."""
    archive = next(r for r in runtimes.read_manifest() if r.version == runtimes.DEFAULT_VERSIONS[-1])
    tree = scratch / "python-layer"
    tree.mkdir()
    subprocess.run(["tar", "-xzf", str(archive.path), "-C", str(tree)], check=True)
    return tree


def _export_throughput(tree: Path, scratch: Path, rounds: int) -> tuple[list[float], list[float], int]:
    ours, baseline, size = [], [], 0
    for _ in range(rounds):
        seconds, tar = _timed(
            lambda: write_layer_tar(scratch / "layer.tar", [(tree, "layers/bp/python")], Owner(1000, 1000))
        )
        ours.append(seconds)
        size = tar.size  # type: ignore[union-attr]
        seconds, _ = _timed(
            lambda: subprocess.run(f"tar -C {tree} -cf - . | sha256sum", shell=True, check=True, capture_output=True)
        )
        baseline.append(seconds)
    return ours, baseline, size


def render(results: dict[str, object]) -> str:
    rows = [
        (
            "platform overhead (full build / (direct bin/build + docker load))",
            "platform_overhead_ratio",
            "{:.2f}x",
            "target < 1.15x",
        ),
        ("  full embedded build, clean cache", "full_build_s", "{:.1f} s", ""),
        ("  direct bin/detect + bin/build", "direct_bin_build_s", "{:.1f} s", ""),
        ("  plain docker load of the same layers", "plain_docker_load_s", "{:.1f} s", ""),
        ("warm rebuild, unchanged app", "warm_rebuild_s", "{:.1f} s", "target: a few seconds"),
        ("  layers re-sent to the engine", "warm_rebuild_layers_sent", "{}", ""),
        ("rebuild after a one-line app change", "rebuild_after_one_line_change_s", "{:.1f} s", ""),
        ("export: our tar+hash of the python layer", "export_ours_mb_s", "{:.0f} MB/s", ""),
        ("export: tar | sha256sum of the same tree", "export_tar_sha256sum_mb_s", "{:.0f} MB/s", ""),
    ]
    width = max(len(label) for label, *_ in rows)
    lines = [f"{'measure':<{width}}  {'value':>12}  note", "-" * (width + 30)]
    for label, key, fmt, note in rows:
        lines.append(f"{label:<{width}}  {fmt.format(results[key]):>12}  {note}")
    lines.append(f"(median of {results['rounds']} rounds; python layer {results['export_layer_mb']:.0f} MB)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stack", default="bookworm")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    results = measure(args.rounds, args.stack)
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
