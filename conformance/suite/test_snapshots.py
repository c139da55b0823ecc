"""Snapshots of what an app's image promises, normalised so that only real drift shows up."""

from __future__ import annotations

import re
from typing import Any

from conformance.fixtures import Build
from conformance.suite.requirements import probe as probe
from conformance.tomlcompat import tomllib

DIGEST = re.compile(r"sha256:[0-9a-f]{64}|\b[0-9a-f]{64}\b")
PATCH = re.compile(r"\b(3\.\d+)\.\d+\b")


def normalise(value: Any, *, patch: bool, volatile: tuple[str, ...] = ()) -> Any:
    """Digests become <digest>, patch versions 3.X.x (if the profile allows), volatile keys <volatile>."""
    if isinstance(value, dict):
        return {
            key: "<volatile>" if key in volatile else normalise(item, patch=patch, volatile=volatile)
            for key, item in sorted(value.items())
        }
    if isinstance(value, list):
        return [normalise(item, patch=patch, volatile=volatile) for item in value]
    if isinstance(value, str):
        value = DIGEST.sub("<digest>", value)
        return PATCH.sub(r"\1.x", value) if patch else value
    return value


def test_image_snapshot(build: Build, probe: dict[str, Any], snapshot) -> None:
    profile = build.profile
    tomls = probe["layer_tomls"].get(profile.layers_dir_name, {})
    layers = {
        name: tomllib.loads(text) for name, text in sorted(tomls.items()) if name not in ("launch", "build", "store")
    }
    env = build.image.launch_env()
    interesting = sorted(
        set(profile.launch_env_required) | set(profile.launch_env_forbidden) | {"PATH", "LD_LIBRARY_PATH"}
    )
    facts = {
        "layers": layers,
        "image_layers": sorted(layer.name for layer in build.image.layers(profile.buildpack_id)),
        "processes": build.image.processes,
        "default_process": build.image.default_process,
        "launch_env": {name: env.get(name) for name in interesting},
        "user": build.image.user,
        "working_dir": build.image.config.get("WorkingDir"),
    }
    assert normalise(facts, patch=profile.normalise_patch_versions, volatile=profile.volatile_metadata) == snapshot
