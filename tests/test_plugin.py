"""The pytest plugin: options and ini keys become Settings; failures carry the build output."""

from __future__ import annotations

import pytest

from conformance.paths import REPO_ROOT

pytest_plugins = ["pytester"]

SETTINGS_PROBE = """
import json
from conformance.fixtures import Settings

def test_settings(pytestconfig):
    s = Settings.from_config(pytestconfig)
    print("SETTINGS=" + json.dumps({
        "buildpacks": [str(p) for p in s.buildpacks], "stack": s.stack_name, "platform": s.platform,
        "profile": s.profile.name, "online": s.online, "env_order": s.env_order, "apps": str(s.apps_dir),
    }))
"""


def _settings(pytester: pytest.Pytester, *args: str) -> dict:
    import json

    pytester.makepyfile(test_settings=SETTINGS_PROBE)
    result = pytester.runpytest("-s", "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=1)
    line = next(line for line in result.outlines if "SETTINGS=" in line)
    return json.loads(line.split("SETTINGS=", 1)[1])


def test_options_become_settings(pytester: pytest.Pytester) -> None:
    bp = pytester.mkdir("my-buildpack")
    probe = pytester.mkdir("probe")
    settings = _settings(
        pytester,
        "--buildpack",
        str(bp),
        "--buildpack",
        "probe",
        "--stack",
        "trixie",
        "--online",
        "--emulate-lifecycle-1393",
        "--profile",
        "heroku-python",
    )
    assert settings["buildpacks"] == [str(bp), str(probe)], "buildpacks keep their order, resolved to absolute paths"
    assert settings["stack"] == "trixie"
    assert settings["online"] is True
    assert settings["env_order"] == "lifecycle-1393"
    assert settings["profile"] == "heroku-python"
    assert settings["platform"] == "embedded"


def test_defaults(pytester: pytest.Pytester) -> None:
    bp = pytester.mkdir("bp")
    settings = _settings(pytester, "--buildpack", str(bp))
    assert (settings["stack"], settings["profile"], settings["online"], settings["env_order"]) == (
        "bookworm",
        "reference",
        False,
        "sorted",
    )
    assert settings["apps"] == str(REPO_ROOT / "testapps")


def test_ini_keys(pytester: pytest.Pytester) -> None:
    pytester.mkdir("from-ini")
    pytester.makeini("[pytest]\nbpconform_buildpack =\n    from-ini\nbpconform_stack = trixie\n")
    settings = _settings(pytester)
    assert settings["buildpacks"][0].endswith("from-ini") and settings["stack"] == "trixie"


def test_missing_buildpack_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(conformance_settings):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*no buildpack under test; pass --buildpack DIR*"])
    assert result.ret != 0


def test_unknown_profile_is_a_usage_error(pytester: pytest.Pytester) -> None:
    bp = pytester.mkdir("bp")
    pytester.makepyfile(test_x="def test_x(conformance_settings):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--buildpack", str(bp), "--profile", "no-such-profile")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*no-such-profile*"])


def test_build_failure_attaches_build_output(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fail="""
from conformance.fixtures import BuildFailed

def test_build():
    raise BuildFailed("demo", "bin/build exited with 1", "line one\\nthe buildpack said: boom\\n", 51)
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*build output*", "*the buildpack said: boom*"])
