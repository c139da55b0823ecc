"""The build steps of a lock-file app (uv or Poetry): the tool's layer, then a synced, cached venv.

For these apps the venv layer is build + launch + **cache**: both tools remove what the lock no
longer lists, so a cached venv cannot keep stale packages (a pip venv could, and is never cached).
It is reused only when every input its files depend on is unchanged: the package manager and its
version, the Python version, the distro and the arch; otherwise it is discarded with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpconform_python import dependencies, lockfile, runtime, tool_layers
from bpconform_python.envfiles import write_env
from bpconform_python.layers import (
    CacheDecision,
    LayerTypes,
    Subject,
    Unreadable,
    decide_cache,
    fresh_layer_dir,
    read_restored_metadata,
    write_layer_toml,
)
from bpconform_python.output import Log
from bpconform_python.package_manager import PackageManager

if TYPE_CHECKING:
    from bpconform_python.build import BuildInputs

LAYER_FORMAT = "1"
UV_LAYER = "uv"
UV_CACHE_LAYER = "uv-cache"
POETRY_LAYER = "poetry"
VENV_LAYER = "venv"

UV_TYPES = LayerTypes(build=True, launch=False, cache=True)
UV_CACHE_TYPES = LayerTypes(build=True, launch=False, cache=False)
POETRY_TYPES = LayerTypes(build=True, launch=False, cache=True)
LOCK_VENV_TYPES = LayerTypes(build=True, launch=True, cache=True)

VENV_SUBJECT = Subject("virtual environment", fresh_action="creating a new")


def _target(inputs: BuildInputs) -> dict[str, str]:
    target = inputs.target
    return {"distro-name": target.distro_name, "distro-version": target.distro_version, "arch": target.arch}


def tool_version(inputs: BuildInputs, manager: PackageManager) -> str:
    return inputs.config.uv_version if manager is PackageManager.UV else inputs.config.poetry_version


def venv_metadata(inputs: BuildInputs, manager: PackageManager, python_version: str) -> dict[str, str]:
    """The package manager first, so a switch of manager is the reason the log names."""
    return {
        "package-manager": manager.value,
        "package-manager-version": tool_version(inputs, manager),
        "python-version": python_version,
        **_target(inputs),
        "layer-format": LAYER_FORMAT,
    }


def decide_venv(
    previous: Mapping[str, Any] | Unreadable | None, current: Mapping[str, str], *, contents_present: bool
) -> CacheDecision:
    """Like any cached layer; a change of package manager is named alone (its version is implied)."""
    if isinstance(previous, Mapping):
        # A venv recorded without a package manager is a pip venv (whose metadata is python-version only).
        old = previous.get("package-manager", "pip")
        if old != current["package-manager"]:
            reason = f"The package manager has changed from {old} to {current['package-manager']}"
            return CacheDecision(False, f"Discarding cached virtual environment since: {reason}", (reason,))
    return decide_cache(VENV_SUBJECT, previous, current, contents_present=contents_present)


def venv_is_complete(venv_dir: Path) -> bool:
    return (venv_dir / "pyvenv.cfg").is_file() and (venv_dir / "bin" / "python").exists()


def install_uv_layer(inputs: BuildInputs, python_layer: Path, log: Log) -> Path:
    log.section("Installing uv")
    layers_dir, version = inputs.layers_dir, inputs.config.uv_version
    uv_dir = layers_dir / UV_LAYER
    metadata = {"uv-version": version, **_target(inputs), "layer-format": LAYER_FORMAT}
    verdict = decide_cache(
        Subject("uv", "uv-version"),
        read_restored_metadata(layers_dir, UV_LAYER),
        metadata,
        contents_present=tool_layers.uv_dir_is_complete(uv_dir),
    )
    log.line(verdict.message)
    if not verdict.reuse:
        fresh_layer_dir(layers_dir, UV_LAYER)
        tool_layers.install_uv(runtime.python_executable(python_layer), python_layer, uv_dir, version, inputs.env)
    write_env(uv_dir, "env.build", "UV_PYTHON_DOWNLOADS", "never", "override")
    write_env(uv_dir, "env.build", "UV_NO_MANAGED_PYTHON", "1", "override")
    write_layer_toml(layers_dir, UV_LAYER, UV_TYPES, metadata)
    return uv_dir


def install_poetry_layer(inputs: BuildInputs, python_version: str, python_layer: Path, log: Log) -> Path:
    log.section("Installing Poetry")
    layers_dir, version = inputs.layers_dir, inputs.config.poetry_version
    poetry_dir = layers_dir / POETRY_LAYER
    metadata = {
        "poetry-version": version,
        "python-version": python_version,
        **_target(inputs),
        "layer-format": LAYER_FORMAT,
    }
    verdict = decide_cache(
        Subject("Poetry", "poetry-version"),
        read_restored_metadata(layers_dir, POETRY_LAYER),
        metadata,
        contents_present=tool_layers.poetry_dir_is_complete(poetry_dir),
    )
    log.line(verdict.message)
    if not verdict.reuse:
        fresh_layer_dir(layers_dir, POETRY_LAYER)
        tool_layers.install_poetry(
            runtime.python_executable(python_layer), python_layer, poetry_dir, version, inputs.env
        )
    write_env(poetry_dir, "env.build", "PYTHONUSERBASE", str(poetry_dir), "override")
    write_layer_toml(layers_dir, POETRY_LAYER, POETRY_TYPES, metadata)
    return poetry_dir


def prepare_venv(
    inputs: BuildInputs, manager: PackageManager, python_version: str, python_layer: Path, log: Log
) -> tuple[Path, dict[str, str]]:
    """Reuse the cached venv or start a new one; returns (venv dir, its metadata)."""
    layers_dir = inputs.layers_dir
    venv_dir = layers_dir / VENV_LAYER
    metadata = venv_metadata(inputs, manager, python_version)
    verdict = decide_venv(
        read_restored_metadata(layers_dir, VENV_LAYER), metadata, contents_present=venv_is_complete(venv_dir)
    )
    log.line(verdict.message)
    if not verdict.reuse:
        fresh_layer_dir(layers_dir, VENV_LAYER)
        dependencies.create_venv(runtime.python_executable(python_layer), venv_dir, inputs.env)
    write_env(venv_dir, "env", "VIRTUAL_ENV", str(venv_dir), "override")
    write_env(venv_dir, "env.build", "PIP_PYTHON", str(venv_dir), "override")
    return venv_dir, metadata


def install_locked_dependencies(
    inputs: BuildInputs, manager: PackageManager, python_version: str, python_layer: Path, log: Log
) -> Path:
    """The tool's layer, then the venv synced from the lock; returns the venv dir."""
    if manager is PackageManager.UV:
        tool_dir = install_uv_layer(inputs, python_layer, log)
    else:
        tool_dir = install_poetry_layer(inputs, python_version, python_layer, log)
    log.section("Installing dependencies")
    venv_dir, metadata = prepare_venv(inputs, manager, python_version, python_layer, log)
    python = runtime.python_executable(python_layer)
    if manager is PackageManager.UV:
        uv_cache = fresh_layer_dir(inputs.layers_dir, UV_CACHE_LAYER)
        write_env(uv_cache, "env.build", "UV_CACHE_DIR", str(uv_cache), "default")
        write_layer_toml(inputs.layers_dir, UV_CACHE_LAYER, UV_CACHE_TYPES, {})
        write_env(venv_dir, "env.build", "UV_PROJECT_ENVIRONMENT", str(venv_dir), "override")
        log.line("Running uv sync --locked --no-default-groups")
        lockfile.uv_sync(tool_dir / "bin" / "uv", python, inputs.app_dir, venv_dir, uv_cache, inputs.env)
    else:
        log.line("Running poetry sync --only main")
        lockfile.poetry_sync(python, tool_dir, inputs.app_dir, venv_dir, inputs.env)
    dependencies.ensure_site_packages(venv_dir, python_version)
    dependencies.make_group_writable(venv_dir)
    write_layer_toml(inputs.layers_dir, VENV_LAYER, LOCK_VENV_TYPES, metadata)
    return venv_dir
