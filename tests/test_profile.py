"""Profiles: loading, strict validation, skips for what a profile cannot express, message templates.

The reference profile is also checked against the reference buildpack itself (its buildpack.toml
and the exact log lines its code produces), so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from conformance.errors import ConformanceError
from conformance.profile import (
    BUILTIN_PROFILES,
    DEFAULT_APPS,
    MESSAGE_PLACEHOLDERS,
    TOP_LEVEL_KEYS,
    LayerRole,
    Profile,
    ProfileGap,
    fill_template,
    load_profile,
    parse_profile,
)
from conformance.tomlcompat import load_toml

REPO = Path(__file__).resolve().parents[1]
BUILDPACK_DIR = REPO / "buildpack_under_test"

MINIMAL = """
[buildpack]
id = "example/python"

[python]
default = "3.12"
"""


def write_profile(tmp_path: Path, text: str, name: str = "custom.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConformanceError) as caught:
        load_profile(write_profile(tmp_path, text))
    return str(caught.value)


# ------------------------------------------------------------------------------------------------
# Built-in profiles
# ------------------------------------------------------------------------------------------------


def test_reference_profile_expresses_the_reference_layer_contract() -> None:
    profile = load_profile("reference")
    assert profile.name == "reference"
    assert profile.buildpack_id == "bpconform/python"
    assert profile.layers_dir_name == "bpconform_python"
    assert profile.roles == {
        "runtime": LayerRole("runtime", "python", build=True, launch=True, cache=True, in_image=True),
        "package-manager": LayerRole("package-manager", "pip", build=True, launch=False, cache=True, in_image=False),
        "package-cache": LayerRole("package-cache", "pip-cache", build=False, launch=False, cache=True, in_image=False),
        "app-deps": LayerRole("app-deps", "venv", build=True, launch=True, cache=False, in_image=True),
    }
    assert (profile.python_default, profile.python_alternative, profile.version_file) == (
        "3.13",
        "3.11",
        ".python-version",
    )
    assert profile.pip_version_source == {"file": "buildpack.toml", "toml-key": "metadata.pip-version"}
    assert {"VIRTUAL_ENV", "LANG", "PYTHONUNBUFFERED"} <= set(profile.launch_env_required)
    assert "PYTHONPATH" in profile.launch_env_forbidden
    assert profile.apps == DEFAULT_APPS
    assert profile.buildable_apps() == ("minimal", "pinned-311", "procfile-web", "pip-in-requirements")
    assert profile.volatile_metadata == ("runtime-sha256",)


def test_reference_profile_agrees_with_the_reference_buildpack_toml() -> None:
    profile = load_profile("reference")
    metadata = load_toml(BUILDPACK_DIR / "buildpack.toml")
    assert profile.buildpack_id == metadata["buildpack"]["id"]
    assert profile.pip_current == metadata["metadata"]["pip-version"]
    assert profile.python_default == metadata["metadata"]["default-python-version"]
    assert profile.buildpack_version_matches(metadata["buildpack"]["version"])


@pytest.mark.parametrize("name", BUILTIN_PROFILES)
def test_every_builtin_profile_loads_and_its_apps_exist(name: str) -> None:
    profile = load_builtin(name)
    assert profile.path.is_file()
    for purpose, app in profile.apps.items():
        assert profile.app_path(purpose) == profile.apps_dir / app
        assert (profile.apps_dir / app / "README.md").is_file()


# ------------------------------------------------------------------------------------------------
# heroku-python against heroku/buildpacks-python v6.5.6 (the profile cites file:line for each key)
# ------------------------------------------------------------------------------------------------

HEROKU_TOML = REPO / "conformance" / "profiles" / "heroku-python.toml"
# Tables and message keys of issue 14 that the heroku profile already uses and that the loader is
# being taught in parallel (package-manager roles, SBOM, the new messages).
PENDING_TOP_LEVEL = ("package-managers", "sbom")
PENDING_MESSAGES = ("two-package-managers", "refused-variables", "requires-python-mismatch")


def load_builtin(name: str) -> Profile:
    """A built-in profile; for heroku-python, while the loader does not know the issue-14 tables yet,
    the profile without them (a scratch copy), so that everything else in it is still validated.
    Once the loader knows a table, the file is loaded as it is and any error in that table shows."""
    if name != "heroku-python" or all(key in TOP_LEVEL_KEYS for key in PENDING_TOP_LEVEL):
        return load_profile(name)
    data = load_toml(HEROKU_TOML)
    for key in PENDING_TOP_LEVEL:
        if key not in TOP_LEVEL_KEYS:
            data.pop(key, None)
    for key in PENDING_MESSAGES:
        if key not in MESSAGE_PLACEHOLDERS:
            data["messages"].pop(key, None)
    return parse_profile(data, HEROKU_TOML)


def styled(header: str, body: str) -> str:
    """An error as libherokubuildpack's log_error writes it: every line wrapped in ANSI colour codes."""
    lines = [f"[Error: {header}]", *body.split("\n")]
    return "".join(f"\x1b[0m\x1b[31m{line}\x1b[0m\n" for line in ["", *lines])


