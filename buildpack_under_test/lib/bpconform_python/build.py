"""The build phase, section by section; each step's logic lives in its own module."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bpconform_python import (
    dependencies,
    detect,
    lock_steps,
    package_manager,
    pip_layer,
    processes,
    pyproject,
    runtime,
    sbom,
    tomlwriter,
    versions,
)
from bpconform_python.context import (
    BuildpackConfig,
    Target,
    effective_env,
    read_platform_env,
    target_from_env,
)
from bpconform_python.envfiles import write_env
from bpconform_python.layers import (
    LayerTypes,
    Subject,
    decide_cache,
    fresh_layer_dir,
    read_restored_metadata,
    write_layer_toml,
)
from bpconform_python.output import Log

# Bump when the content layout of a layer changes, so old caches are discarded with a clear reason.
LAYER_FORMAT = "1"

PYTHON_LAYER = "python"
PIP_LAYER = "pip"
PIP_CACHE_LAYER = "pip-cache"
VENV_LAYER = "venv"

PYTHON_TYPES = LayerTypes(build=True, launch=True, cache=True)
PIP_TYPES = LayerTypes(build=True, launch=False, cache=True)
PIP_CACHE_TYPES = LayerTypes(build=False, launch=False, cache=True)
VENV_TYPES = LayerTypes(build=True, launch=True, cache=False)

VENV_NEVER_CACHED = "Creating virtual environment (never cached: pip does not remove packages absent from requirements)"


@dataclass(frozen=True)
class BuildInputs:
    app_dir: Path
    layers_dir: Path
    platform_dir: Path
    config: BuildpackConfig
    target: Target
    env: dict[str, str]
    # Only the user's `<platform>/env/` variables (for the refused-variables check).
    platform_env: dict[str, str] = field(default_factory=dict)


def inputs_from(argv: list[str], environ: Mapping[str, str], config: BuildpackConfig) -> BuildInputs:
    layers_dir = Path(argv[0]) if argv else Path(environ["CNB_LAYERS_DIR"])
    platform_dir = Path(argv[1]) if len(argv) > 1 else Path(environ.get("CNB_PLATFORM_DIR", "/platform"))
    platform_env = read_platform_env(platform_dir)
    env = effective_env(environ, platform_env)
    return BuildInputs(Path.cwd(), layers_dir, platform_dir, config, target_from_env(environ), env, platform_env)


def target_metadata(target: Target) -> dict[str, str]:
    return {"distro-name": target.distro_name, "distro-version": target.distro_version, "arch": target.arch}


def python_layer_metadata(version: versions.Version, target: Target, sha256: str) -> dict[str, str]:
    """Everything the python layer's bytes depend on, and deliberately NOT the pip version."""
    return {
        "python-version": str(version),
        **target_metadata(target),
        "runtime-sha256": sha256,
        "layer-format": LAYER_FORMAT,
    }


def pip_layer_metadata(pip_version: str, version: versions.Version, target: Target) -> dict[str, str]:
    return {
        "pip-version": pip_version,
        "python-version": str(version),
        **target_metadata(target),
        "layer-format": LAYER_FORMAT,
    }


def pip_cache_metadata(version: versions.Version, target: Target) -> dict[str, str]:
    """Wheels built for another Python or distro would only take up space, so those inputs count."""
    return {"python-version": str(version), **target_metadata(target), "layer-format": LAYER_FORMAT}


