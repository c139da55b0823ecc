"""The buildpack's own values win over bogus user variables passed through `<platform>/env`."""

from __future__ import annotations

import pytest

from conformance.assertions import assert_path_order
from conformance.fixtures import BuildFailed

BOGUS = {
    "PATH": "/bogus/bin",
    "PYTHONPATH": "/bogus/pythonpath",
    "VIRTUAL_ENV": "/bogus/venv",
    "PYTHONHOME": "/bogus/home",
    "PYTHONUSERBASE": "/bogus/userbase",
    "PIP_PYTHON": "/bogus/python",
}


def test_bogus_user_env_does_not_win(platform, app_dir, profile, request) -> None:
    """Either the build succeeds and every promise still holds, or it refuses with a clear error."""
    try:
        build = platform.build(app_dir(profile.apps["default"]), user_env=BOGUS, label="bogus-env")
    except BuildFailed as failure:
        named = [name for name in BOGUS if name in failure.output]
        assert named and "Traceback (most recent call last)" not in failure.output, (
            "with bogus user variables the build failed without naming the variable it refuses:\n"
            + failure.output[-1500:]
        )
        return
    request.node._bpconform_build_outputs = [("bogus-env", build.output)]
    layers = f"/layers/{profile.layers_dir_name}"
    venv, runtime = profile.require_role("app-deps").name, profile.require_role("runtime").name
    env = build.image.launch_env()
    assert_path_order(env["PATH"], f"{layers}/{venv}/bin", f"{layers}/{runtime}/bin", where="at launch (bogus env)")
    assert env.get("VIRTUAL_ENV") == f"{layers}/{venv}", f"VIRTUAL_ENV at launch is {env.get('VIRTUAL_ENV')}"
    for name in ("PYTHONPATH", "PYTHONHOME"):
        assert name not in env, f"{name} leaked into the launch environment: {env[name]}"
    result = build.image.run(["python", "-c", "import sys; print(sys.prefix)"])
    assert result.exit_code == 0 and result.output.strip().endswith(f"/{venv}"), (
        f"python at run time does not run from the venv after a build with bogus variables: {result.output}"
    )
    probe_venv = build.probe["env"].get("VIRTUAL_ENV")
    if probe_venv == BOGUS["VIRTUAL_ENV"]:
        pytest.fail("a later buildpack sees the user's bogus VIRTUAL_ENV instead of the buildpack's venv")