def test_heroku_profile_layer_contract_is_heroku_v6_5() -> None:
    """pip-cache is `cached_layer(build: true, launch: false)` in src/layers/pip_cache.rs, i.e. build AND
    cache: a profile saying cache-only fails every heroku build's layer-types check."""
    profile = load_builtin("heroku-python")
    assert profile.buildpack_id == "heroku/python"
    assert profile.layers_dir_name == "heroku_python"
    assert profile.roles == {
        "runtime": LayerRole("runtime", "python", build=True, launch=True, cache=True, in_image=True),
        "package-manager": LayerRole("package-manager", "pip", build=True, launch=False, cache=True, in_image=False),
        "package-cache": LayerRole("package-cache", "pip-cache", build=True, launch=False, cache=True, in_image=False),
        "app-deps": LayerRole("app-deps", "venv", build=True, launch=True, cache=False, in_image=True),
    }
    assert (profile.python_default, profile.python_alternative, profile.version_file) == (
        "3.14",
        "3.12",
        ".python-version",
    )
    assert profile.buildpack_version_matches("6.5.6")
    assert not profile.buildpack_version_matches("7.0.0")
    assert "heroku-python: pip version cannot be changed" in (profile.pip_bump_gap() or "")
    assert profile.pip_versions() is None
    assert profile.app("alternative-version") == "pinned-311"  # heroku supports 3.10-3.14
    assert set(profile.launch_env_required) == {"VIRTUAL_ENV", "PYTHONUNBUFFERED"}
    assert {"PYTHONPATH", "PYTHONUSERBASE", "PIP_PYTHON", "PIP_CACHE_DIR", "UV_PROJECT_ENVIRONMENT"} <= set(
        profile.launch_env_forbidden
    )
    assert "cache_key" not in profile.volatile_metadata  # no heroku layer has such a key


def test_heroku_cache_messages_match_heroku_output() -> None:
    """Lines as heroku/python 6.5.6 prints them (tests/pip_test.rs:103-109, 183-192)."""
    profile = load_builtin("heroku-python")
    rebuild = (
        "Using cached Python 3.14.7\n\n[Installing pip]\nUsing cached pip 26.1.2\n\n"
        "Using cached pip download/wheel cache\n"
    )
    assert profile.message("runtime-reused", version="3.14.7").search(rebuild)
    assert not profile.message("runtime-reused", version="3.14.6").search(rebuild)
    assert profile.message("package-manager-reused", version="26.1.2").search(rebuild)
    assert not profile.message("package-manager-reused").search("Using cached pip download/wheel cache\n")

    upgrade = (
        "Discarding cached Python 3.14.4 since:\n"
        " - The OS has changed from ubuntu-24.04 to ubuntu-26.04\n"
        " - The Python version has changed from 3.14.4 to 3.14.7\n"
        "Installing Python 3.14.7\n\n[Installing pip]\n"
        "Discarding cached pip 26.0.1\nInstalling pip 26.1.2\n\n[Installing dependencies using pip]\n"
        "Discarding cached pip download/wheel cache\n"
    )
    assert profile.message("runtime-invalidated", old="3.14.4", new="3.14.7").search(upgrade)
    assert not profile.message("runtime-invalidated", old="3.14.5", new="3.14.7").search(upgrade)
    assert profile.message("runtime-discarded").search(upgrade)
    unparsable = "Discarding cached Python since its layer metadata can't be parsed"
    assert profile.message("runtime-discarded").search(unparsable)
    # heroku gives no reason for pip: "Discarding cached pip {old}" then "Installing pip {new}"
    assert profile.message("package-manager-invalidated", old="26.0.1", new="26.1.2").search(upgrade)
    assert not profile.message("package-manager-invalidated", old="26.1.2", new="26.0.1").search(upgrade)
    assert not profile.message("package-manager-invalidated").search("Discarding cached pip download/wheel cache\n")


