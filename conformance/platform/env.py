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
- Build: earlier buildpacks in group order; within one, its build=true layers in the byte order of
  their `<name>.toml` file names (`tool-ext.toml` before `tool.toml`), each layer's root dirs,
  then `env/`, then `env.build/` (lifecycle >= 0.20.1). The user's platform env
  (`<platform>/env/<NAME>`, no suffixes) is applied LAST, just before the buildpack runs:
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
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from conformance.errors import PlatformError
from conformance.platform import safefs
from conformance.platform.spec import PLATFORM_DIR

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


MAX_VALUE_BYTES = 128 * 1024 - 2
"""The longest value one variable can have: the kernel limits each `NAME=value` string given to
exec to 128 KiB (MAX_ARG_STRLEN) with its NUL, and the platform passes the env through exec."""


class LayerDir(NamedTuple):
    """A layer directory: where the platform reads it and where buildpacks/processes see it.

    `buildpack` (its id) names who wrote it in errors. The layer is read beneath the layers root
    (`host`'s grandparent) without following links.
    """

    host: Path
    container: str
    buildpack: str = ""

    @property
    def name(self) -> str:
        return Path(self.host).name


LayerDirLike = LayerDir | tuple[Path, str]


def _as_layer_dir(layer: LayerDirLike) -> LayerDir:
    if isinstance(layer, LayerDir):
        return layer
    return LayerDir(Path(layer[0]), str(layer[1]), *(str(part) for part in layer[2:3]))


# --- primitive operations ---------------------------------------------------------------------


def _prefixed(value: str, sep: str) -> str:
    """`sep + value`, or nothing when value is empty: no dangling separator on a fresh variable."""
    return sep + value if value else ""


def _suffixed(value: str, sep: str) -> str:
    return value + sep if value else ""


class EnvSource(NamedTuple):
    """Where an env dir is read (beneath `root`, never following links) and how errors name it."""

    root: Path
    rel: str
    shown: str  # e.g. the in-container path /layers/fixture_a/tools/env.build
    who: str  # e.g. "buildpack fixture/a"; empty when not known


def _source(env_dir: Path, source: EnvSource | None) -> EnvSource:
    if source is not None:
        return source
    env_dir = Path(env_dir)
    return EnvSource(env_dir.parent, env_dir.name, str(env_dir), "")


def _blame(source: EnvSource) -> str:
    return f" (written by {source.who})" if source.who else ""


def check_value(name: str, value: str, file_shown: str, who: str = "") -> None:
    """A value exec can pass: no NUL byte, at most MAX_VALUE_BYTES; else an error naming the file
    and who wrote it, instead of the next buildpack failing with `exec: invalid argument`."""
    by = f" written by {who}" if who else ""
    if "\0" in value:
        raise PlatformError(
            f"env file {file_shown}{by} sets {name} to a value containing a NUL byte",
            "an environment variable cannot hold NUL bytes: fix the buildpack that writes this file",
            52,
        )
    size = len(value.encode("utf-8", "surrogateescape"))
    if size + len(name) > MAX_VALUE_BYTES:
        raise PlatformError(
            f"env file {file_shown}{by} makes {name} {size} bytes long, more than the"
            f" {MAX_VALUE_BYTES - len(name)} bytes a variable can hold (the kernel's exec limit)",
            "write large data to a file in the layer and put its path in the variable",
            52,
        )


def env_files(env_dir: Path, source: EnvSource | None = None) -> list[tuple[str, str]]:
    """(file name, content) of the regular files of an env dir, in name order; missing dir: none.

    Read beneath `source.root` without following links: an env dir or file that is a symbolic
    link is an error (the lifecycle reads env files inside the build container, where following a
    link is harmless; on the host it would read a host file). Each value is checked with
    `check_value`.
    """
    src = _source(env_dir, source)
    listing = safefs.list_dir(src.root, src.rel, shown=f"env dir {src.shown}{_blame(src)}")
    if listing is None:
        return []
    entries = []
    for entry, mode in listing:
        shown = f"{src.shown}/{entry}"
        if stat.S_ISDIR(mode):  # env.launch/<process>/ and the like
            continue
        if stat.S_ISLNK(mode):
            raise safefs.UnsafePath(
                f"cannot read env file {shown}{_blame(src)}: it is a symbolic link, and the platform does not follow"
                " links a buildpack made",
                "env files must be regular files: write the value into the file itself",
            )
        try:
            data = safefs.read_file(src.root, f"{src.rel}/{entry}", shown=f"env file {shown}{_blame(src)}")
        except OSError as exc:
            raise PlatformError(
                f"cannot read env file {shown}{_blame(src)}: {exc.strerror}",
                "env files must be readable regular files",
            ) from None
        if data is None:  # removed while we read the dir
            continue
        value = data.decode("utf-8", errors="surrogateescape")
        if not entry.endswith(".delim"):
            check_value(entry.partition(".")[0], value, shown, src.who)
        entries.append((entry, value))
    return entries


def _layer_source(layer: LayerDir, sub: str) -> EnvSource:
    host = Path(layer.host)
    who = f"buildpack {layer.buildpack}" if layer.buildpack else ""
    return EnvSource(host.parent.parent, f"{host.parent.name}/{host.name}/{sub}", f"{layer.container}/{sub}", who)


