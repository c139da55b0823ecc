"""Dispatch `detect` / `build` and turn every failure into a short message with the right exit code."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import traceback
from pathlib import Path

from bpconform_python import detect, tomlwriter
from bpconform_python.build import inputs_from, run_build
from bpconform_python.context import buildpack_dir_from, effective_env, load_buildpack_config, read_platform_env
from bpconform_python.output import BuildpackError, Log, unexpected_error_message

EXIT_ERROR = 1


def run_detect(argv: list[str], log: Log) -> int:
    app_dir = Path.cwd()
    result = detect.detect_from_names(detect.root_file_names(app_dir), str(app_dir))
    log.line(result.message)
    if not result.passed:
        return detect.DETECT_FAIL
    plan_path = Path(argv[1]) if len(argv) > 1 else Path(os.environ["CNB_BUILD_PLAN_PATH"])
    plan_path.write_text(tomlwriter.dumps(detect.build_plan()), encoding="utf-8")
    return detect.DETECT_PASS


def _debug_enabled(argv: list[str]) -> bool:
    """BP_DEBUG=1 from the process env or `<platform>/env/BP_DEBUG` turns on tracebacks."""
    position = {"detect": 1, "build": 2}.get(argv[0] if argv else "", 0)
    platform_dir = argv[position] if position and len(argv) > position else os.environ.get("CNB_PLATFORM_DIR", "")
    env = effective_env(os.environ, read_platform_env(Path(platform_dir)) if platform_dir else {})
    return env.get("BP_DEBUG", "").strip().lower() in ("1", "true", "yes")


def merge_output_streams() -> None:
    """Send stderr (ours and every tool's) down stdout's pipe, both line-buffered.

    Flushing is not enough: a platform that reads the two pipes separately interleaves them as it
    pleases. `docker exec` does (measured: 13 of 60 runs showed a flushed stdout line after the
    stderr line written after it), so an `[Error ...]` block landed above the banner. One pipe keeps
    the order the buildpack wrote; the lifecycle only passes both streams on to the log anyway.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        if not os.path.sameopenfile(sys.stdout.fileno(), sys.stderr.fileno()):
            os.dup2(sys.stdout.fileno(), sys.stderr.fileno())
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]


def main(argv: list[str]) -> int:
    """argv: ["detect", platform, plan] or ["build", layers, platform, plan]."""
    merge_output_streams()
    log = Log()
    phase = argv[0] if argv else ""
    buildpack = "bpconform/python"
    try:
        if phase == "detect":
            return run_detect(argv[1:], log)
        if phase == "build":
            config = load_buildpack_config(buildpack_dir_from(os.environ))
            buildpack = f"{config.id} {config.version}"
            run_build(inputs_from(argv[1:], os.environ, config), log)
            return 0
        log.error("Wrong usage", "run as bin/detect <platform> <plan> or bin/build <layers> <platform> <plan>")
        return EXIT_ERROR
    except BuildpackError as exc:
        log.error(exc.title, exc.detail)
        return EXIT_ERROR
    except KeyboardInterrupt:
        log.error("Interrupted", "The build was interrupted.")
        return 130
    except Exception as exc:
        if _debug_enabled(argv):
            traceback.print_exc()
        sys.stderr.write(unexpected_error_message(exc, buildpack))
        return EXIT_ERROR