def test_heroku_error_messages_match_heroku_output() -> None:
    """Errors as src/errors.rs writes them, colour codes included (each line styled separately)."""
    profile = load_builtin("heroku-python")
    eol = styled(
        "The requested Python version has reached end-of-life",
        "Python 2.7 has reached its upstream end-of-life, and is\ntherefore no longer receiving security updates:\n"
        "\nPlease upgrade to at least Python 3.10 by changing the\nversion in your .python-version file.",
    )
    assert profile.message("invalid-version", file=".python-version", value="2.7").search(eol)
    assert not profile.message("invalid-version", file=".python-version", value="2.8").search(eol)
    malformed = styled(
        "Invalid Python version in .python-version",
        "The Python version specified in your .python-version file\nisn't in the correct format.\n\n"
        "The following version was found:\npython-3.13\n",
    )
    assert profile.message("invalid-version", file=".python-version", value="python-3.13").search(malformed)
    assert not profile.message("invalid-version", file=".python-version", value="2.7").search(malformed)
    pip_failed = "ERROR: No matching distribution found for nope\n" + styled(
        "Unable to install dependencies using pip", "The 'pip install -r requirements.txt' command ..."
    )
    assert profile.message("missing-dependency").search(pip_failed)
    assert not profile.message("missing-dependency").search(
        styled("Unable to install dependencies using uv", "The 'uv sync' command ...")
    )
    detect = "No supported Python package manager files found (such as requirements.txt, poetry.lock or uv.lock).\n"
    assert profile.message("detect-fail").search(detect)


def test_heroku_issue14_tables_hold_heroku_layer_design() -> None:
    """The package-manager roles, SBOM and new messages, read from the raw TOML (the loader may not
    know them yet): heroku's layer flags, and messages that match its real output."""
    data = load_toml(HEROKU_TOML)
    managers = data["package-managers"]
    assert managers["uv"]["tool-layers"] == {"uv": {"build": True, "cache": True}, "uv-cache": {"build": True}}
    assert managers["poetry"]["tool-layers"] == {"poetry": {"build": True, "cache": True}}
    for manager in ("uv", "poetry"):
        assert managers[manager]["venv"] == {"name": "venv", "build": True, "launch": True, "cache": True}
        assert managers[manager]["absent-at-runtime"] == [manager]
        messages = {key: re.compile(template, re.MULTILINE) for key, template in managers[manager]["messages"].items()}
        assert messages["venv-reused"].search("Using cached virtual environment\nRunning 'uv sync'\n")
        discarded = "Discarding cached virtual environment\nCreating virtual environment\n"
        assert messages["venv-discarded"].search(discarded)
        assert "{reason}" not in managers[manager]["messages"]["venv-discarded"]  # heroku logs no reason
    uv_stale = (
        "\x1b[31m\x1b[1merror\x1b[0m: The lockfile at `\x1b[36muv.lock\x1b[39m` needs to be updated, but"
        " `\x1b[32m--locked\x1b[39m` was provided.\n"
    ) + styled("Unable to install dependencies using uv", "The 'uv sync' command to install the app's")
    uv_lock = fill_template(managers["uv"]["messages"]["stale-lock"], {"file": "uv.lock"})
    poetry_lock = fill_template(managers["poetry"]["messages"]["stale-lock"], {"file": "poetry.lock"})
    assert re.search(uv_lock, uv_stale)
    assert not re.search(poetry_lock, uv_stale)
    poetry_stale = (
        "pyproject.toml changed significantly since poetry.lock was last generated. Run `poetry lock` to fix it.\n"
    ) + styled("Unable to install dependencies using Poetry", "The 'poetry sync --only main' command")
    assert re.search(poetry_lock, poetry_stale)
    assert not re.search(uv_lock, poetry_stale)
    for manager in ("uv", "poetry"):  # compiled into the binary: the tool-version check must skip
        assert "unsupported" in managers[manager]["tool-version"]["version-source"]
    assert data["sbom"] == {"launch": False}  # no sbom-formats, no write_sboms anywhere in heroku's src/

    messages = data["messages"]
    two = styled(
        "Multiple Python package manager files were found",
        "Exactly one package manager file must be present in your app's\nsource code, however, several were found:"
        "\n\nrequirements.txt (pip)\nuv.lock (uv)\n",
    )
    assert re.search(messages["two-package-managers"], two)
    assert not re.search(messages["two-package-managers"], two.replace("uv.lock (uv)", ""))
    refused = styled(
        "Unsafe environment variable(s) found",
        "The following environment variable(s) can cause problems\nwith the build so we don't allow using them:"
        "\n\nPIP_TARGET\n",
    )
    assert re.search(fill_template(messages["refused-variables"], {"variable": "PIP_TARGET"}), refused)
    assert not re.search(fill_template(messages["refused-variables"], {"variable": "PIP_ROOT"}), refused)
    mismatch = (
        "error: The Python request from `.python-version` resolved to Python 3.11.15, which is incompatible with"
        " the project's Python requirement: `>=3.12` (from `project.requires-python`)\n"
    ) + styled("Unable to install dependencies using uv", "The 'uv sync' command")
    assert re.search(messages["requires-python-mismatch"], mismatch)


