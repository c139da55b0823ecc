"""Installing a lock file into the venv layer: `uv sync` and `poetry sync`.

Both tools *sync*: they install what the lock lists for the main group and remove what it no longer
lists, which is why the venv of a lock-file app may be cached (a pip venv may not).
- uv: `uv sync --locked --no-default-groups --no-install-project --python <python layer>`, with
  UV_PROJECT_ENVIRONMENT = the venv layer, UV_PYTHON_DOWNLOADS=never and UV_NO_MANAGED_PYTHON=1,
  so uv only ever uses the buildpack's Python. `--locked` fails when uv.lock is out of date.
- Poetry: `poetry sync --only main --no-root` with VIRTUAL_ENV = the venv layer and
  POETRY_VIRTUALENVS_CREATE=false, so Poetry uses that venv; it fails when poetry.lock is stale.
The app itself is not installed (`--no-install-project` / `--no-root`): it runs from the app dir,
and building it would need its build backend at build time for nothing. Both byte-compile what they
install (`--compile-bytecode` / `--compile`), as pip does: under SOURCE_DATE_EPOCH the pycs are
hash-checked, so they stay valid after the export resets mtimes and the run user never writes any.
The pip settings a platform gives for offline builds (PIP_FIND_LINKS, PIP_NO_INDEX, PIP_INDEX_URL)
are passed on to uv as --find-links, --no-index, --default-index unless the user set uv's own.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from bpconform_python.output import BuildpackError
from bpconform_python.pip_layer import tool_env

_TRUE = ("1", "true", "yes", "on")


def uv_index_args(environ: Mapping[str, str]) -> list[str]:
    """uv's equivalents of the pip index settings, where the user did not set uv's own.

    Flags rather than UV_* variables: uv 0.13 reads UV_FIND_LINKS but not a UV_NO_INDEX variable,
    and an offline build that is not told `--no-index` asks pypi.org about a stale lock.
    """
    args: list[str] = []
    if environ.get("PIP_NO_INDEX", "").strip().lower() in _TRUE and "UV_NO_INDEX" not in environ:
        args.append("--no-index")
    if environ.get("PIP_FIND_LINKS", "").strip() and "UV_FIND_LINKS" not in environ:
        for location in environ["PIP_FIND_LINKS"].split():
            args += ["--find-links", location]
    if environ.get("PIP_INDEX_URL", "").strip() and not ({"UV_DEFAULT_INDEX", "UV_INDEX_URL"} & set(environ)):
        args += ["--default-index", environ["PIP_INDEX_URL"].strip()]
    return args


def uv_sync_command(uv: Path, python: Path, environ: Mapping[str, str] | None = None) -> list[str]:
    return [
        str(uv),
        "sync",
        "--locked",
        "--no-default-groups",
        "--no-install-project",
        "--compile-bytecode",
        "--python",
        str(python),
        "--no-progress",
        *uv_index_args(environ or {}),
    ]


def uv_env(environ: Mapping[str, str], venv_dir: Path, uv_cache: Path) -> dict[str, str]:
    return tool_env(
        environ,
        UV_PROJECT_ENVIRONMENT=str(venv_dir),
        UV_CACHE_DIR=str(uv_cache),
        UV_PYTHON_DOWNLOADS="never",
        UV_NO_MANAGED_PYTHON="1",
        VIRTUAL_ENV=str(venv_dir),
    )


def poetry_sync_command(python: Path, poetry_layer: Path) -> list[str]:
    """Run the poetry script with the runtime's python, not `python -m` (which would put the app
    dir first on sys.path)."""
    return [
        str(python),
        str(poetry_layer / "bin" / "poetry"),
        "sync",
        "--only",
        "main",
        "--no-root",
        "--compile",
        "--no-ansi",
    ]


def poetry_env(environ: Mapping[str, str], venv_dir: Path, poetry_layer: Path, scratch: Path) -> dict[str, str]:
    return tool_env(
        environ,
        PYTHONUSERBASE=str(poetry_layer),
        VIRTUAL_ENV=str(venv_dir),
        POETRY_VIRTUALENVS_CREATE="false",
        POETRY_NO_INTERACTION="1",
        POETRY_CACHE_DIR=str(scratch / "cache"),
        POETRY_CONFIG_DIR=str(scratch / "config"),
        POETRY_DATA_DIR=str(scratch / "data"),
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )


def run_streaming(command: list[str], env: Mapping[str, str], cwd: Path) -> tuple[int, str]:
    """Run a tool with its output shown in the build log as it comes, and kept for the diagnosis."""
    lines = []
    with subprocess.Popen(
        command, env=dict(env), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
    return process.returncode, "".join(lines)


def is_stale_lock_output(output: str) -> bool:
    markers = ("needs to be updated, but `--locked`", "changed significantly since poetry.lock", "Run `poetry lock`")
    return any(marker in output for marker in markers)


def stale_lock_error(lock_file: str, tool: str, fix: str) -> BuildpackError:
    return BuildpackError(
        f"{lock_file} is out of date",
        f"{lock_file} does not match pyproject.toml (see {tool}'s output above): pyproject.toml was changed "
        f"after {lock_file} was last generated. Run `{fix}` and commit the updated {lock_file}.",
    )


def uv_sync(uv: Path, python: Path, app_dir: Path, venv_dir: Path, uv_cache: Path, environ: Mapping[str, str]) -> None:
    code, output = run_streaming(uv_sync_command(uv, python, environ), uv_env(environ, venv_dir, uv_cache), app_dir)
    if code == 0:
        return
    if is_stale_lock_output(output):
        raise stale_lock_error("uv.lock", "uv", "uv lock")
    raise BuildpackError(
        "Could not install dependencies",
        f"uv could not install the packages in uv.lock: see uv's output above (uv exited with code {code}). "
        "When building offline, the wheelhouse (PIP_FIND_LINKS) must hold every locked wheel.",
    )


def poetry_sync(python: Path, poetry_layer: Path, app_dir: Path, venv_dir: Path, environ: Mapping[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="bpconform-poetry-") as scratch:
        env = poetry_env(environ, venv_dir, poetry_layer, Path(scratch))
        code, output = run_streaming(poetry_sync_command(python, poetry_layer), env, app_dir)
    if code == 0:
        return
    if is_stale_lock_output(output):
        raise stale_lock_error("poetry.lock", "Poetry", "poetry lock")
    raise BuildpackError(
        "Could not install dependencies",
        f"Poetry could not install the packages in poetry.lock: see Poetry's output above (Poetry exited with "
        f"code {code}). When building offline, every locked package must be reachable without the network.",
    )