def choose_python(inputs: BuildInputs, log: Log) -> runtime.Runtime:
    log.section("Determining Python version")
    url = runtime.manifest_url(inputs.config.runtime_manifest, inputs.env)
    available = runtime.runtimes_for(inputs.target, runtime.load_manifest(url, inputs.env))
    where = inputs.target.describe()
    version_file = inputs.app_dir / versions.VERSION_FILE
    if version_file.is_file():
        text = version_file.read_text(encoding="utf-8", errors="replace")
        requested = versions.read_version_file(text, available, where)
    else:
        requested = versions.parse_request(
            inputs.config.default_python_version, "buildpack.toml (default-python-version)", available, where
        )
    chosen = versions.resolve(requested, available, where)
    if requested.origin == versions.VERSION_FILE:
        log.line(f"Using Python {chosen} (requested '{requested.text}' in {versions.VERSION_FILE})")
    else:
        log.line(f"No {versions.VERSION_FILE} file: using the default Python {requested.text} ({chosen})")
    requires_python = pyproject.read_requires_python(inputs.app_dir / package_manager.PYPROJECT)
    if requires_python is not None:
        pyproject.check_requires_python(requires_python, chosen, requested.origin)
        log.line(f"Python {chosen} is allowed by requires-python '{requires_python}' in pyproject.toml")
    return available[chosen]


def install_python(inputs: BuildInputs, chosen: runtime.Runtime, log: Log) -> Path:
    log.section("Installing Python")
    layer = inputs.layers_dir / PYTHON_LAYER
    metadata = python_layer_metadata(chosen.version, inputs.target, chosen.sha256)
    decision = decide_cache(
        Subject("Python", "python-version"),
        read_restored_metadata(inputs.layers_dir, PYTHON_LAYER),
        metadata,
        contents_present=runtime.runtime_dir_is_complete(layer),
    )
    log.line(decision.message)
    if not decision.reuse:
        fresh_layer_dir(inputs.layers_dir, PYTHON_LAYER)
        log.line(f"Downloading Python {chosen.version} from {chosen.url} (sha256 {chosen.sha256[:12]}...)")
        runtime.install_runtime(chosen, layer, inputs.env)
    write_env(layer, "env", "LANG", "C.UTF-8", "default")
    write_env(layer, "env", "PYTHONUNBUFFERED", "1", "default")
    write_env(layer, "env.build", "SOURCE_DATE_EPOCH", pip_layer.SOURCE_DATE_EPOCH, "default")
    write_layer_toml(inputs.layers_dir, PYTHON_LAYER, PYTHON_TYPES, metadata)
    return layer


def install_pip(inputs: BuildInputs, chosen: runtime.Runtime, python_layer: Path, log: Log) -> tuple[Path, Path]:
    log.section("Installing pip")
    layers_dir = inputs.layers_dir
    pip_version = inputs.config.pip_version
    pip_dir, cache_dir = layers_dir / PIP_LAYER, layers_dir / PIP_CACHE_LAYER
    pip_metadata = pip_layer_metadata(pip_version, chosen.version, inputs.target)
    cache_metadata = pip_cache_metadata(chosen.version, inputs.target)
    pip_decision = decide_cache(
        Subject("pip", "pip-version"),
        read_restored_metadata(layers_dir, PIP_LAYER),
        pip_metadata,
        contents_present=pip_layer.pip_dir_is_complete(pip_dir),
    )
    cache_decision = decide_cache(
        Subject("pip cache", fresh_action="starting an empty"),
        read_restored_metadata(layers_dir, PIP_CACHE_LAYER),
        cache_metadata,
        contents_present=cache_dir.is_dir(),
    )
    log.line(pip_decision.message)
    log.line(cache_decision.message)
    if not cache_decision.reuse:
        fresh_layer_dir(layers_dir, PIP_CACHE_LAYER)
    write_layer_toml(layers_dir, PIP_CACHE_LAYER, PIP_CACHE_TYPES, cache_metadata)
    if not pip_decision.reuse:
        fresh_layer_dir(layers_dir, PIP_LAYER)
        pip_layer.install_pip(
            runtime.python_executable(python_layer), python_layer, pip_dir, cache_dir, pip_version, inputs.env
        )
    write_env(pip_dir, "env.build", "PYTHONUSERBASE", str(pip_dir), "override")
    write_env(pip_dir, "env.build", "PIP_CACHE_DIR", str(cache_dir), "default")
    write_env(pip_dir, "env.build", "PIP_DISABLE_PIP_VERSION_CHECK", "1", "default")
    write_layer_toml(layers_dir, PIP_LAYER, PIP_TYPES, pip_metadata)
    return pip_dir, cache_dir