# ------------------------------------------------------------------------------------------------
# The reference profile's messages against the reference buildpack's own wording
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def buildpack_lib():
    sys.path.insert(0, str(BUILDPACK_DIR / "lib"))
    try:
        import bpconform_python.detect as detect
        import bpconform_python.layers as layers
        import bpconform_python.versions as versions

        yield layers, versions, detect
    finally:
        sys.path.remove(str(BUILDPACK_DIR / "lib"))


def test_reference_cache_messages_match_what_the_buildpack_logs(buildpack_lib) -> None:
    layers, _, _ = buildpack_lib
    profile = load_profile("reference")
    python = layers.Subject("Python", "python-version")
    pip = layers.Subject("pip", "pip-version")

    changed = layers.decide_cache(
        python, {"python-version": "3.11.2"}, {"python-version": "3.13.5"}, contents_present=True
    ).message
    assert profile.message("runtime-invalidated", old="3.11.2", new="3.13.5").search(changed)
    assert not profile.message("runtime-invalidated", old="3.13.5", new="3.11.2").search(changed)

    reused = layers.decide_cache(
        python, {"python-version": "3.13.5"}, {"python-version": "3.13.5"}, contents_present=True
    ).message
    assert profile.message("runtime-reused", version="3.13.5").search(reused)
    assert not profile.message("runtime-invalidated").search(reused)

    bumped = layers.decide_cache(pip, {"pip-version": "25.2"}, {"pip-version": "25.3"}, contents_present=True).message
    assert profile.message("package-manager-invalidated", old="25.2", new="25.3").search(bumped)
    kept = layers.decide_cache(pip, {"pip-version": "25.3"}, {"pip-version": "25.3"}, contents_present=True).message
    assert profile.message("package-manager-reused", version="25.3").search(kept)


def test_reference_error_messages_match_what_the_buildpack_says(buildpack_lib) -> None:
    _, versions, detect = buildpack_lib
    profile = load_profile("reference")
    available = [versions.Version.parse("3.13.5"), versions.Version.parse("3.11.2")]
    with pytest.raises(Exception) as caught:
        requested = versions.read_version_file("2.7\n", available, "debian 12 amd64")
        versions.resolve(requested, available, "debian 12 amd64")
    assert profile.message("invalid-version", file=".python-version", value="2.7").search(str(caught.value))
    assert not profile.message("invalid-version", file=".python-version", value="2.6").search(str(caught.value))

    result = detect.detect_from_names(["index.html"], "/workspace")
    assert not result.passed
    assert profile.message("detect-fail").search(result.message)


