"""The app at run time: dependencies import from the venv, the environment is what was promised."""

from __future__ import annotations

import pytest

from conformance.assertions import assert_under
from conformance.fixtures import Build, _first_requirement
from conformance.suite.requirements import need_app


def test_dependencies_import(build: Build) -> None:
    module = _first_requirement(build.app_dir)
    if not module:
        pytest.skip("the app has no requirements.txt dependency to import")
    result = build.image.run(["python", "-c", f"import {module}; print({module}.__file__)"])
    assert result.exit_code == 0, f"`import {module}` fails at run time: {result.output}"
    venv = build.image.launch_env().get("VIRTUAL_ENV", "")
    assert_under(result.output.strip().splitlines()[-1], venv or "/layers", what=f"at run time `{module}` imports from")


def test_launch_env(build: Build) -> None:
    env = build.image.launch_env()
    missing = [name for name in build.profile.launch_env_required if name not in env]
    assert not missing, (
        f"the launch environment lacks {missing}; the profile requires {build.profile.launch_env_required}"
    )
    present = {name: env[name] for name in build.profile.launch_env_forbidden if name in env}
    assert not present, f"the launch environment must not set {sorted(present)}, but has {present}"


def test_user_site_does_not_leak_pip(build: Build) -> None:
    """The build-only pip layer is a user install; nothing at run time may point Python at it."""
    if build.app == build.profile.app("pip-dependency"):
        pytest.skip("this app lists pip in its requirements, so pip is expected at run time")
    code = "import importlib.util, site, sys; print(importlib.util.find_spec('pip')); print(site.getuserbase())"
    result = build.image.run(["python", "-c", code])
    assert result.exit_code == 0, f"`python -c ...find_spec('pip')` failed at run time: {result.output[-800:]}"
    spec_line, user_base = result.output.strip().splitlines()[-2:]
    assert spec_line == "None", f"`pip` is importable at run time from {spec_line}; it must only exist at build time"
    pip_layer = build.profile.role("package-manager")
    if pip_layer is not None:
        assert f"/{pip_layer.name}" not in user_base, f"the user base at run time is the pip layer: {user_base}"


def test_default_process(built_app, profile) -> None:
    app = need_app(profile, "procfile")
    image = built_app(app).image
    assert image.default_process == "web", (
        f"the Procfile's web process must be the default, got {image.default_process}"
    )
    web = next((p for p in image.processes if p["type"] == "web"), None)
    assert web is not None, f"no web process in the image: {image.processes}"
    assert image.config["Entrypoint"] == ["/cnb/process/web"], f"entrypoint is {image.config['Entrypoint']}"


def test_web_process_serves(built_app, profile) -> None:
    """The Procfile's web process really starts through the launcher and answers HTTP."""
    import urllib.request

    app = need_app(profile, "procfile")
    image = built_app(app).image
    with image.serving("web", 8080) as url, urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200, f"the web process answered {response.status} on {url}"
