"""`make bench`: where the embedded platform spends time, measured side by side in one run.

These machines are noisy, so every figure that matters is a ratio of two things measured here,
now, in alternation (`--rounds` rounds, median taken); absolute seconds are context only.

- platform overhead: a full embedded build of the minimal app versus the irreducible work, i.e.
  the same `bin/detect` + `bin/build` run directly in one container with the same mounts (timed
  like `docker run --rm`: container start and removal included), plus a plain `docker load` of the
  layers the build produced;
- warm rebuild of the unchanged app (and how many layers it re-sent), and after a one-line change;
- export throughput: our tar+hash of the python layer versus `tar | sha256sum` of the same tree,
  wall and CPU seconds (`--export-only` runs just this);
- where one cold build spends its time, step by step, from the build's own output;
- the whole conformance suite, serial versus two pytest-xdist workers sharing the session builds
  (minutes rather than seconds; `--no-suite` leaves it out).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conformance import access, runtimes, stacks
from conformance.data import reference_buildpack, sample_apps_dir
from conformance.engine import (
    SESSION_ID,
    Mount,
    cleanup,
    ensure_engine,
    exec_in,
    running_container,
    shares_host_ids,
)
from conformance.paths import wait_for_discards, work_root
from conformance.platform.archive import Owner, write_layer_tar
from conformance.platform.cache import BuildCache
from conformance.platform.creator import BuildResult, create
from conformance.platform.log import Output
from conformance.platform_inputs import stack_build_request

BUILDPACK = reference_buildpack()
APP = sample_apps_dir() / "minimal"


# Where one cold build spends its time: each line of the build output below ends the step named
# with it (the reference buildpack prints a heading per step; the platform prints one per phase).
PROFILE_STEPS = (
    ("===> DETECT", "platform: start the build container, copy the app"),
    ("===> RESTORE", "detect (bin/detect)"),
    ("===> BUILD", "restore (nothing cached)"),
    ("[Installing Python]", "bin/build: start, choose the Python version"),
    ("[Installing pip]", "bin/build: install Python (verify + unpack the runtime)"),
    ("[Installing dependencies]", "bin/build: install pip (+ byte-compile it)"),
    ("[Setting launch processes]", "bin/build: venv + pip install -r requirements.txt"),
    ("===> EXPORT", "bin/build: launch.toml; platform: read layers, remove the container"),
    ("Exported ", "export: tar + hash the layers, docker load"),
)
PROFILE_END = "platform: save the cache"


class StepClock:
    """Timestamps the first appearance of each profile marker in a build's streamed output."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seen: dict[str, float] = {}
        self._pending = ""

    def __call__(self, text: str) -> None:
        now = time.perf_counter()
        self._pending = (self._pending + text)[-4096:]
        for marker, _ in PROFILE_STEPS:
            if marker not in self.seen and marker in self._pending:
                self.seen[marker] = now - self.started

    def steps(self, total: float) -> list[tuple[str, float]]:
        """(step, seconds) in order; steps whose marker never appeared are merged into the next."""
        result, previous = [], 0.0
        for marker, label in PROFILE_STEPS:
            if marker in self.seen:
                result.append((label, self.seen[marker] - previous))
                previous = self.seen[marker]
        result.append((PROFILE_END, total - previous))
        return result


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

    def build(
        self,
        app: Path,
        image: str,
        cache: BuildCache,
        *,
        clear: bool = False,
        on_output: Output | None = None,
        buildpack: Path = BUILDPACK,
    ) -> BuildResult:
        return create(
            stack_build_request(
                image=image,
                app_dir=app,
                buildpacks=[buildpack],
                stack=self.stack,
                access=self.access,
                runtimes_dir=runtimes.runtimes_dir(),
                cache=cache,
                clear_cache=clear,
                on_output=on_output or (lambda text: None),
            )
        )

    def profiled_build(
        self, app: Path, image: str, cache: BuildCache, *, clear: bool = False, buildpack: Path = BUILDPACK
    ) -> tuple[float, BuildResult, list[tuple[str, float]], float]:
        """(seconds until the image is ready, the result, its step profile, seconds of the work
        dir's deletion after that): the deletion is waited for so it never overlaps what comes next."""
        clock = StepClock()
        seconds, result = _timed(self.build, app, image, cache, clear=clear, on_output=clock, buildpack=buildpack)
        deleting, _ = _timed(wait_for_discards)
        return seconds, result, clock.steps(seconds), deleting  # type: ignore[return-value]

    def fresh_image(self) -> tuple[str, BuildCache]:
        self.counter += 1
        return f"bpconform-bench/app-{self.counter}:{SESSION_ID}", BuildCache(self.scratch / f"cache-{self.counter}")

    # -- the irreducible work ---------------------------------------------------------------------

    def direct_build(self) -> float:
        """bin/detect + bin/build in one container with the platform's mounts, nothing else.

        Timed like a `docker run --rm`: the container's start and removal count, since no build
        can run without them; preparing the mounted dirs does not.
        """
        work = Path(tempfile.mkdtemp(dir=work_root()))  # the storage the platform builds on
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
        setup = 0.0  # handing the dirs to the build user is set-up, not build work: not counted
        if shares_host_ids():
            for path in (app, layers, platform_dir, work / "plan.toml"):
                subprocess.run(["chown", "-R", "1000:1000", str(path)], check=True)
        started = time.perf_counter()
        with running_container(
            self.stack.build_image,
            ["sleep", "infinity"],
            kind="bench",
            mounts=mounts,
            user="0:0",
            network_disabled=True,
        ) as container:
            if not shares_host_ids():
                setup, _ = _timed(
                    exec_in, container, ["chown", "-R", "1000:1000", "/workspace", "/layers", "/platform", "/plan.toml"]
                )
            result = exec_in(container, ["sh", "-c", script], user="1000:1000", environment=env, workdir="/workspace")
            if not shares_host_ids():  # files the build user made, which we may not delete from the host
                seconds, _ = _timed(exec_in, container, ["rm", "-rf", "/workspace/*", "/layers/bpconform_python"])
                setup += seconds
        seconds = time.perf_counter() - started - setup
        shutil.rmtree(work, ignore_errors=True)
        if result.exit_code != 0:
            raise SystemExit(f"direct bin/build failed: {result.output[-2000:]}")
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
    full, discard, direct, load, warm, changed, sent_warm = [], [], [], [], [], [], []

    profiles: list[list[tuple[str, float]]] = []

    def timed_build(app: Path, image: str, cache: BuildCache, *, clear: bool = False) -> tuple[float, BuildResult]:
        seconds, result, steps, deleting = bench.profiled_build(app, image, cache, clear=clear)
        if clear:
            profiles.append(steps)
        discard.append(deleting)
        return seconds, result

    try:
        timed_build(APP, *bench.fresh_image(), clear=True)  # warm the page cache and the engine
        for _ in range(rounds):
            image, cache = bench.fresh_image()
            full.append(timed_build(APP, image, cache, clear=True)[0])
            direct.append(bench.direct_build())
            load.append(bench.plain_load(image))
            timed_build(APP, image, cache, clear=True)  # the image again (plain_load removed it), for the rebuilds
            seconds, result = timed_build(APP, image, cache)
            warm.append(seconds)
            sent_warm.append(len(result.export.sent_layers))
            app = Path(tempfile.mkdtemp(dir=scratch)) / "app"
            shutil.copytree(APP, app)
            (app / "app.py").write_text((app / "app.py").read_text() + "\n# one-line change\n")
            changed.append(timed_build(app, image, cache)[0])
        export = _export_throughput(_python_layer_tree(scratch), rounds)
    finally:
        cleanup(session=SESSION_ID)
        shutil.rmtree(scratch, ignore_errors=True)
    irreducible = [d + lo for d, lo in zip(direct, load, strict=True)]
    return {
        "rounds": rounds,
        "per_round_s": {
            "full": full,
            "discard": discard,
            "direct": direct,
            "load": load,
            "warm": warm,
            "changed": changed,
        },
        "full_build_s": statistics.median(full),
        "work_dir_discard_s": statistics.median(discard),
        "direct_bin_build_s": statistics.median(direct),
        "plain_docker_load_s": statistics.median(load),
        "platform_overhead_ratio": statistics.median(f / i for f, i in zip(full, irreducible, strict=True)),
        "warm_rebuild_s": statistics.median(warm),
        "warm_rebuild_layers_sent": max(sent_warm),
        "rebuild_after_one_line_change_s": statistics.median(changed),
        "cold_build_profile_s": _median_profile(profiles),
        **export,
    }


