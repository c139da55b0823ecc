"""The build and launch environments, computed the way the lifecycle does, as pure functions.

Layers are read on the host but the values point into containers, so every layer is given as a
`LayerDir(host, container)` pair. Facts mirrored from the lifecycle (env/*.go, buildpack/build.go,
launch/launcher.go):

- Buildpacks start from an allow-listed environment: the POSIX path variables plus `HOME`,
  `HOSTNAME`, the proxy variables and `CNB_STACK_ID`; everything else is dropped.
- A layer's root dirs prepend to variables with ":" (`bin` -> PATH; `lib` -> LD_LIBRARY_PATH, and
  LIBRARY_PATH at build; `include` -> CPATH and `pkgconfig` -> PKG_CONFIG_PATH at build only).
  A root dir counts when the path exists.
- Env files are applied in file-name order; the suffix after the first "." is the action:
  none or `.override` sets, `.default` sets only when the variable is empty, `.prepend` and
  `.append` join with the content of `<NAME>.delim` or with NOTHING when there is no `.delim`;
  a file ending in a bare "." prepends with ":"; unknown suffixes (`.delim` itself) are ignored.
  Contents are used byte for byte: no trimming of the trailing newline.
- Build: earlier buildpacks in group order; within one, its build=true layers in ascending name
  order, each layer's root dirs, then `env/`, then `env.build/` (lifecycle >= 0.20.1). The user's
  platform env (`<platform>/env/<NAME>`, no suffixes) is applied LAST, just before the buildpack runs:
  path variables prepend with ":", others are overridden; skipped for `clear-env` buildpacks.
- Launch: start from the image env minus the CNB_* launcher inputs, /cnb/process and /cnb/lifecycle
  stripped from PATH; per buildpack in group order, the root dirs of all its layers first, then per
  layer `env/`, `env.launch/`, `env.launch/<process>/`.

Every step prepends, so later buildpacks end up first and, within a buildpack, the alphabetically
last layer first (`venv/bin` before `python/bin`).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from conformance.errors import PlatformError

POSIX_BUILD_ENV: dict[str, tuple[str, ...]] = {
    "bin": ("PATH",),
    "lib": ("LD_LIBRARY_PATH", "LIBRARY_PATH"),
    "include": ("CPATH",),
    "pkgconfig": ("PKG_CONFIG_PATH",),
}
POSIX_LAUNCH_ENV: dict[str, tuple[str, ...]] = {
    "bin": ("PATH",),
    "lib": ("LD_LIBRARY_PATH",),
}
POSIX_PATH_VARS = tuple(dict.fromkeys(v for names in POSIX_BUILD_ENV.values() for v in names))
"""Variables the platform env prepends to (with ":") instead of overriding."""

BUILD_ENV_INCLUDE_LIST = (
    "CNB_STACK_ID",
    "HOSTNAME",
    "HOME",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
)
ALLOWED_BUILD_ENV = POSIX_PATH_VARS + BUILD_ENV_INCLUDE_LIST
"""Variables of the platform's own environment that reach detect and build (case-sensitive)."""

LAUNCH_ENV_EXCLUDE_LIST = (
    "CNB_LAYERS_DIR",
    "CNB_APP_DIR",
    "CNB_PROCESS_TYPE",
    "CNB_PLATFORM_API",
    "CNB_DEPRECATION_MODE",
)
PROCESS_DIR = "/cnb/process"
LIFECYCLE_DIR = "/cnb/lifecycle"

ORDERS = ("sorted", "lifecycle-1393", "random")
"""How build-time layer env of one buildpack is ordered; see `order_layers`."""


class LayerDir(NamedTuple):
    """A layer directory: where the platform reads it and where buildpacks/processes see it."""

    host: Path
    container: str

    @property
    def name(self) -> str:
        return Path(self.host).name


LayerDirLike = LayerDir | tuple[Path, str]