def install_dependencies(
    inputs: BuildInputs, chosen: runtime.Runtime, python_layer: Path, pip_dir: Path, cache_dir: Path, log: Log
) -> None:
    log.section("Installing dependencies")
    log.line(VENV_NEVER_CACHED)
    venv_dir = fresh_layer_dir(inputs.layers_dir, VENV_LAYER)
    python = runtime.python_executable(python_layer)
    dependencies.create_venv(python, venv_dir, inputs.env)
    write_env(venv_dir, "env", "VIRTUAL_ENV", str(venv_dir), "override")
    write_env(venv_dir, "env.build", "PIP_PYTHON", str(venv_dir), "override")
    requirements = inputs.app_dir / dependencies.REQUIREMENTS
    if requirements.is_file():
        log.line(f"Running pip install -r {dependencies.REQUIREMENTS}")
        dependencies.install_requirements(python, inputs.app_dir, pip_dir, cache_dir, venv_dir, inputs.env)
    else:
        log.line(f"No {dependencies.REQUIREMENTS}: the virtual environment has no packages")
    dependencies.make_group_writable(venv_dir)
    write_layer_toml(inputs.layers_dir, VENV_LAYER, VENV_TYPES, {"python-version": str(chosen.version)})


def configure_processes(inputs: BuildInputs, log: Log) -> None:
    log.section("Setting launch processes")
    launch_path = inputs.layers_dir / "launch.toml"
    found = processes.processes_for_app(inputs.app_dir)
    if not found:
        launch_path.unlink(missing_ok=True)
        log.line("No Procfile, app.py or main.py: no default process (the platform must be told what to run)")
        return
    for line in processes.describe(found):
        log.line(line)
    launch_path.write_text(tomlwriter.dumps(processes.launch_toml(found)), encoding="utf-8")


def select_package_manager(inputs: BuildInputs, log: Log) -> package_manager.PackageManager:
    """The checks that need no download come first, so a misconfigured app fails in a second."""
    package_manager.check_user_env(inputs.platform_env)
    versions.refuse_runtime_txt(inputs.app_dir)
    selection = package_manager.select_package_manager(detect.root_file_names(inputs.app_dir))
    if selection.file is not None:
        log.line(f"Installing dependencies with {selection.manager.value} (found {selection.file})")
    return selection.manager


def log_pip_venv_switch(inputs: BuildInputs, log: Log) -> None:
    """A cached lock-file venv from an earlier build is dropped for pip: say why."""
    previous = read_restored_metadata(inputs.layers_dir, VENV_LAYER)
    old = previous.get("package-manager") if isinstance(previous, dict) else None
    if old not in (None, "pip"):
        log.line(f"Discarding cached virtual environment since: The package manager has changed from {old} to pip")


def run_build(inputs: BuildInputs, log: Log) -> None:
    log.line(f"{inputs.config.id} {inputs.config.version} on {inputs.target.describe()}")
    manager = select_package_manager(inputs, log)
    chosen = choose_python(inputs, log)
    python_layer = install_python(inputs, chosen, log)
    sbom.write_sbom(inputs.layers_dir, PYTHON_LAYER, sbom.python_sbom(str(chosen.version)))
    if manager is package_manager.PackageManager.PIP:
        pip_dir, cache_dir = install_pip(inputs, chosen, python_layer, log)
        log_pip_venv_switch(inputs, log)
        install_dependencies(inputs, chosen, python_layer, pip_dir, cache_dir, log)
    else:
        lock_steps.install_locked_dependencies(inputs, manager, str(chosen.version), python_layer, log)
    sbom.write_sbom(inputs.layers_dir, VENV_LAYER, sbom.venv_sbom(inputs.layers_dir / VENV_LAYER))
    configure_processes(inputs, log)
    log.line("")