def _median_profile(profiles: list[list[tuple[str, float]]]) -> dict[str, float]:
    steps = [label for label, _ in profiles[0]]
    complete = [dict(profile) for profile in profiles if [label for label, _ in profile] == steps]
    return {label: statistics.median(profile[label] for profile in complete) for label in steps}


def _python_layer_tree(scratch: Path) -> Path:
    """A python layer as the buildpack makes it, extracted from the runtime archive."""
    archive = next(r for r in runtimes.read_manifest() if r.version == runtimes.DEFAULT_VERSIONS[-1])
    tree = scratch / "python-layer"
    tree.mkdir()
    subprocess.run(["tar", "-xzf", str(archive.path), "-C", str(tree)], check=True)
    return tree


def _export_throughput(tree: Path, rounds: int) -> dict[str, object]:
    """Our tar+hash of `tree` against `tar | sha256sum`, alternating, wall and CPU seconds.

    Our tar goes where a build's layer tars go (a dir under `work_root()`, in memory when /dev/shm
    allows) and to a new file each round, as the exporter writes them. The bench used to write one
    file under /tmp (the shared disk) over and over: ext4 starts writing back a file that was
    truncated and rewritten when it is closed (`auto_da_alloc`), and truncating it again on the next
    round waits for that, so part of "our" wall time was the disk's (profiled: 24 ms in `open` and
    10 ms in `close`, for an export of about 140 ms of CPU). The files are removed outside the timed part.
    The CPU seconds are the steady figure on a shared machine: wall time also counts waiting for a
    core, and `tar | sha256sum` is two processes, so under load it gets two shares of the CPU to our one.
    """
    ours, ours_cpu, baseline, baseline_cpu, size = [], [], [], [], 0
    with tempfile.TemporaryDirectory(prefix="bench-export-", dir=work_root()) as out:
        for index in range(rounds):
            dest = Path(out) / f"layer-{index}.tar"
            cpu = time.process_time()
            seconds, tar = _timed(write_layer_tar, dest, [(tree, "layers/bp/python")], Owner(1000, 1000))
            ours_cpu.append(time.process_time() - cpu)
            ours.append(seconds)
            size = tar.size  # type: ignore[union-attr]
            dest.unlink()
            children = _children_cpu()
            seconds, _ = _timed(subprocess.run, [*BASELINE, str(tree)], check=True, capture_output=True)
            baseline_cpu.append(_children_cpu() - children)
            baseline.append(seconds)
    mb = size / 1e6
    return {
        "export_layer_mb": mb,
        "export_ours_mb_s": mb / statistics.median(ours),
        "export_tar_sha256sum_mb_s": mb / statistics.median(baseline),
        "export_ours_cpu_mb_s": mb / statistics.median(ours_cpu),
        "export_tar_sha256sum_cpu_mb_s": mb / statistics.median(baseline_cpu),
        "export_load_average": os.getloadavg()[0],
    }


