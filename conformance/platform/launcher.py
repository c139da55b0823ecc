"""The launcher the embedded platform installs into app images, and the files it reads at run time.

The CNB lifecycle's launcher is a static Go binary that we cannot download here, so the embedded platform
installs `launcher.sh` (next to this module) at `/cnb/lifecycle/launcher` instead: a POSIX sh script that
runs on the run image's `/bin/sh` (dash on Debian) and mirrors the lifecycle's launch semantics for
Platform API >= 0.10 (process selection by argv0, user arguments, the launch environment from layers,
exec.d, working directory, exit code 82). The script's header lists the few documented differences.

The Go launcher reads buildpacks and processes from `<layers>/config/metadata.toml`; a shell can't parse
TOML reliably, so the exporter writes what the script needs as plain files under `/cnb/lifecycle`:

- `order`: escaped buildpack ids in group order, one per line (group order is not recoverable from a
  directory listing, and it decides the launch PATH);
- `processes/<type>`: one sh file per process type, made with `shlex.quote` so that the script can source it
  without interpreting any buildpack-provided text (the type is any name `spec.process_type_problem`
  accepts, e.g. `my+proc` or `a b`: the script only ever uses it quoted);
- `default-process`: the default type, only used to give a better hint when no command is given.

The exporter also creates the `/cnb/process/<type>` symlinks to the launcher (argv0 selects the process).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from conformance.errors import PlatformError
from conformance.platform import spec

ORDER_FILE = "order"
PROCESSES_DIR = "processes"
DEFAULT_PROCESS_FILE = "default-process"

# The lines of launcher.sh that hold a value defined once in spec.py, rewritten from it: the process-type
# rule and the launch error's exit code.
_SPEC_LINES = {
    "_cnb_type_forbidden": spec.PROCESS_TYPE_FORBIDDEN,
    "_cnb_launch_error": str(int(spec.ExitCode.LAUNCH_ERROR)),
}
# Buildpack API 0.9 made user arguments replace a process's `args` instead of being appended to them.
_REPLACE_ARGS_SINCE = (0, 9)


@dataclass
class ProcessSpec:
    """A process as the launcher needs it; the platform converts its own `launch.toml` records to this."""

    type: str
    command: list[str]
    args: list[str]
    working_dir: str | None
    default: bool
    buildpack_api: str = "0.10"
    """API of the buildpack that declared the process: decides whether user args replace or extend `args`."""
    exec_env: list[str] = field(default_factory=list)
    """Execution environments the process is for (empty = all); honoured from Platform API 0.15."""
    direct: bool = True
    """False only for Buildpack API < 0.9 processes without `direct = true`: run through bash with profiles."""


def launcher_script() -> bytes:
    """The launcher script's bytes, read from package data so that an installed package has it too.

    Its process-type rule (`_cnb_type_forbidden`) and launch error code (`_cnb_launch_error`) are
    written here from `spec.PROCESS_TYPE_FORBIDDEN` and `spec.ExitCode.LAUNCH_ERROR`, so that the
    exporter, `launch.toml` reading and the launcher apply the same rule and the same code.
    """
    script = Path(__file__).with_name("launcher.sh").read_bytes()
    for name, value in _SPEC_LINES.items():
        pattern = re.compile(rb"^" + re.escape(name.encode()) + rb"=.*$", re.MULTILINE)
        line = f"{name}={shlex.quote(value)}".encode()
        script, count = pattern.subn(lambda _match, line=line: line, script, count=1)
        if count != 1:
            raise PlatformError(f"launcher.sh has no {name} line", "this is a packaging bug: report it")
    return script


def order_file(escaped_ids: list[str]) -> bytes:
    """The group order, one escaped buildpack id (`/` replaced by `_`) per line."""
    for escaped in escaped_ids:
        if not escaped or "/" in escaped or "\n" in escaped or escaped in (".", ".."):
            raise PlatformError(
                f"cannot record buildpack id {escaped!r} in the launcher's order file",
                hint="pass escaped buildpack ids (with '/' replaced by '_'), as used for layer directories",
            )
    return "".join(f"{escaped}\n" for escaped in escaped_ids).encode()


def process_files(processes: list[ProcessSpec], default_type: str | None) -> dict[str, bytes]:
    """Files to put under `/cnb/lifecycle`, by path relative to it (the order file is separate).

    `default_type` wins over `ProcessSpec.default`; when it is None the process marked default (if any) is used.
    """
    seen: set[str] = set()
    for process in processes:
        _check_process_type(process.type)
        if process.type in seen:
            raise PlatformError(
                f"process type {process.type!r} is defined twice",
                hint="a process type may be declared once per image; later buildpacks should override, not repeat",
            )
        seen.add(process.type)
    default = _resolve_default(processes, default_type)
    files = {f"{PROCESSES_DIR}/{process.type}": process_file(process) for process in processes}
    if default is not None:
        files[DEFAULT_PROCESS_FILE] = f"{default}\n".encode()
    return files


def process_file(process: ProcessSpec) -> bytes:
    """One process as sh assignments, every value quoted so that sourcing it runs nothing."""
    lines = [
        f"# Process type {process.type!r}, written by the bpconform exporter; sourced by {spec.LAUNCHER_PATH}.",
        f"_cnb_proc_command_count={len(process.command)}",
    ]
    lines += [f"_cnb_proc_command_{i}={shlex.quote(entry)}" for i, entry in enumerate(process.command, start=1)]
    lines.append(f"_cnb_proc_args_count={len(process.args)}")
    lines += [f"_cnb_proc_args_{i}={shlex.quote(arg)}" for i, arg in enumerate(process.args, start=1)]
    lines.append(f"_cnb_proc_working_dir={shlex.quote(process.working_dir or '')}")
    lines.append(f"_cnb_proc_user_args={_user_args_rule(process)}")
    lines.append(f"_cnb_proc_direct={1 if process.direct else 0}")
    for env in process.exec_env:
        if not env or "\n" in env:
            raise PlatformError(
                f"process {process.type!r} has an invalid exec-env entry {env!r}",
                hint="exec-env entries are names like 'production' or '*'",
            )
    lines.append(f"_cnb_proc_exec_env={shlex.quote(chr(10).join(process.exec_env))}")
    return ("\n".join(lines) + "\n").encode()


def _user_args_rule(process: ProcessSpec) -> str:
    """`replace` for Buildpack API >= 0.9 (the launcher ignores it for multi-entry commands), else `append`."""
    try:
        major, minor = (int(part) for part in process.buildpack_api.split("."))
    except ValueError:
        raise PlatformError(
            f"process {process.type!r}: buildpack API {process.buildpack_api!r} is not a version like '0.10'",
            hint="take the api from the buildpack's buildpack.toml",
        ) from None
    return "replace" if (major, minor) >= _REPLACE_ARGS_SINCE else "append"


def _check_process_type(process_type: str) -> None:
    """The one process-type rule (`spec.process_type_problem`, the lifecycle's plus host safety)."""
    problem = spec.process_type_problem(process_type)
    if problem:
        raise PlatformError(
            f"invalid process type {process_type!r}: {problem}", hint="use a type like 'web' or 'worker'"
        )


def _resolve_default(processes: list[ProcessSpec], default_type: str | None) -> str | None:
    types = {process.type for process in processes}
    if default_type is not None:
        if default_type not in types:
            raise PlatformError(
                f"default process type {default_type!r} is not one of the image's processes {sorted(types)}",
                hint="choose a process type that a buildpack declared in launch.toml",
            )
        return default_type
    defaults = [process.type for process in processes if process.default]
    if len(defaults) > 1:
        raise PlatformError(
            f"several processes are marked default: {defaults}",
            hint="pass default_type explicitly (the lifecycle keeps the last buildpack's default)",
        )
    return defaults[0] if defaults else None
