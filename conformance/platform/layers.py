"""What a buildpack leaves in its layers dir: layer records, `launch.toml`, `build.toml`, `store.toml`.

A layer exists only through its `<name>.toml`; its directory is optional (a launch layer without a
directory asks to reuse the previous image's layer). The lifecycle rules kept here: type flags live
in `[types]` (top-level flags are an error since Buildpack API 0.6), a layer with every type false is
ignored and its directory renamed `<layer>.ignore`, `metadata` may be any TOML value and only it is
written back on restore, process types follow the lifecycle's rule (`spec.process_type_problem`) and
merge with later buildpacks winning, `launch.toml` commands and `direct` follow the buildpack's API
(strings before 0.9). Stricter than the lifecycle, because these are mistakes the spec forbids and the
lifecycle only notices late or never: reserved layer names, empty commands.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from conformance.errors import PlatformError
from conformance.platform import safefs, spec
from conformance.platform.buildpack import api_at_least
from conformance.tomlcompat import TOMLDecodeError, dumps_toml, tomllib

RESERVED_LAYER_NAMES = ("build", "launch", "store")
_TYPE_FLAGS = ("build", "launch", "cache")


@dataclass(frozen=True)
class LayerTypes:
    build: bool = False
    launch: bool = False
    cache: bool = False

    @property
    def any(self) -> bool:
        return self.build or self.launch or self.cache


@dataclass
class Layer:
    buildpack_id: str
    name: str
    path: Path  # host path of the layer directory (it may not exist: see has_dir)
    types: LayerTypes
    metadata: Any
    """The `metadata` value as written: usually a table, but any TOML value (see `read_layer`)."""
    has_dir: bool
    # False when `<layer>.toml` has no [metadata] table: the lifecycle's label then says `"data": null`
    # (buildpack/layermetadata.go, `Data any`), and `{}` only for an empty [metadata] table.
    metadata_given: bool = True

    @property
    def label_data(self) -> dict[str, Any] | None:
        """The layer's `data` in the lifecycle metadata label: null without a [metadata] table."""
        return self.metadata if self.metadata_given else None

    @property
    def metadata_table(self) -> dict[str, Any]:
        """`metadata` when it is a table (the usual case), else {}: for reports, which show tables."""
        return dict(self.metadata) if isinstance(self.metadata, dict) else {}

    @property
    def toml_path(self) -> Path:
        return self.path.with_name(self.name + ".toml")

    def container_path(self, layers_root: str = "/layers") -> str:
        return container_layer_path(self.buildpack_id, self.name, layers_root)


def container_layer_path(buildpack_id: str, name: str, layers_root: str = "/layers") -> str:
    """Where a layer lives inside build containers and the app image."""
    return f"{layers_root.rstrip('/')}/{buildpack_id.replace('/', '_')}/{name}"


def _beneath(path: Path, root: Path | None, levels: int) -> tuple[Path, str]:
    """(trusted root, path below it) for a buildpack-written `path`: by default the root is
    `levels` dirs up (`<layers>` for `<layers>/<bp>/launch.toml`), as the platform lays them out."""
    path = Path(path)
    if root is None:
        root = path.parents[levels - 1]
    return Path(root), path.relative_to(root).as_posix()


def _load(path: Path, what: str, root: Path | None = None) -> dict[str, Any] | None:
    """Parse a buildpack-written TOML file, opened beneath its root without following links;
    None when it does not exist."""
    root, rel = _beneath(path, root, 2)
    shown = f"{spec.LAYERS_DIR}/{rel}"  # as the buildpack sees it (root is the layers root)
    data = safefs.read_file(root, rel, shown=f"{what} {shown}")
    if data is None:
        return None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PlatformError(
            f"malformed {what} {shown}: {exc}",
            "fix the TOML syntax at the position shown (https://toml.io/en/v1.0.0)",
        ) from None


def check_layer_name(name: str, buildpack_id: str) -> None:
    """The spec's layer-name rule (`spec.check_layer_name`): `<layer>.toml` named `..toml` or
    `...toml` would otherwise make the layer the buildpack's layers dir itself or the whole layers root."""
    spec.check_layer_name(name, buildpack_id)


