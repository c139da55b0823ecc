"""The buildpack's own values win over bogus user variables passed through `<platform>/env`.

What "win" can mean is what the lifecycle allows. It applies `<platform>/env` to every buildpack
*last*, on a copy of the environment accumulated from earlier layers (`env/env.go` WithOverrides,
called from `buildpack/build.go`): a later buildpack sees `PATH=<user value>:<layers' PATH>` and the
user's `VIRTUAL_ENV`, `PYTHONHOME` ... as given. So the check does not blame the buildpack for
those; it demands what the buildpack controls: behind the user's PATH entries its venv still comes
before its runtime (at build time and at launch), `python` still resolves to the venv, and nothing
bogus is baked into the image's launch environment. Alternatively the buildpack may refuse the
build with an error naming the variable.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.assertions import assert_no_traceback, assert_path_order
from conformance.fixtures import Build, BuildFailed, record_build_output
from conformance.suite.requirements import HarnessError, need_app, need_role, probe_record

# PYTHONHOME is left out: it moves the interpreter itself, and a buildpack may refuse it (with
# PIP_TARGET, PIP_PREFIX, ...: DESIGN.md's refused variables), which would end this check before the
# PATH promises it exists for are tested.
BOGUS = {
    "PATH": "/bogus/bin",
    "PYTHONPATH": "/bogus/pythonpath",
    "VIRTUAL_ENV": "/bogus/venv",
    "PYTHONUSERBASE": "/bogus/userbase",
    "PIP_PYTHON": "/bogus/python",
}


@pytest.fixture
def bogus_build(platform, app_dir, profile, request) -> Build | BuildFailed:
    """The default app built with BOGUS in `<platform>/env`, its probe record checked at setup: a
    missing record, or one showing the user's variables did not reach the probe as the lifecycle
    applies them, is a harness error (the check would test nothing), not the buildpack's failure."""
    try:
        build = platform.build(app_dir(need_app(profile, "default")), user_env=BOGUS, label="bogus-env")
    except BuildFailed as failure:
        return failure
    record_build_output(request.node, "bogus-env", build.output)
    seen = probe_record(build)["env"]
    if seen.get("VIRTUAL_ENV") != BOGUS["VIRTUAL_ENV"] or not seen.get("PATH", "").startswith(BOGUS["PATH"] + ":"):
        raise HarnessError(
            "the user's <platform>/env did not reach the later buildpack as the lifecycle applies it (last,"
            f" PATH prepended with ':', others overridden): it saw VIRTUAL_ENV={seen.get('VIRTUAL_ENV')!r},"
            f" PATH={seen.get('PATH')!r}",
            "the platform under test does not behave like the lifecycle here (env/env.go WithOverrides)",
        )
    return build


def test_bogus_user_env_does_not_win(bogus_build: Build | BuildFailed, profile) -> None:
    """Either the build succeeds and every promise the buildpack controls still holds, or it refuses
    with a clear error naming a variable."""
    if isinstance(bogus_build, BuildFailed):
        named = [name for name in BOGUS if name in bogus_build.output]
        assert named, (
            "with bogus user variables the build failed without naming the variable it refuses:\n"
            + bogus_build.output[-1500:]
        )
        assert_no_traceback(bogus_build.output, what="build with bogus user variables")
        return
    build = bogus_build
    layers = f"/layers/{profile.layers_dir_name}"
    venv, runtime = need_role(profile, "app-deps").name, need_role(profile, "runtime").name
    venv_bin, runtime_bin = f"{layers}/{venv}/bin", f"{layers}/{runtime}/bin"
    probe: dict[str, Any] = build.probe

    # For a later buildpack: the user's /bogus/bin first (the lifecycle's doing), then the venv, then the runtime.
    where = "at build time, for a later buildpack, with bogus user variables"
    assert_path_order(probe["env"]["PATH"], venv_bin, runtime_bin, where=where)
    assert probe["which"]["python"] == f"{venv_bin}/python", (
        f"{where}: `python` resolves to {probe['which']['python']}, expected {venv_bin}/python"
    )

    # At launch the user's build variables are gone: only what the buildpack wrote counts.
    env = build.image.launch_env()
    assert_path_order(env["PATH"], venv_bin, runtime_bin, where="at launch, after a build with bogus user variables")
    assert env.get("VIRTUAL_ENV") == f"{layers}/{venv}", (
        f"VIRTUAL_ENV at launch is {env.get('VIRTUAL_ENV')!r}, expected {layers}/{venv}"
    )
    leaked = {name: env[name] for name in BOGUS if name != "PATH" and env.get(name, "").startswith("/bogus")}
    assert not leaked, f"the user's build-time values were baked into the launch environment: {leaked}"
    assert "/bogus" not in env["PATH"], f"/bogus entries were baked into the launch PATH: {env['PATH']}"
    result = build.image.run(["python", "-c", "import sys; print(sys.prefix)"])
    assert result.exit_code == 0 and result.output.strip().endswith(f"/{venv}"), (
        f"python at run time does not run from the venv after a build with bogus variables: {result.output}"
    )