def _as_layer_dir(layer: LayerDirLike) -> LayerDir:
    return layer if isinstance(layer, LayerDir) else LayerDir(Path(layer[0]), str(layer[1]))


# --- primitive operations ---------------------------------------------------------------------


def _prefixed(value: str, sep: str) -> str:
    """`sep + value`, or nothing when value is empty: no dangling separator on a fresh variable."""
    return sep + value if value else ""


def _suffixed(value: str, sep: str) -> str:
    return value + sep if value else ""


def _read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="surrogateescape")


def env_files(env_dir: Path) -> list[tuple[str, str]]:
    """(file name, content) of the regular files of an env dir, in name order; missing dir: none."""
    env_dir = Path(env_dir)
    if not env_dir.is_dir():
        return []
    entries = []
    for entry in sorted(os.listdir(env_dir)):
        path = env_dir / entry
        if path.is_dir():  # follows symlinks, as the lifecycle does
            continue
        try:
            entries.append((entry, _read_text(path)))
        except OSError as exc:
            raise PlatformError(
                f"cannot read env file {path}: {exc.strerror}",
                "env files must be readable regular files (a dangling symlink is not)",
            ) from None
    return entries


def add_root_dir(env: dict[str, str], layer: LayerDirLike, root_dir_map: Mapping[str, Sequence[str]]) -> None:
    layer = _as_layer_dir(layer)
    for child, names in root_dir_map.items():
        if not (Path(layer.host) / child).exists():
            continue
        container_child = f"{layer.container.rstrip('/')}/{child}"
        for name in names:
            env[name] = container_child + _prefixed(env.get(name, ""), ":")


def add_env_dir(env: dict[str, str], env_dir: Path, default_action: str = "override") -> None:
    """Apply one `env*/` directory of a layer to `env` in place."""
    env_dir = Path(env_dir)
    for file_name, value in env_files(env_dir):
        name, dot, suffix = file_name.partition(".")
        action = suffix if dot else default_action
        if action == "override":
            env[name] = value
        elif action == "default":
            if not env.get(name):
                env[name] = value
        elif action == "prepend":
            env[name] = value + _prefixed(env.get(name, ""), _delim(env_dir, name, ""))
        elif action == "append":
            env[name] = _suffixed(env.get(name, ""), _delim(env_dir, name, "")) + value
        elif action == "":
            env[name] = value + _prefixed(env.get(name, ""), _delim(env_dir, name, ":"))
        # any other suffix (".delim" included) is not an action


def _delim(env_dir: Path, name: str, default: str) -> str:
    path = env_dir / f"{name}.delim"
    try:
        return _read_text(path)
    except OSError:
        return default


# --- platform env ------------------------------------------------------------------------------


def read_platform_env(platform_dir: Path) -> dict[str, str]:
    """User variables from `<platform>/env/`: file name = variable name (no suffixes), content as-is.

    Accepts the platform dir or its `env/` subdirectory.
    """
    platform_dir = Path(platform_dir)
    env_dir = platform_dir if platform_dir.name == "env" else platform_dir / "env"
    return dict(env_files(env_dir))


def apply_platform_env(
    env: dict[str, str], platform_env: Mapping[str, str], path_vars: Iterable[str] = POSIX_PATH_VARS
) -> None:
    path_vars = set(path_vars)
    for name, value in platform_env.items():
        if name in path_vars:
            env[name] = value + _prefixed(env.get(name, ""), ":")
        else:
            env[name] = value


# --- build -------------------------------------------------------------------------------------


def filter_build_base(base: Mapping[str, str]) -> dict[str, str]:
    """The part of the platform's environment that buildpacks may see."""
    return {name: value for name, value in base.items() if name in ALLOWED_BUILD_ENV}


