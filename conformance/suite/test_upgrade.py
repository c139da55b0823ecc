"""Upgrade safety: rebuilding with the candidate over a build by the previous release never crashes
and never keeps a stale layer silently: each cached layer is reused or discarded with a reason."""

from __future__ import annotations

import re

from conformance.assertions import assert_no_traceback


def test_upgrade_from_previous_release(
    build_app, rebuild, app_copy, previous_buildpack, conformance_settings, profile
) -> None:
    app = app_copy(profile.apps["default"])
    old = build_app(app, buildpacks=[previous_buildpack])
    new = rebuild(old, app, buildpacks=list(conformance_settings.buildpacks))
    assert_no_traceback(new.output, what="upgrade rebuild")
    runtime = profile.require_role("runtime")
    reused = profile.message("runtime-reused").search(new.output)
    discarded = profile.message("runtime-invalidated").search(new.output)
    assert reused or discarded, (
        f"upgrading from the previous release, the {runtime.name} layer was neither reported reused nor"
        f" discarded with a reason; build output:\n{new.output[-2000:]}"
    )
    same_layer = old.layer("runtime").sha == new.layer("runtime").sha
    if reused:
        assert same_layer, f"the {runtime.name} layer was reported reused but its digest changed"
    if discarded and not reused:
        assert re.search(r"since: ", discarded.group(0)), "a discarded layer must say why"