def read_layers(
    bp_layers_dir: Path, buildpack_id: str, api: str, *, root: Path | None = None, rename_ignored: bool = False
) -> list[Layer]:
    """The layers a buildpack declared after its build, sorted by name; all-false layers left out.

    `root` is the trusted layers root above `bp_layers_dir` (default: its parent); nothing below
    it is followed if it is a link (see `safefs`). With `rename_ignored` (right after the buildpack's
    build, as the lifecycle does), an all-false layer's directory is renamed `<layer>.ignore`: see
    `ignore_layer`.
    """
    root, rel = _beneath(Path(bp_layers_dir), root, 1)
    listing = safefs.list_dir(root, rel, shown=f"the layers dir of buildpack {buildpack_id} ({spec.LAYERS_DIR}/{rel})")
    if listing is None:
        return []
    modes = dict(listing)
    for reserved in RESERVED_LAYER_NAMES:
        if reserved in modes and stat.S_ISDIR(modes[reserved]):
            raise PlatformError(
                f"buildpack {buildpack_id} created a layer directory named {reserved!r} in {bp_layers_dir}",
                f"{', '.join(RESERVED_LAYER_NAMES)} are reserved layer names (for build.toml, launch.toml, "
                "store.toml): rename the layer",
            )
    layers = []
    for file_name, mode in listing:
        if not file_name.endswith(".toml"):
            continue
        name = file_name[: -len(".toml")]
        if name in RESERVED_LAYER_NAMES:
            continue
        if stat.S_ISLNK(mode):
            raise safefs.UnsafePath(
                f"{file_name} of buildpack {buildpack_id} (layer {name!r}) is a symbolic link; the platform does not"
                " follow links a buildpack made",
                "write <layer>.toml as a regular file in the buildpack's layers dir",
            )
        if not stat.S_ISREG(mode):
            continue
        check_layer_name(name, buildpack_id)
        layer = read_layer(Path(bp_layers_dir) / file_name, buildpack_id, api, root=root)
        if layer.types.any:
            layers.append(layer)
        elif rename_ignored:
            ignore_layer(root, rel, name, buildpack_id)
    return layers


IGNORED_SUFFIX = ".ignore"