# ------------------------------------------------------------------------------------------------
# Loading by path, validation
# ------------------------------------------------------------------------------------------------


def test_profile_by_path_defaults_and_gaps_are_data_not_skips(tmp_path: Path) -> None:
    """A Profile never decides a test's outcome: what it lacks comes back as None (or ProfileGap)."""
    profile = load_profile(str(write_profile(tmp_path, MINIMAL)))
    assert profile.name == "custom"
    assert profile.roles == {}
    assert profile.python_alternative is None
    assert profile.launch_env_forbidden == ("PYTHONPATH",)
    assert profile.role("runtime") is None
    with pytest.raises(ProfileGap, match="profile custom has no runtime layer"):
        profile.require_role("runtime")
    assert profile.message("runtime-invalidated", old="1", new="2") is None
    assert profile.message("runtime-discarded") is None  # its fallback is missing too
    assert profile.pip_versions() is None
    assert "no [pip] current/other" in (profile.pip_bump_gap() or "")
    with pytest.raises(ProfileGap, match=r"no \[pip\] current/other"):
        profile.set_pip_version(tmp_path, "1")


def test_suite_requirements_turn_profile_gaps_into_skips_with_reasons(tmp_path: Path) -> None:
    from conformance.suite import requirements

    profile = load_profile(str(write_profile(tmp_path, MINIMAL)))
    for call, reason in [
        (lambda: requirements.need_role(profile, "runtime"), "profile custom has no runtime layer"),
        (lambda: requirements.need_message(profile, "runtime-reused"), "profile custom has no runtime-reused message"),
        (lambda: requirements.need_python_alternative(profile), "no alternative Python version"),
        (lambda: requirements.need_pip_versions(profile), "no [pip] current/other"),
    ]:
        with pytest.raises(pytest.skip.Exception) as caught:
            call()
        assert reason in str(caught.value)
    assert requirements.need_app(profile, "default") == "minimal"
    opted_out = load_profile(write_profile(tmp_path, MINIMAL + "[apps]\nprocfile = false\n"))
    with pytest.raises(pytest.skip.Exception, match="profile custom has no procfile app"):
        requirements.need_app(opted_out, "procfile")


def test_runtime_discarded_defaults_to_the_invalidation_wording_with_wildcards(tmp_path: Path) -> None:
    text = MINIMAL + "[messages]\nruntime-invalidated = 'Dropped Python {old} because it is now {new}'\n"
    profile = load_profile(write_profile(tmp_path, text))
    pattern = profile.message("runtime-discarded")
    assert pattern is not None and pattern.search("Dropped Python 3.11.2 because it is now 3.13.5")
    assert not pattern.search("Using cached Python 3.13.5")
    own = load_profile(write_profile(tmp_path, text + "runtime-discarded = 'Reinstalling Python: \\S.*'\n"))
    assert own.message("runtime-discarded").search("Reinstalling Python: the buildpack changed its layout")
    assert not own.message("runtime-discarded").search("Reinstalling Python: ")