# `tar | sha256sum` of the directory given as $1 (no shell string made from the path)
BASELINE = ("sh", "-c", 'tar -C "$1" -cf - . | sha256sum', "sh")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_export(rounds: int, stack_name: str) -> dict[str, object]:
    """Only the export throughput (`--export-only`): no builds, no engine."""
    runtimes.ensure_default_runtimes(stack_name)
    scratch = Path(tempfile.mkdtemp(prefix="bpconform-bench-"))
    try:
        return {"rounds": rounds, **_export_throughput(_python_layer_tree(scratch), rounds)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


EXPORT_ROWS = (
    ("export: our tar+hash of the python layer", "export_ours_mb_s", "{:.0f} MB/s", "wall"),
    ("export: tar | sha256sum of the same tree", "export_tar_sha256sum_mb_s", "{:.0f} MB/s", "wall, two processes"),
    ("  ours per CPU second", "export_ours_cpu_mb_s", "{:.0f} MB/s", "steadier on a shared machine"),
    ("  tar | sha256sum per CPU second", "export_tar_sha256sum_cpu_mb_s", "{:.0f} MB/s", "tar's and sha256sum's CPU"),
    ("  load average (1 min) at the end", "export_load_average", "{:.1f}", ""),
)


def render_export(results: dict[str, object]) -> str:
    width = max(len(label) for label, *_ in EXPORT_ROWS)
    lines = [f"{label:<{width}}  {fmt.format(results[key]):>12}  {note}" for label, key, fmt, note in EXPORT_ROWS]
    return "\n".join(
        [*lines, f"(median of {results['rounds']} rounds; python layer {results['export_layer_mb']:.0f} MB)"]
    )


def measure_versus(other: Path, rounds: int, stack_name: str) -> dict[str, object]:
    """Cold builds of the minimal app with the reference buildpack and with `other` (e.g. its
    previous release), alternating, step by step: what a buildpack change did to build times."""
    scratch = Path(tempfile.mkdtemp(prefix="bpconform-bench-"))
    bench = Bench(stack_name, scratch)
    profiles: dict[str, list[list[tuple[str, float]]]] = {"this": [], "other": []}
    try:
        bench.build(APP, *bench.fresh_image(), clear=True)  # warm the page cache and the engine
        wait_for_discards()
        for _ in range(rounds):
            for label, buildpack in (("this", BUILDPACK), ("other", other)):
                _, _, steps, _ = bench.profiled_build(APP, *bench.fresh_image(), clear=True, buildpack=buildpack)
                profiles[label].append(steps)
    finally:
        cleanup(session=SESSION_ID)
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "rounds": rounds,
        "other_buildpack": str(other),
        "this_profile_s": _median_profile(profiles["this"]),
        "other_profile_s": _median_profile(profiles["other"]),
    }