def _has_root_dir(layer: LayerDir, child: str) -> bool:
    """Whether `<layer>/<child>` exists, by lstat beneath the layers root. The lifecycle stats it
    inside the container; a link there is taken to lead to a directory (following it on the host
    could tell about host paths), so such a layer still gets its PATH entry."""
    host = Path(layer.host)
    st = safefs.lstat(host.parent.parent, f"{host.parent.name}/{host.name}/{child}", shown=f"{layer.container}/{child}")
    return st is not None and (stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode))


def add_root_dir(env: dict[str, str], layer: LayerDirLike, root_dir_map: Mapping[str, Sequence[str]]) -> None:
    layer = _as_layer_dir(layer)
    for child, names in root_dir_map.items():
        if not _has_root_dir(layer, child):
            continue
        container_child = f"{layer.container.rstrip('/')}/{child}"
        for name in names:
            env[name] = container_child + _prefixed(env.get(name, ""), ":")


def add_env_dir(
    env: dict[str, str], env_dir: Path, default_action: str = "override", source: EnvSource | None = None
) -> None:
    """Apply one `env*/` directory of a layer to `env` in place."""
    src = _source(env_dir, source)
    files = env_files(env_dir, src)
    delims = dict(files)
    for file_name, value in files:
        name, dot, suffix = file_name.partition(".")
        action = suffix if dot else default_action
        before = env.get(name)
        if action == "override":
            env[name] = value
        elif action == "default":
            if not env.get(name):
                env[name] = value
        elif action == "prepend":
            env[name] = value + _prefixed(env.get(name, ""), delims.get(f"{name}.delim", ""))
        elif action == "append":
            env[name] = _suffixed(env.get(name, ""), delims.get(f"{name}.delim", "")) + value
        elif action == "":
            env[name] = value + _prefixed(env.get(name, ""), delims.get(f"{name}.delim", ":"))
        # any other suffix (".delim" included) is not an action
        if env.get(name) is not before and name in env:
            check_value(name, env[name], f"{src.shown}/{file_name}", src.who)


# --- platform env ------------------------------------------------------------------------------


def read_platform_env(platform_dir: Path) -> dict[str, str]:
    """User variables from `<platform>/env/`: file name = variable name (no suffixes), content as-is.

    Accepts the platform dir or its `env/` subdirectory.
    """
    platform_dir = Path(platform_dir)
    env_dir = platform_dir if platform_dir.name == "env" else platform_dir / "env"
    source = EnvSource(env_dir.parent.parent, f"{env_dir.parent.name}/env", f"{PLATFORM_DIR}/env", "")
    return dict(env_files(env_dir, source))


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


def _toml_file_key(layer: LayerDir) -> bytes:
    """The byte order of a layer's `<name>.toml`, as `os.ReadDir` lists it (build.go:187)."""
    return (layer.name + ".toml").encode("utf-8", "surrogateescape")


def order_layers(layers: Iterable[LayerDirLike], order: str = "sorted", seed: int = 0) -> list[LayerDir]:
    """The order one buildpack's build layers are applied in, for the buildpacks after it.

    - "sorted": the lifecycle since 0.20.1 (buildpacks/lifecycle#1394): `eachLayer`
      (buildpack/build.go:186-203) walks the `<layer>.toml` *files* in `os.ReadDir` order, so the
      key is the bytes of `<name>.toml`: `tool-ext.toml` sorts before `tool.toml` ('-' < '.'), so
      `tool-ext` is applied first and `tool` ends up first on PATH (the launcher and the exporter
      order by the bare name instead: see launch_env and export.py).
    - "lifecycle-1393": descending layer name. Before 0.20.1 the lifecycle walked a Go map of the
      created layers (buildpacks/lifecycle#1393), so the order was random from build to build. We
      emulate the harmful outcome deterministically: with layers `python` and `venv`, `venv` is
      applied first and `python` last, so a later buildpack sees `python/bin` BEFORE `venv/bin`
      on PATH (and the venv's python is shadowed) - exactly the failure the issue reports.
    - "random": a seeded shuffle, to explore other orders the old lifecycle could produce.
    """
    dirs = sorted((_as_layer_dir(layer) for layer in layers), key=_toml_file_key)
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
        add_env_dir(env, Path(layer.host) / "env", source=_layer_source(layer, "env"))
        add_env_dir(env, Path(layer.host) / "env.build", source=_layer_source(layer, "env.build"))


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
        # the launcher walks the layer *directories* in os.ReadDir order (launch/launcher.go `eachLayer`):
        # by the bare name, so `tool` before `tool-ext` (unlike the build's `<name>.toml` order)
        dirs = sorted((_as_layer_dir(layer) for layer in layers), key=lambda d: os.fsencode(d.name))
        for layer in dirs:
            add_root_dir(env, layer, POSIX_LAUNCH_ENV)
        for layer in dirs:
            host = Path(layer.host)
            add_env_dir(env, host / "env", source=_layer_source(layer, "env"))
            add_env_dir(env, host / "env.launch", source=_layer_source(layer, "env.launch"))
            if process_type and "/" not in process_type and process_type not in (".", ".."):
                sub = f"env.launch/{process_type}"
                add_env_dir(env, host / sub, source=_layer_source(layer, sub))
    return env
