"""Reproducible digests: the same inputs give the same runtime layer, whatever the app."""

from __future__ import annotations

from conformance.suite.requirements import need_app, need_role


def test_runtime_layer_reproducible(build_app, app_dir, profile) -> None:
    runtime = need_role(profile, "runtime")
    source = app_dir(need_app(profile, "default"))
    first = build_app(source, clear_cache=True)
    second = build_app(source, clear_cache=True)
    a, b = first.layer("runtime"), second.layer("runtime")
    assert a is not None and b is not None, f"the {runtime.name} layer is missing from a clean build's image"
    assert a.sha == b.sha, (
        f"two clean builds of the same app gave different {a.name} layer digests ({a.sha} vs {b.sha}):"
        " something non-deterministic is written into the layer"
    )


def test_runtime_layer_shared_between_apps(built_app, profile) -> None:
    runtime = need_role(profile, "runtime")
    builds = [built_app(need_app(profile, "default")), built_app(need_app(profile, "procfile"))]
    a, b = builds[0].layer("runtime"), builds[1].layer("runtime")
    assert a is not None and b is not None, f"the {runtime.name} layer is missing from an app's image"
    assert a.sha == b.sha, (
        f"{builds[0].app} and {builds[1].app} use the same Python but their {a.name} layers differ"
        f" ({a.sha} vs {b.sha}); the runtime layer must not depend on the app"
    )