def render_versus(results: dict[str, object]) -> str:
    this: dict[str, float] = results["this_profile_s"]  # type: ignore[assignment]
    other: dict[str, float] = results["other_profile_s"]  # type: ignore[assignment]
    width = max(len(label) for label in [*this, *other])
    lines = [
        f"cold build of the minimal app, {BUILDPACK.name} (this) vs {results['other_buildpack']} (other),"
        f" median of {results['rounds']} alternating rounds",
        f"{'step':<{width}}  {'this':>8}  {'other':>8}  this/other",
        "-" * (width + 34),
    ]
    for label in dict.fromkeys([*other, *this]):
        mine, theirs = this.get(label), other.get(label)
        ratio = f"{mine / theirs:.2f}x" if mine is not None and theirs else ""
        lines.append(f"{label:<{width}}  {_seconds(mine):>8}  {_seconds(theirs):>8}  {ratio:>10}")
    total_this, total_other = sum(this.values()), sum(other.values())
    lines.append(
        f"{'all steps':<{width}}  {_seconds(total_this):>8}  {_seconds(total_other):>8}  "
        f"{total_this / total_other:>9.2f}x"
    )
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def measure_suite(workers: int = 2) -> dict[str, object]:
    """Wall time of `bpconform run` on the reference buildpack, serial and with `workers` workers.

    Each run is a fresh session: the sample apps are built once per run (shared between workers)
    on top of the cached stacks, runtimes and wheelhouse. Outcomes must match check for check.
    """
    runs: dict[str, dict[str, Any]] = {}
    for label, extra in (("serial", []), (f"{workers} workers", ["--workers", str(workers)])):
        with tempfile.TemporaryDirectory(prefix="bpconform-bench-suite-") as reports:
            started = time.perf_counter()
            command = [sys.executable, "-m", "conformance.cli", "run", "--buildpack", str(BUILDPACK)]
            subprocess.run([*command, "--report-dir", reports, *extra], check=False, stdout=subprocess.DEVNULL)
            seconds = time.perf_counter() - started
            report = json.loads((Path(reports) / "report.json").read_text())
        outcomes = {(r["check"], r["app"]): r["outcome"] for r in report["records"]}
        runs[label] = {"seconds": seconds, "totals": report["totals"], "outcomes": outcomes}
    serial, parallel = runs["serial"], runs[f"{workers} workers"]
    return {
        "workers": workers,
        "suite_serial_s": serial["seconds"],
        "suite_parallel_s": parallel["seconds"],
        "suite_speedup": serial["seconds"] / parallel["seconds"],
        "suite_totals": serial["totals"],
        "suite_same_outcomes": serial["outcomes"] == parallel["outcomes"],
    }


