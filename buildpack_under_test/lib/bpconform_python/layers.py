"""Layer bookkeeping: `<layer>.toml`, what the platform restored, and honest cache decisions.

On a rebuild the platform restores only `[metadata]` (never `[types]`) and, for cache=true layers,
the directory. Each cached layer's metadata records exactly the inputs its contents depend on, so
the decision to reuse is a comparison, and the log can name the input that changed.
"""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpconform_python import tomlwriter

# Human names for metadata keys, used in "X has changed from A to B".
INPUT_DESCRIPTIONS = {
    "python-version": "The Python version",
    "pip-version": "The pip version",
    "uv-version": "The uv version",
    "poetry-version": "The Poetry version",
    "package-manager": "The package manager",
    "package-manager-version": "The package manager version",
    "distro-name": "The OS distribution",
    "distro-version": "The OS distribution version",
    "arch": "The CPU architecture",
    "runtime-sha256": "The Python runtime archive (sha256)",
    "layer-format": "The buildpack's layer format",
}


@dataclass(frozen=True)
class LayerTypes:
    build: bool = False
    launch: bool = False
    cache: bool = False


class Unreadable:
    """Marker: a `<layer>.toml` existed but could not be parsed."""


UNREADABLE = Unreadable()


def layer_toml_path(layers_dir: Path, name: str) -> Path:
    return layers_dir / f"{name}.toml"


def read_restored_metadata(layers_dir: Path, name: str) -> dict[str, Any] | Unreadable | None:
    """The `[metadata]` the platform restored for a layer; None when nothing was restored."""
    path = layer_toml_path(layers_dir, name)
    if not path.exists():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return UNREADABLE
    metadata = data.get("metadata", {})
    return metadata if isinstance(metadata, dict) else UNREADABLE


def write_layer_toml(layers_dir: Path, name: str, types: LayerTypes, metadata: Mapping[str, Any]) -> None:
    document: dict[str, Any] = {
        "types": {"build": types.build, "launch": types.launch, "cache": types.cache},
    }
    if metadata:
        document["metadata"] = dict(metadata)
    layer_toml_path(layers_dir, name).write_text(tomlwriter.dumps(document), encoding="utf-8")


def discard_layer(layers_dir: Path, name: str) -> None:
    """Remove a layer's directory and toml: what is not rewritten is not exported or cached."""
    path = layers_dir / name
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
    layer_toml_path(layers_dir, name).unlink(missing_ok=True)


def fresh_layer_dir(layers_dir: Path, name: str) -> Path:
    discard_layer(layers_dir, name)
    path = layers_dir / name
    path.mkdir(parents=True)
    return path


# Inputs that follow from others (a new Python version always has a new archive): named only when
# nothing else changed, so the log says "The Python version has changed" and not a pair of hashes too.
DERIVED_INPUTS = frozenset({"runtime-sha256"})


def describe_changes(previous: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """One sentence per input that differs, in the order of `current`'s keys."""
    changed = [key for key, new in current.items() if previous.get(key) != new]
    if any(key not in DERIVED_INPUTS for key in changed):
        changed = [key for key in changed if key not in DERIVED_INPUTS]
    changes = []
    for key in changed:
        old = previous.get(key)
        what = INPUT_DESCRIPTIONS.get(key, f"The cached input {key!r}")
        shown_old = "(not recorded)" if old is None else str(old)
        changes.append(f"{what} has changed from {shown_old} to {current[key]}")
    return changes


@dataclass(frozen=True)
class Subject:
    """How a layer is named in the log: noun ("Python"), and which metadata key holds its version."""

    noun: str
    version_key: str | None = None
    fresh_action: str = "installing"

    def label(self, metadata: Mapping[str, Any]) -> str:
        if self.version_key and metadata.get(self.version_key) is not None:
            return f"{self.noun} {metadata[self.version_key]}"
        return self.noun


@dataclass(frozen=True)
class CacheDecision:
    reuse: bool
    message: str
    reasons: tuple[str, ...] = ()


def decide_cache(
    subject: Subject,
    previous: Mapping[str, Any] | Unreadable | None,
    current: Mapping[str, Any],
    *,
    contents_present: bool,
) -> CacheDecision:
    """Reuse exactly when the restored metadata equals the current inputs and the files came back."""
    if previous is None:
        return CacheDecision(False, f"No cached {subject.noun} found; {subject.fresh_action} {subject.label(current)}")
    if isinstance(previous, Unreadable):
        reasons = ("its layer metadata could not be read",)
        return CacheDecision(False, f"Discarding cached {subject.noun} since: {reasons[0]}", reasons)
    changes = describe_changes(previous, current)
    if not changes and not contents_present:
        changes = ["its files were not restored from the build cache"]
    if changes:
        return CacheDecision(
            False,
            f"Discarding cached {subject.label(previous)} since: {'; '.join(changes)}",
            tuple(changes),
        )
    return CacheDecision(True, f"Using cached {subject.label(current)}")