def ignore_layer(root: Path, bp_rel: str, name: str, buildpack_id: str) -> bool:
    """Rename the directory of an all-false layer to `<layer>.ignore`; False when it has none.

    The lifecycle does this for each `<layer>.toml` with build, launch and cache all false, right after
    the buildpack's bin/build (buildpack/build.go:168-213, `processLayers` -> `renameLayerDirIfNeeded`):
    a missing directory is fine, any other failure (e.g. a non-empty `<layer>.ignore` already there)
    fails the build. The rename is made relative to the buildpack's layers dir, opened beneath `root`
    without following links, and renames a link itself, never its target.
    """
    dir_fd = safefs.open_dir(root, bp_rel, shown=f"the layers dir of buildpack {buildpack_id}")
    try:
        os.rename(name, name + IGNORED_SUFFIX, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise PlatformError(
            f"buildpack {buildpack_id}: failed to rename layer directory {name!r} to {name + IGNORED_SUFFIX!r}:"
            f" {exc.strerror}",
            "the layer's types are all false, so the lifecycle renames it; remove what is in the way",
            spec.ExitCode.BUILD_ERROR,
        ) from None
    finally:
        os.close(dir_fd)
    return True


def _layer_dir_present(root: Path, rel: str, buildpack_id: str, name: str) -> bool:
    """Whether the layer has a directory. A link there is refused: the lifecycle's exporter
    (`layers/dir.go` DirLayer -> `archive.AddDirToArchive`, a `filepath.Walk`) does not descend into
    a root that is a link, so such a layer would export as a bare link while its contents stayed
    behind; and deciding whether the link leads to a directory would mean following it on the host."""
    st = safefs.lstat(root, rel, shown=f"layer {buildpack_id}:{name}")
    if st is None:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise safefs.UnsafePath(
            f"layer {buildpack_id}:{name} is a symbolic link, not a directory; the platform does not follow"
            " links a buildpack made",
            "create the layer as a directory in the buildpack's layers dir (links inside it are fine)",
        )
    return stat.S_ISDIR(st.st_mode)


def read_layer(toml_path: Path, buildpack_id: str, api: str, *, root: Path | None = None) -> Layer:
    """One `<layer>.toml`, validated; `api` is the buildpack's API (the [types] rule dates from 0.6)."""
    root, rel = _beneath(Path(toml_path), root, 2)
    data = _load(toml_path, "layer metadata file", root) or {}
    misplaced = [flag for flag in _TYPE_FLAGS if flag in data]
    if misplaced and api_at_least(api, "0.6"):
        raise PlatformError(
            f"{toml_path}: {', '.join(misplaced)} must be in the [types] table, not at the top level",
            "write [types] then build/launch/cache = true (Buildpack API >= 0.6)",
        )
    types_table = data.get("types", {})
    if not isinstance(types_table, dict):
        raise PlatformError(f"{toml_path}: types must be a table ([types])")
    flags = {}
    for flag in _TYPE_FLAGS:
        value = types_table.get(flag, False)
        if not isinstance(value, bool):
            raise PlatformError(f"{toml_path}: types.{flag} must be true or false, not {value!r}")
        flags[flag] = value
    # Any TOML value: the lifecycle decodes `metadata` into an `any` (buildpack/layermetadata.go:14, `Data any`),
    # keeps it as the label's `data` and writes it back as is on restore (EncodeLayerMetadataFile, :78-85).
    metadata = data.get("metadata", {})
    name = toml_path.name[: -len(".toml")]
    check_layer_name(name, buildpack_id)
    path = toml_path.with_name(name)
    return Layer(
        buildpack_id=buildpack_id,
        name=name,
        path=path,
        types=LayerTypes(**flags),
        metadata=metadata,
        has_dir=_layer_dir_present(root, rel[: -len(".toml")], buildpack_id, name),
        metadata_given="metadata" in data,
    )


def write_layer_metadata(bp_layers_dir: Path, name: str, metadata: Any) -> None:
    """What the platform restores before build: `[metadata]` only; the buildpack must set [types] again.

    `metadata` is whatever the buildpack wrote (a table, or a string, number, array... as the lifecycle
    restores any value, buildpack/layermetadata.go:78-85). `None` (the label's `"data": null`) writes no
    [metadata] table, an empty dict an empty one, as the lifecycle's TOML encoder does
    (buildpack/layermetadata.go `Encode`: a nil `Data` is left out).
    Written fresh (O_EXCL|O_NOFOLLOW after unlinking whatever is there) beneath the layers root.
    """
    if name in RESERVED_LAYER_NAMES or name in ("", ".", "..") or "/" in name:
        raise PlatformError(f"cannot restore a layer named {name!r}", "this is a platform bug: report it")
    bp_layers_dir = Path(bp_layers_dir)
    root = bp_layers_dir.parent
    root.mkdir(parents=True, exist_ok=True)
    safefs.ensure_dir(root, bp_layers_dir.name)
    text = dumps_toml({"metadata": metadata}) if metadata is not None else ""
    safefs.write_new_file(root, f"{bp_layers_dir.name}/{name}.toml", text.encode())


# --- launch.toml ---------------------------------------------------------------------------------


@dataclass
class Process:
    type: str
    command: list[str]
    args: list[str] = field(default_factory=list)
    default: bool = False
    working_dir: str | None = None
    buildpack_id: str = ""
    exec_env: list[str] = field(default_factory=list)
    direct: bool = True
    """False only for a Buildpack API < 0.9 process without `direct = true` (buildpack/files.go:54-58):
    the launcher runs its command string through bash, after the profile scripts."""
    # False when launch.toml gave no `args`: the build metadata label then says `"args": null`, as the
    # lifecycle's nil slice survives its metadata.toml round trip (BurntSushi/toml skips nil fields).
    args_given: bool = True


@dataclass(frozen=True)
class Slice:
    """One `[[slices]]` of launch.toml: globs (relative to the app dir) whose matches become one layer."""

    paths: tuple[str, ...]


@dataclass
class LaunchConfig:
    processes: list[Process] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """What the lifecycle would log as a warning (e.g. an ignored working-dir for Buildpack API < 0.8)."""
    slices: list[Slice] = field(default_factory=list)
    bom: list[dict[str, Any]] = field(default_factory=list)  # legacy `[[bom]]` entries (name, metadata)


def read_launch_toml(path: Path, api: str, buildpack_id: str = "", *, root: Path | None = None) -> LaunchConfig:
    """Processes, labels, slices and the legacy `[[bom]]` of a buildpack's `launch.toml` (missing file: nothing)."""
    path = Path(path)
    data = _load(path, "launch.toml", root)
    if data is None:
        return LaunchConfig()
    warnings: list[str] = []
    processes = [
        _parse_process(raw, index, path, api, buildpack_id, warnings)
        for index, raw in enumerate(_array_of_tables(data, "processes", path))
    ]
    defaults = [p.type for p in processes if p.default]
    if len(defaults) > 1:
        raise PlatformError(
            f"{path}: several processes are marked default ({', '.join(defaults)})",
            "mark at most one process with default = true",
        )
    labels = {}
    for index, raw in enumerate(_array_of_tables(data, "labels", path)):
        key, value = raw.get("key"), raw.get("value")
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise PlatformError(
                f"{path}: labels[{index}] needs string key and value", 'write key = "..." value = "..."'
            )
        labels[key] = value
    slices = [_parse_slice(raw, index, path) for index, raw in enumerate(_array_of_tables(data, "slices", path))]
    return LaunchConfig(processes=processes, labels=labels, warnings=warnings, slices=slices, bom=read_bom(data, path))


def _parse_slice(raw: dict[str, Any], index: int, path: Path) -> Slice:
    paths = raw.get("paths", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise PlatformError(
            f"{path}: slices[{index}].paths must be an array of strings",
            'write [[slices]] paths = ["static/*", "*.txt"] (globs relative to the app dir)',
            spec.ExitCode.BUILD_ERROR,
        )
    return Slice(tuple(paths))


def read_bom(data: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """The legacy unstructured `[[bom]]` of launch.toml or build.toml: each entry's name and metadata.

    As the lifecycle's BOM validator (buildpack/bom.go `validateBOM`), a top-level `version` is an
    error (it belongs in `metadata.version`).
    """
    entries = []
    for index, raw in enumerate(_array_of_tables(data, "bom", path)):
        name, metadata = raw.get("name", ""), raw.get("metadata")
        if not isinstance(name, str) or (metadata is not None and not isinstance(metadata, dict)):
            raise PlatformError(
                f"{path}: bom[{index}] needs a string name and a [bom.metadata] table",
                'write [[bom]] name = "..." and [bom.metadata] version = "..."',
                spec.ExitCode.BUILD_ERROR,
            )
        if raw.get("version"):
            raise PlatformError(
                f"{path}: bom entry '{name}' has a top level version which is not allowed",
                "the buildpack should instead set metadata.version",
                spec.ExitCode.BUILD_ERROR,
            )
        entries.append({"name": name, "metadata": metadata})
    return entries


def _array_of_tables(data: dict[str, Any], key: str, path: Path) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise PlatformError(f"{path}: {key} must be an array of tables ([[{key}]])")
    return value


def check_process_type(process_type: object, where: str) -> str:
    """The one process-type rule, `spec.check_process_type`: the lifecycle's forbidden characters
    `/><:|&\\` plus host safety (no control characters, not `.`/`..`, a length cap). So `my+proc`, `a b`
    or `a$b` are types; the launcher treats them as data. Refused with the lifecycle's export code."""
    return spec.check_process_type(process_type, where)


def _parse_command(raw: dict[str, Any], where: str, api: str) -> tuple[list[str], bool]:
    """(command entries, direct) per the buildpack's API (buildpack/files.go:36-74, `DecodeLaunchTOML`).

    API < 0.9: `command` is one string, `direct` optional and false by default (so the launcher goes
    through bash). API >= 0.9: `command` is an array, `direct` is not allowed, every process is direct.
    """
    command = raw.get("command")
    if api_at_least(api, "0.9"):
        if "direct" in raw:
            raise PlatformError(f"{where}: direct is not supported since Buildpack API 0.9", "remove it")
        if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
            raise PlatformError(
                f"{where}: command must be an array of strings (Buildpack API >= 0.9)",
                'write command = ["python", "app.py"]',
            )
        return list(command), True
    direct = raw.get("direct", False)
    if not isinstance(direct, bool):
        raise PlatformError(f"{where}: direct must be true or false, not {direct!r}")
    if not isinstance(command, str):
        raise PlatformError(
            f"{where}: command must be a string for Buildpack API {api} (arrays came with API 0.9)",
            'write command = "python app.py" (direct = false: run by bash) or set api = "0.9" or later',
        )
    return [command], direct


def _parse_process(
    raw: dict[str, Any], index: int, path: Path, api: str, buildpack_id: str, warnings: list[str] | None = None
) -> Process:
    where = f"{path}: processes[{index}]"
    ptype = check_process_type(raw.get("type"), where)
    where = f"{where} ({ptype})"
    command, direct = _parse_command(raw, where, api)
    if not command or not command[0]:
        raise PlatformError(f"{where} has an empty command", "give the program to run as command[0]")
    args = raw.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise PlatformError(f"{where}: args must be an array of strings")
    default = raw.get("default", False)
    working_dir = raw.get("working-dir")
    exec_env = raw.get("exec-env", [])
    if not isinstance(default, bool):
        raise PlatformError(f"{where}: default must be true or false")
    if working_dir is not None and not isinstance(working_dir, str):
        raise PlatformError(f"{where}: working-dir must be a string")
    if working_dir and not api_at_least(api, "0.8"):
        # buildpack/build.go:292-299: warned about and dropped before Buildpack API 0.8
        if warnings is not None:
            warnings.append(
                "Warning: process working directory isn't supported in this buildpack api version."
                f" Ignoring working directory for process '{ptype}'"
            )
        working_dir = None
    if not isinstance(exec_env, list) or not all(isinstance(e, str) for e in exec_env):
        raise PlatformError(f"{where}: exec-env must be an array of strings")
    return Process(
        type=ptype,
        command=command,
        args=list(args),
        default=default,
        working_dir=working_dir or None,
        buildpack_id=buildpack_id,
        exec_env=list(exec_env),
        direct=direct,
        args_given="args" in raw,
    )


def merge_processes(earlier: list[Process], later: list[Process]) -> list[Process]:
    """Processes after a later buildpack's build: same type replaced, the result sorted by type.

    At most one result is `default`. As in the lifecycle, the last process marked default wins, and a
    non-default process that replaces the current default type clears the default.
    """
    by_type = {p.type: p for p in earlier}
    default_type = next((p.type for p in earlier if p.default), None)
    for process in later:
        if process.default:
            default_type = process.type
        elif process.type == default_type:
            default_type = None
        by_type[process.type] = process
    return [replace(by_type[t], default=(t == default_type)) for t in sorted(by_type)]


def build_metadata_process(process: Process) -> dict[str, Any]:
    """One process as the lifecycle records it in `io.buildpacks.build.metadata` (`processes[]`).

    The JSON of launch.Process (launch/launch.go:17-27): `command` as an array (Platform API >= 0.10),
    `direct` as decided by the buildpack API (always true from 0.9), `working-dir` and `exec-env` only
    when set (omitempty); `default` is never there, the builder clears it (phase/builder.go:258-268).
    """
    record: dict[str, Any] = {
        "type": process.type,
        "command": list(process.command),
        # null when launch.toml gave no `args`: the lifecycle's nil slice survives its metadata.toml round
        # trip (BurntSushi/toml skips nil fields)
        "args": list(process.args) if process.args_given or process.args else None,
        "direct": process.direct,
        "buildpackID": process.buildpack_id,
    }
    if process.working_dir:
        record["working-dir"] = process.working_dir
    if process.exec_env:
        record["exec-env"] = list(process.exec_env)
    return record


def default_process_type(processes: list[Process]) -> str | None:
    return next((p.type for p in processes if p.default), None)


# --- build.toml and store.toml -------------------------------------------------------------------


def read_build_toml(
    path: Path, plan_entries: list[dict[str, Any]] | None = None, *, root: Path | None = None
) -> list[str]:
    """The names in `[[unmet]]`: plan entries the buildpack did not meet (passed on to later ones).

    With `plan_entries` (the buildpack plan it received), each name must be one of them, as the
    lifecycle checks.
    """
    path = Path(path)
    data = _load(path, "build.toml", root)
    if data is None:
        return []
    names = []
    for index, raw in enumerate(_array_of_tables(data, "unmet", path)):
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise PlatformError(f"{path}: unmet[{index}] has no name", 'write [[unmet]] name = "<plan entry name>"')
        if plan_entries is not None and name not in {entry.get("name") for entry in plan_entries}:
            raise PlatformError(
                f"{path}: unmet name {name!r} is not in the buildpack plan it received",
                "list only names of entries from the buildpack plan (CNB_BP_PLAN_PATH)",
            )
        names.append(name)
    return names


def read_build_bom(path: Path, *, root: Path | None = None) -> list[dict[str, Any]]:
    """The legacy `[[bom]]` of a buildpack's `build.toml` (missing file: none); see `read_bom`."""
    path = Path(path)
    data = _load(path, "build.toml", root)
    return read_bom(data, path) if data is not None else []


@dataclass(frozen=True)
class StoreToml:
    """A buildpack's `store.toml` as the lifecycle keeps it (buildpack/files.go:155-157, `StoreTOML`,
    decoded with BurntSushi/toml v1.6.0): its `[metadata]` table, or None when the file has none or
    its `metadata` is not a table (the decoder leaves the Go map nil without an error,
    decode.go:350-356 `unifyMap`). The label then says `"metadata": null`, and the next build gets an
    empty store.toml back (the encoder writes nothing for a nil field, encode.go:526)."""

    metadata: dict[str, Any] | None = None

    def label(self) -> dict[str, Any]:
        """`buildpacks[].store` of the lifecycle metadata label."""
        return {"metadata": self.metadata}

    def toml_text(self) -> str:
        """What the restorer writes back as `store.toml` (internal/layer/metadata_restorer.go:57-66)."""
        return dumps_toml({"metadata": self.metadata}) if self.metadata is not None else ""

    @classmethod
    def from_label(cls, value: object) -> StoreToml | None:
        """A previous image's `buildpacks[].store` (absent: None, as the Go pointer stays nil)."""
        if not isinstance(value, dict):
            return None
        metadata = value.get("metadata")
        return cls(metadata if isinstance(metadata, dict) else None)


def read_store_toml(bp_layers_dir: Path, buildpack_id: str, *, root: Path | None = None) -> StoreToml | None:
    """A buildpack's `store.toml` (see `StoreToml`); None when it wrote none.

    The exporter reads it, not the build: the lifecycle decodes `store.toml` only in
    `buildpack.ReadLayersDir` (buildpack/layers.go:56-62), which the exporter calls for each buildpack
    (phase/exporter.go:367-376, `addBuildpackLayers`), and never in the build phase
    (buildpack/build.go does not open it). So a `store.toml` that is not TOML fails the export with the
    export error code, 62 (cmd/lifecycle/exporter.go:234, platform/exit.go:53), after every `bin/build`
    ran: a later buildpack's failure still gets its own 51. Read beneath `root` (default: the parent of
    `bp_layers_dir`) without following links, and named as the buildpack sees it.
    """
    path = Path(bp_layers_dir) / "store.toml"
    root, _ = _beneath(path, root, 2)
    try:
        data = _load(path, "store.toml", root)
    except safefs.UnsafePath:  # a link or a special file: refused as everywhere, not a decode error
        raise
    except PlatformError as exc:
        exc.message = f"buildpack {buildpack_id} wrote a {exc.message}"
        exc.args = (exc.message,)
        exc.exit_code = spec.ExitCode.EXPORT_ERROR
        raise
    if data is None:
        return None
    return StoreToml.from_label(data)