def render_suite(results: dict[str, object]) -> str:
    totals = results["suite_totals"]
    workers = results["workers"]
    rows = [
        ("serial", f"{results['suite_serial_s']:.0f} s"),
        (f"{workers} workers (pytest-xdist, sample apps built once)", f"{results['suite_parallel_s']:.0f} s"),
        ("speed-up", f"{results['suite_speedup']:.2f}x"),
        ("same outcome for every check", "yes" if results["suite_same_outcomes"] else "NO"),
    ]
    counts = (
        f"{totals['total']} cases: {totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped"  # type: ignore[index]
    )
    width = max(len(label) for label, _ in rows)
    return "\n".join([f"conformance suite ({counts})", *(f"  {label:<{width}}  {value:>8}" for label, value in rows)])


def render(results: dict[str, object]) -> str:
    rows = [
        (
            "platform overhead (full build / (direct bin/build + docker load))",
            "platform_overhead_ratio",
            "{:.2f}x",
            "target < 1.15x",
        ),
        ("  full embedded build, clean cache", "full_build_s", "{:.1f} s", "until the image is ready"),
        ("  then deleting the build's work dir", "work_dir_discard_s", "{:.2f} s", "in the background, not counted"),
        ("  direct bin/detect + bin/build", "direct_bin_build_s", "{:.1f} s", ""),
        ("  plain docker load of the same layers", "plain_docker_load_s", "{:.1f} s", ""),
        ("warm rebuild, unchanged app", "warm_rebuild_s", "{:.1f} s", "target: a few seconds"),
        ("  layers re-sent to the engine", "warm_rebuild_layers_sent", "{}", ""),
        ("rebuild after a one-line app change", "rebuild_after_one_line_change_s", "{:.1f} s", ""),
        *EXPORT_ROWS,
    ]
    width = max(len(label) for label, *_ in rows)
    lines = [f"{'measure':<{width}}  {'value':>12}  note", "-" * (width + 30)]
    for label, key, fmt, note in rows:
        lines.append(f"{label:<{width}}  {fmt.format(results[key]):>12}  {note}")
    lines.append(f"(median of {results['rounds']} rounds; python layer {results['export_layer_mb']:.0f} MB)")
    profile: dict[str, float] = results["cold_build_profile_s"]  # type: ignore[assignment]
    total = sum(profile.values())
    lines += ["", f"where one cold build spends its time (median step times, {total:.1f} s in all)", "-" * (width + 30)]
    for label, seconds in profile.items():
        lines.append(f"{label:<{width}}  {seconds:>10.2f} s  {seconds / total:>4.0%}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stack", default="bookworm")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--no-suite", action="store_true", help="leave out the suite's serial vs parallel run")
    parser.add_argument(
        "--export-only", action="store_true", help="only the export throughput (tar+hash of the python layer)"
    )
    parser.add_argument(
        "--versus",
        type=Path,
        metavar="BUILDPACK_DIR",
        help="instead: compare cold builds, step by step, with this buildpack (e.g. a previous release)",
    )
    args = parser.parse_args()
    if args.versus:
        results = measure_versus(args.versus.resolve(), args.rounds, args.stack)
        print(render_versus(results))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return 0
    if args.export_only:
        results = measure_export(args.rounds, args.stack)
        print(render_export(results))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return 0
    results = measure(args.rounds, args.stack)
    print(render(results), flush=True)
    if not args.no_suite:
        results.update(measure_suite())
        print("\n" + render_suite(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
