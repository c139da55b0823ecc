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

A failed `uv sync --locked` is not always a stale lock: uv also refuses a lock whose packages come
from a registry the build does not use (a lock made against PyPI, synced offline from the
wheelhouse), and says the same "needs to be updated" words. So before blaming pyproject.toml the
buildpack compares the lock's `source.registry` values with the indexes/find-links of this build.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
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


PYPI_SIMPLE = "https://pypi.org/simple"
WHEELHOUSE_HINT = "/bpconform/wheelhouse"


def _true(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() in _TRUE


def normalize_location(location: str) -> str:
    """One spelling per registry: no `file://`, no trailing slash (uv records a find-links dir bare)."""
    text = location.strip()
    if text.startswith("file://"):
        text = text[len("file://") :]
    return text.rstrip("/") or text


def _read_toml(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def uv_lock_registries(lock: Path) -> list[str]:
    """The distinct `source = { registry = ... }` values of uv.lock's packages, in lock order."""
    found: list[str] = []
    packages = _read_toml(lock).get("package", [])
    for package in packages if isinstance(packages, list) else []:
        source = package.get("source") if isinstance(package, dict) else None
        registry = source.get("registry") if isinstance(source, dict) else None
        if isinstance(registry, str) and registry not in found:
            found.append(registry)
    return found


def _split(value: str) -> list[str]:
    return [part for part in value.replace(",", " ").split() if part]


def uv_build_registries(environ: Mapping[str, str], pyproject: Path | None = None) -> list[str]:
    """The indexes and find-links locations `uv sync` can use in this build.

    uv's own variables win over pip's (as in `uv_index_args`); without `--no-index` the default
    index (PyPI unless overridden) and any `[[tool.uv.index]]` of pyproject.toml are reachable too.
    """
    locations = _split(environ.get("UV_FIND_LINKS", "")) or _split(environ.get("PIP_FIND_LINKS", ""))
    no_index = _true(environ, "UV_NO_INDEX") or ("UV_NO_INDEX" not in environ and _true(environ, "PIP_NO_INDEX"))
    if not no_index:
        default = (
            environ.get("UV_DEFAULT_INDEX") or environ.get("UV_INDEX_URL") or environ.get("PIP_INDEX_URL") or ""
        ).strip() or PYPI_SIMPLE
        locations.append(default)
        locations += _split(environ.get("UV_INDEX", "")) + _split(environ.get("PIP_EXTRA_INDEX_URL", ""))
        tool = _read_toml(pyproject).get("tool", {}) if pyproject is not None else {}
        indexes = tool.get("uv", {}).get("index", []) if isinstance(tool, dict) else []
        for index in indexes if isinstance(indexes, list) else []:
            if isinstance(index, dict) and isinstance(index.get("url"), str):
                locations.append(index["url"])
    return locations


def unreachable_registries(lock_registries: list[str], build_registries: list[str]) -> list[str]:
    reachable = {normalize_location(location) for location in build_registries}
    return [registry for registry in lock_registries if normalize_location(registry) not in reachable]


def _listing(names: list[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def registry_mismatch_error(lock_file: str, unreachable: list[str], build_registries: list[str]) -> BuildpackError:
    """The lock is fine but names a registry this build cannot use: say which, and the two ways out."""
    plural = len(unreachable) > 1
    local = [location for location in build_registries if not location.startswith(("http://", "https://"))]
    wheelhouse = normalize_location(local[0]) if local else WHEELHOUSE_HINT
    has = (
        f"this build uses {_listing(build_registries)}"
        if build_registries
        else "this build has no index and no find-links location"
    )
    return BuildpackError(
        f"{lock_file} was locked against another package index",
        f"{lock_file} takes packages from the {'registries' if plural else 'registry'} {_listing(unreachable)} "
        f"(its `source.registry`), but {has}; uv will not sync a lock from a registry it is not given, so "
        f"pyproject.toml need not have changed. Either build with network access to "
        f"{'those registries' if plural else 'that registry'} (e.g. without --offline), or lock against the "
        f"wheelhouse at its in-container path: `uv lock --no-index --find-links {wheelhouse}` with the "
        f"wheelhouse mounted there, and commit the updated {lock_file}.",
    )


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
    if code != 0:
        raise uv_failure(app_dir, environ, output, code)


def uv_failure(app_dir: Path, environ: Mapping[str, str], output: str, code: int) -> BuildpackError:
    """Why `uv sync` failed: a lock from another registry first (uv words it like a stale lock)."""
    reachable = uv_build_registries(environ, app_dir / "pyproject.toml")
    unreachable = unreachable_registries(uv_lock_registries(app_dir / "uv.lock"), reachable)
    if unreachable:
        return registry_mismatch_error("uv.lock", unreachable, reachable)
    if is_stale_lock_output(output):
        return stale_lock_error("uv.lock", "uv", "uv lock")
    return BuildpackError(
        "Could not install dependencies",
        f"uv could not install the packages in uv.lock: see uv's output above (uv exited with code {code}). "
        "When building offline, the wheelhouse (PIP_FIND_LINKS) must hold every locked wheel.",
    )


def poetry_sync(python: Path, poetry_layer: Path, app_dir: Path, venv_dir: Path, environ: Mapping[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="bpconform-poetry-") as scratch:
        env = poetry_env(environ, venv_dir, poetry_layer, Path(scratch))
        code, output = run_streaming(poetry_sync_command(python, poetry_layer), env, app_dir)
    if code != 0:
        raise poetry_failure(environ, output, code)


def poetry_failure(environ: Mapping[str, str], output: str, code: int) -> BuildpackError:
    """Why `poetry sync` failed. Unlike uv, Poetry 2.5.1 does not call a PyPI lock stale offline: it
    says "All attempts to connect to pypi.org failed" (measured), so an offline build says what to do."""
    if is_stale_lock_output(output):
        return stale_lock_error("poetry.lock", "Poetry", "poetry lock")
    detail = (
        f"Poetry could not install the packages in poetry.lock: see Poetry's output above (Poetry exited with "
        f"code {code})."
    )
    if _true(environ, "PIP_NO_INDEX") and "All attempts to connect to" in output:
        detail += (
            " This build has no network, and Poetry fetches the files of a lock made against PyPI (or any "
            "index) from that index: it cannot use the wheelhouse. Build with network access (e.g. without "
            "--offline), or make each dependency the wheel file itself (`six @ file:///bpconform/wheelhouse/"
            "six-1.17.0-py2.py3-none-any.whl`) and run `poetry lock` with the wheelhouse mounted there."
        )
    else:
        detail += " When building offline, every locked package must be reachable without the network."
    return BuildpackError("Could not install dependencies", detail)