def order_layers(layers: Iterable[LayerDirLike], order: str = "sorted", seed: int = 0) -> list[LayerDir]:
    """The order one buildpack's build layers are applied in, for the buildpacks after it.

    - "sorted": ascending layer name, the lifecycle since 0.20.1 (buildpacks/lifecycle#1394).
    - "lifecycle-1393": descending layer name. Before 0.20.1 the lifecycle walked a Go map of the
      created layers (buildpacks/lifecycle#1393), so the order was random from build to build. We
      emulate the harmful outcome deterministically: with layers `python` and `venv`, `venv` is
      applied first and `python` last, so a later buildpack sees `python/bin` BEFORE `venv/bin`
      on PATH (and the venv's python is shadowed) - exactly the failure the issue reports.
    - "random": a seeded shuffle, to explore other orders the old lifecycle could produce.
    """
    dirs = sorted((_as_layer_dir(layer) for layer in layers), key=lambda d: d.name)
    if order == "sorted":
        return dirs
    if order == "lifecycle-1393":
        return dirs[::-1]
    if order == "random":
        random.Random(seed).shuffle(dirs)
        return dirs
    raise ValueError(f"unknown layer order {order!r}; choose one of {', '.join(ORDERS)}")


def add_build_layers(env: dict[str, str], layers: Iterable[LayerDirLike], order: str = "sorted", seed: int = 0) -> None:
    """What the lifecycle does after a buildpack's build: fold its build=true layers into the env."""
    for layer in order_layers(layers, order, seed):
        add_root_dir(env, layer, POSIX_BUILD_ENV)
        add_env_dir(env, Path(layer.host) / "env")
        add_env_dir(env, Path(layer.host) / "env.build")


def build_env(
    base: Mapping[str, str],
    platform_env: Mapping[str, str] | None,
    earlier_layers: Sequence[Iterable[LayerDirLike]],
    *,
    clear_env: bool = False,
    order: str = "sorted",
    seed: int = 0,
    build_config_env_dir: Path | None = None,
) -> dict[str, str]:
    """The environment a buildpack's detect or build sees (before the CNB_* inputs are added).

    `earlier_layers` holds, per earlier buildpack in group order, its build=true layer dirs (any
    order: they are sorted here). For detect, pass no layers. `build_config_env_dir` is the
    operator's `<build-config>/env` (applied last, as defaults).
    """
    env = filter_build_base(base)
    for index, layers in enumerate(earlier_layers):
        add_build_layers(env, layers, order, seed + index)
    if platform_env and not clear_env:
        apply_platform_env(env, platform_env)
    if build_config_env_dir is not None:
        add_env_dir(env, build_config_env_dir, default_action="default")
    return env


# --- launch ------------------------------------------------------------------------------------


def launch_base(base: Mapping[str, str]) -> dict[str, str]:
    """The image env as the launcher starts from it: launcher inputs removed, its dirs off PATH."""
    env = {name: value for name, value in base.items() if name not in LAUNCH_ENV_EXCLUDE_LIST}
    if "PATH" in env:
        parts = [p for p in env["PATH"].split(":") if p not in (PROCESS_DIR, LIFECYCLE_DIR)]
        env["PATH"] = ":".join(parts)
    return env


def launch_env(
    base: Mapping[str, str],
    buildpack_layers: Sequence[Iterable[LayerDirLike]],
    process_type: str | None = None,
) -> dict[str, str]:
    """A model of the environment the launcher gives a process (exec.d and profile scripts aside).

    `buildpack_layers` holds, per buildpack in group order, the layer dirs present in the image
    (its launch layers).
    """
    env = launch_base(base)
    for layers in buildpack_layers:
        dirs = order_layers(layers)
        for layer in dirs:
            add_root_dir(env, layer, POSIX_LAUNCH_ENV)
        for layer in dirs:
            host = Path(layer.host)
            add_env_dir(env, host / "env")
            add_env_dir(env, host / "env.launch")
            if process_type:
                add_env_dir(env, host / "env.launch" / process_type)
    return env
