"""Upgrade safety: rebuilding with the candidate over a build by the previous release never crashes
and never keeps a stale layer silently: each cached layer is reused or discarded with a reason.

"With a reason" is the profile's wording: `messages.runtime-discarded` (by default the
`runtime-invalidated` template with every placeholder matching anything)."""

from __future__ import annotations

from conformance.assertions import assert_no_traceback
from conformance.suite.requirements import need_app, need_message, need_role


def test_upgrade_from_previous_release(
    build_app, rebuild, app_copy, previous_buildpack, conformance_settings, profile
) -> None:
    runtime = need_role(profile, "runtime")
    reused_pattern = need_message(profile, "runtime-reused")
    discarded_pattern = need_message(profile, "runtime-discarded")
    app = app_copy(need_app(profile, "default"))
    old = build_app(app, buildpacks=[previous_buildpack])
    new = rebuild(old, app, buildpacks=list(conformance_settings.buildpacks))
    assert_no_traceback(new.output, what="upgrade rebuild")
    reused = reused_pattern.search(new.output)
    discarded = discarded_pattern.search(new.output)
    assert reused or discarded, (
        f"upgrading from the previous release, the {runtime.name} layer was neither reported reused"
        f" (/{reused_pattern.pattern}/) nor discarded with a reason (/{discarded_pattern.pattern}/);"
        f" build output:\n{new.output[-2000:]}"
    )
    same_layer = old.layer("runtime").sha == new.layer("runtime").sha
    if reused and not discarded:
        assert same_layer, f"the {runtime.name} layer was reported reused but its digest changed"
