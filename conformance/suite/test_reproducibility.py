"""Reproducible digests: the same inputs give the same runtime layer, whatever the app."""

from __future__ import annotations

import pytest

from conformance.fixtures import Build


def test_runtime_layer_reproducible(build_app, app_dir, profile) -> None:
    source = app_dir(profile.apps["default"])
    first = build_app(source, clear_cache=True)
    second = build_app(source, clear_cache=True)
    a, b = first.layer("runtime"), second.layer("runtime")
    assert a is not None and b is not None
    assert a.sha == b.sha, (
        f"two clean builds of the same app gave different {a.name} layer digests ({a.sha} vs {b.sha}):"
        " something non-deterministic is written into the layer"
    )


def test_runtime_layer_shared_between_apps(built_app, profile) -> None:
    apps = [profile.apps["default"], profile.app("procfile")]
    builds: list[Build] = [built_app(name) for name in apps if name]
    if len(builds) < 2:
        pytest.skip(f"profile {profile.name} names no second app (procfile) on the default Python version")
    a, b = builds[0].layer("runtime"), builds[1].layer("runtime")
    assert a.sha == b.sha, (
        f"{builds[0].app} and {builds[1].app} use the same Python but their {a.name} layers differ"
        f" ({a.sha} vs {b.sha}); the runtime layer must not depend on the app"
    )