def test_a_role_defaults_missing_types_to_false_like_layer_toml(tmp_path: Path) -> None:
    text = MINIMAL + '[layers.package-cache]\nname = "cache"\ncache = true\n'
    layer = load_profile(write_profile(tmp_path, text)).role("package-cache")
    assert layer is not None
    assert (layer.build, layer.launch, layer.cache, layer.in_image) == (False, False, True, False)


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    message = error_of(tmp_path, "[buildpack\nid = 1")
    assert "custom.toml" in message and "malformed profile" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL + "[buildpak]\n", ["buildpak", "did you mean 'buildpack'"]),
        (MINIMAL + '[layers.runtime]\nname = "python"\nlanch = true\n', ["layers.runtime.lanch", "'launch'"]),
        (MINIMAL + '[layers.runtme]\nname = "python"\n', ["layers.runtme", "did you mean 'runtime'"]),
        (MINIMAL + "[messages]\nruntime-reuse = 'x'\n", ["messages.runtime-reuse", "'runtime-reused'"]),
        (MINIMAL + "[apps]\ndefualt = 'minimal'\n", ["apps.defualt", "'default'"]),
        (MINIMAL + "[snapshot]\nvolatile = ['a']\n", ["snapshot.volatile", "'volatile-metadata'"]),
    ],
)
def test_unknown_keys_are_errors_with_a_hint(tmp_path: Path, text: str, expected: list[str]) -> None:
    message = error_of(tmp_path, text)
    assert "custom.toml" in message
    for fragment in expected:
        assert fragment in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (MINIMAL + '[layers.runtime]\nname = "python"\nbuild = "yes"\n', "layers.runtime.build"),
        (MINIMAL + "[layers.runtime]\nbuild = true\n", "layers.runtime.name"),
        (MINIMAL + "[launch-env]\nrequired = 'VIRTUAL_ENV'\n", "launch-env.required"),
        (MINIMAL + "[messages]\ndetect-fail = 3\n", "messages.detect-fail"),
        (MINIMAL + "[apps]\ndefault = true\n", "apps.default"),
        (MINIMAL.replace('default = "3.12"', "default = 3.12"), "python.default"),
        (MINIMAL.replace('default = "3.12"', 'default = "latest"'), "python.default"),
        ('[python]\ndefault = "3.12"\n', "buildpack"),
        (MINIMAL + '[pip]\ncurrent = "25.3"\nother = "25.3"\n', "pip.other"),
        (MINIMAL + "[pip]\nversion-source = { file = '/etc/x.toml', toml-key = 'a' }\n", "pip.version-source.file"),
        ('[buildpack]\n[python]\ndefault = "3.12"\n', "buildpack.id"),
    ],
)
def test_wrong_types_and_missing_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    assert f": {key}:" in error_of(tmp_path, text)


def test_layer_names_must_be_distinct_and_not_reserved(tmp_path: Path) -> None:
    twice = MINIMAL + '[layers.runtime]\nname = "python"\n[layers.app-deps]\nname = "python"\n'
    assert "already the runtime layer" in error_of(tmp_path, twice)
    reserved = MINIMAL + '[layers.runtime]\nname = "launch"\n'
    assert "reserved" in error_of(tmp_path, reserved)


def test_env_cannot_be_required_and_forbidden(tmp_path: Path) -> None:
    text = MINIMAL + "[launch-env]\nrequired = ['PYTHONPATH']\n"  # forbidden defaults to PYTHONPATH
    assert "PYTHONPATH both required and forbidden" in error_of(tmp_path, text)


def test_unknown_profile_name_suggests_a_builtin() -> None:
    with pytest.raises(ConformanceError) as caught:
        load_profile("referense")
    assert "did you mean 'reference'" in str(caught.value)
    assert "heroku-python" in caught.value.hint


def test_apps_can_be_overridden_disabled_and_relocated(tmp_path: Path) -> None:
    (tmp_path / "myapps" / "hello").mkdir(parents=True)
    text = (
        MINIMAL.replace("[buildpack]", 'apps-dir = "myapps"\n[buildpack]')
        + "[apps]\ndefault = 'hello'\nprocfile = false\n"
    )
    profile = load_profile(write_profile(tmp_path, text))
    assert profile.app_path("default") == (tmp_path / "myapps" / "hello").resolve()
    assert profile.app("procfile") is None
    assert profile.app_path("procfile") is None
    # the default name, resolved in this apps dir even though it is not there: judging that is the suite's job
    assert profile.app_path("alternative-version") == (tmp_path / "myapps" / "pinned-311").resolve()


# ------------------------------------------------------------------------------------------------
# Messages
# ------------------------------------------------------------------------------------------------


def test_placeholders_are_escaped_and_quantifiers_kept() -> None:
    assert fill_template("from {old} to {new}", {"old": "3.11.2", "new": "3.13.5"}) == r"from 3\.11\.2 to 3\.13\.5"
    assert fill_template(r"x{2}y{1,3} {old}", {"old": "a+b"}) == r"x{2}y{1,3} a\+b"
    assert fill_template("Using cached Python {version}", {}) == "Using cached Python .+?"


