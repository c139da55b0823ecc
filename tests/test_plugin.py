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


APPS_PROBE = """
import pytest
from conformance.errors import MissingInput

def test_apps(conformance_settings, profile, app_dir):
    assert conformance_settings.apps_dir == profile.apps_dir, "one apps dir for every check"
    print("APPS=" + str(app_dir("default")))
    with pytest.raises(MissingInput, match="not a directory"):
        app_dir("no-such-app")
"""


def _profile_with_apps_dir(pytester: pytest.Pytester, apps_dir: str) -> str:
    from conformance.profile import load_profile

    text = load_profile("reference").path.read_text()
    path = pytester.path / "my-profile.toml"
    path.write_text(f'apps-dir = "{apps_dir}"\n' + text.replace('name = "reference"', 'name = "mine"'))
    return str(path)


def test_apps_dir_of_the_profile_and_apps_option_reach_every_check(pytester: pytest.Pytester) -> None:
    bp = pytester.mkdir("bp")
    (pytester.mkdir("own-apps") / "minimal").mkdir()
    (pytester.mkdir("other-apps") / "minimal").mkdir()
    pytester.makepyfile(test_apps=APPS_PROBE)
    profile = _profile_with_apps_dir(pytester, "own-apps")
    result = pytester.runpytest("-s", "-p", "no:cacheprovider", "--buildpack", str(bp), "--profile", profile)
    result.assert_outcomes(passed=1)
    assert f"APPS={pytester.path / 'own-apps' / 'minimal'}" in result.stdout.str()
    args = ("--buildpack", str(bp), "--profile", profile, "--apps", str(pytester.path / "other-apps"))
    result = pytester.runpytest("-s", "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=1)
    assert f"APPS={pytester.path / 'other-apps' / 'minimal'}" in result.stdout.str(), "--apps wins"


def test_a_missing_app_is_an_error_not_a_skip(pytester: pytest.Pytester) -> None:
    bp = pytester.mkdir("bp")
    pytester.mkdir("empty-apps")
    pytester.makepyfile(test_x="def test_x(app_dir):\n    app_dir('default')\n")
    args = ("--buildpack", str(bp), "--apps", str(pytester.path / "empty-apps"))
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*MissingInput*sample app 'default' is not a directory*"])


def test_snapshot_dir_defaults(pytester: pytest.Pytester) -> None:
    from conformance.data import reference_snapshots
    from conformance.profile import load_profile
    from conformance.settings import Settings

    base = dict(
        buildpacks=(),
        stack_name="bookworm",
        platform="embedded",
        online=False,
        ca_bundle=None,
        env_order="sorted",
        apps_dir=REPO_ROOT / "testapps",
        builder=None,
        lifecycle_image=None,
    )
    reference = Settings(profile=load_profile("reference"), **base)
    assert reference.snapshot_directory() == reference_snapshots() / "reference" / "bookworm"
    updating = Settings(profile=load_profile("reference"), snapshot_update=True, **base)
    assert updating.snapshot_directory() == pytester.path / "snapshots" / "reference" / "bookworm", "never the package"
    mine = Settings(profile=load_profile(_profile_with_apps_dir(pytester, "apps")), **base)
    assert mine.snapshot_directory() == pytester.path / "snapshots" / "mine" / "bookworm"
    moved = Settings(profile=load_profile("reference"), snapshot_dir=pytester.path / "snaps", **base)
    assert moved.snapshot_directory() == pytester.path / "snaps" / "reference" / "bookworm"