def test_message_matches_only_the_given_values(tmp_path: Path) -> None:
    text = MINIMAL + "[messages]\nruntime-invalidated = 'changed from {old} to {new}'\n"
    profile = load_profile(write_profile(tmp_path, text))
    pattern = profile.message("runtime_invalidated", old="3.11.2", new="3.13.5")  # _ or - both accepted
    assert pattern.search("The Python version has changed from 3.11.2 to 3.13.5")
    assert not pattern.search("The Python version has changed from 3x11x2 to 3.13.5")
    assert profile.message("runtime-invalidated", new="3.13.5").search("changed from 3.12.0 to 3.13.5")


def test_message_misuse_is_a_programming_error(tmp_path: Path) -> None:
    profile = load_profile("reference")
    with pytest.raises(ValueError, match=r"unknown message key 'runtime-reuse'.*did you mean 'runtime-reused'"):
        profile.message("runtime-reuse")
    with pytest.raises(ValueError, match="takes"):
        profile.message("detect-fail", old="1")


@pytest.mark.parametrize(
    ("template", "fragment"),
    [("changed from {old} to {newer}", "unknown placeholder {newer}"), ("broken (", "not a valid regular expression")],
)
def test_bad_message_templates_are_rejected_at_load(tmp_path: Path, template: str, fragment: str) -> None:
    text = MINIMAL + f"[messages]\nruntime-invalidated = '{template}'\n"
    message = error_of(tmp_path, text)
    assert "messages.runtime-invalidated" in message and fragment in message


# ------------------------------------------------------------------------------------------------
# pip version source and version constraints
# ------------------------------------------------------------------------------------------------


def test_set_pip_version_edits_a_copy_of_the_buildpack(tmp_path: Path) -> None:
    copy = tmp_path / "bp"
    shutil.copytree(BUILDPACK_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    profile = load_profile("reference")
    current, other = profile.pip_versions()
    assert (current, other) == ("25.3", "25.2")
    profile.set_pip_version(copy, other)
    assert load_toml(copy / "buildpack.toml")["metadata"]["pip-version"] == "25.2"
    assert load_toml(BUILDPACK_DIR / "buildpack.toml")["metadata"]["pip-version"] == "25.3"


def test_set_pip_version_reports_a_wrong_key(tmp_path: Path) -> None:
    (tmp_path / "bp").mkdir()
    (tmp_path / "bp" / "buildpack.toml").write_text("[metadata]\nother = 1\n")
    text = MINIMAL + (
        '[pip]\ncurrent = "1"\nother = "2"\nversion-source = { file = "buildpack.toml", toml-key = "metadata.pip" }\n'
    )
    profile = load_profile(write_profile(tmp_path, text))
    with pytest.raises(ConformanceError, match=r"has no key metadata\.pip"):
        profile.set_pip_version(tmp_path / "bp", "2")


@pytest.mark.parametrize(
    ("constraint", "version", "expected"),
    [
        (">=0.1, <1", "0.1.0", True),
        (">=0.1, <1", "1.0.0", False),
        (">=0.1, <1", "0.0.9", False),
        ("0.2", "0.2.0", True),
        ("~=0.2", "0.9.1", True),
        ("~=0.2.1", "0.3.0", False),
        ("!=0.1.0", "0.1.0", False),
    ],
)
def test_buildpack_version_constraint(tmp_path: Path, constraint: str, version: str, expected: bool) -> None:
    text = MINIMAL.replace('id = "example/python"', f'id = "example/python"\nversion = "{constraint}"')
    assert load_profile(write_profile(tmp_path, text)).buildpack_version_matches(version) is expected


def test_bad_version_constraint_is_rejected(tmp_path: Path) -> None:
    text = MINIMAL.replace('id = "example/python"', 'id = "example/python"\nversion = "newest"')
    assert "buildpack.version" in error_of(tmp_path, text)


def test_message_regexes_compile_for_every_builtin_profile() -> None:
    for name in BUILTIN_PROFILES:
        profile = load_builtin(name)
        for key in profile.messages:
            assert isinstance(profile.message(key), re.Pattern)
