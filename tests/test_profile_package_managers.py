"""The profile's package-manager schema: `[package-managers.<name>]`, `[sbom]`, the new messages/apps.

Bad or missing keys must give a clear error naming the key (never a traceback, never a silent
skip), a table that is absent must turn every check needing it into a skip that names the key, and
the reference profile's wording must match what the reference buildpack's code really prints.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance.errors import ConformanceError
from conformance.profile import PACKAGE_MANAGERS, load_profile, reason_pattern, write_version
from conformance.suite import requirements
from conformance.tomlcompat import load_toml

REPO = Path(__file__).resolve().parents[1]
BUILDPACK_DIR = REPO / "buildpack_under_test"

MINIMAL = """
[buildpack]
id = "example/python"

[python]
default = "3.13"
"""

UV_TABLE = """
[package-managers.uv]
apps = { main = "uv" }
tool-layers = { uv = { build = true, cache = true } }
venv = { name = "venv", build = true, launch = true, cache = true }
"""


def load_text(tmp_path: Path, text: str):
    path = tmp_path / "custom.toml"
    path.write_text(text)
    return load_profile(path)


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConformanceError) as caught:
        load_text(tmp_path, text)
    return str(caught.value)


# ------------------------------------------------------------------------------------------------
# The reference profile
# ------------------------------------------------------------------------------------------------


def test_reference_profile_describes_uv_and_poetry() -> None:
    profile = load_profile("reference")
    uv, poetry = profile.package_manager("uv"), profile.package_manager("poetry")
    assert uv is not None and poetry is not None
    assert uv.apps == {"main": "uv", "stale-lock": "uv-stale-lock", "removed-dependency": "uv-removed-dependency"}
    assert {(layer.name, layer.build, layer.launch, layer.cache) for layer in uv.tool_layers} == {
        ("uv", True, False, True),
        ("uv-cache", True, False, False),
    }
    assert [(layer.name, layer.types) for layer in poetry.tool_layers] == [
        ("poetry", {"build": True, "launch": False, "cache": True})
    ]
    for manager in (uv, poetry):
        assert manager.venv is not None and manager.venv.types == {"build": True, "launch": True, "cache": True}
        assert manager.dev_dependencies == ("idna",)
        assert manager.tool_version_gap() is None
    assert uv.absent_at_runtime == ("uv",) and poetry.absent_at_runtime == ("poetry",)
    assert uv.build_env == {"UV_PYTHON_DOWNLOADS": "never", "UV_NO_MANAGED_PYTHON": "1"}
    assert poetry.build_env == {"PYTHONUSERBASE": "/layers/bpconform_python/poetry"}
    assert profile.sbom_launch is True
    assert profile.app("refused-variable") == "pip-target"
    for manager in (uv, poetry):
        for name in manager.apps.values():
            assert (profile.apps_dir / name).is_dir(), f"{manager.key} names {name}, which is not in testapps/"


def test_reference_tool_versions_are_the_buildpacks_and_the_wheelhouse_has_the_other_ones() -> None:
    from conformance.access import LOCKFILE_REQUIREMENTS, OTHER_TOOL_REQUIREMENTS

    metadata = load_toml(BUILDPACK_DIR / "buildpack.toml", what="buildpack")["metadata"]
    for name, key in (("uv", "uv-version"), ("poetry", "poetry-version")):
        version = load_profile("reference").package_managers[name].tool_version
        assert version is not None and version.source == {"file": "buildpack.toml", "toml-key": f"metadata.{key}"}
        assert version.current == metadata[key] and f"{name}=={version.current}" in LOCKFILE_REQUIREMENTS
        assert f"{name}=={version.other}" in OTHER_TOOL_REQUIREMENTS


@pytest.fixture
def bp() -> Iterator[SimpleNamespace]:
    """The reference buildpack's own modules, to compare the profile's regexes with its real wording."""
    sys.path.insert(0, str(BUILDPACK_DIR / "lib"))
    try:
        from bpconform_python import lock_steps, lockfile, package_manager, pyproject, versions
        from bpconform_python.output import BuildpackError, format_error

        yield SimpleNamespace(
            lock_steps=lock_steps,
            lockfile=lockfile,
            package_manager=package_manager,
            pyproject=pyproject,
            versions=versions,
            BuildpackError=BuildpackError,
            format_error=format_error,
        )
    finally:
        sys.path.remove(str(BUILDPACK_DIR / "lib"))


def _venv_message(bp: SimpleNamespace, previous: dict[str, str], current: dict[str, str]) -> str:
    return bp.lock_steps.decide_venv(previous, current, contents_present=True).message


def test_reference_venv_messages_match_what_the_buildpack_logs(bp: SimpleNamespace) -> None:
    profile = load_profile("reference")
    uv = profile.package_managers["uv"]
    base = {
        "package-manager": "uv",
        "package-manager-version": "0.13.9",
        "python-version": "3.13.5",
        "distro-name": "debian",
        "distro-version": "12",
        "arch": "amd64",
        "layer-format": "1",
    }
    reused = _venv_message(bp, base, base)
    assert uv.message("venv-reused").search(reused)
    assert not uv.message("venv-discarded", reason=".*").search(reused)

    cases = [
        ("python-version", "3.13.5", "3.11.2"),
        ("package-manager-version", "0.13.9", "0.13.8"),
        ("package-manager", "uv", "poetry"),
    ]
    for key, old, new in cases:
        message = _venv_message(bp, base | {key: old}, base | {key: new})
        assert uv.message("venv-discarded", reason=reason_pattern(old, new)).search(message), message
        assert not uv.message("venv-discarded", reason=reason_pattern(new, old)).search(message), message
        assert not uv.message("venv-reused").search(message)


def test_reference_error_messages_match_what_the_buildpack_says(bp: SimpleNamespace) -> None:
    profile = load_profile("reference")

    def said(call) -> str:
        with pytest.raises(bp.BuildpackError) as caught:
            call()
        return bp.format_error(caught.value.title, caught.value.detail)

    stale = said(lambda: (_ for _ in ()).throw(bp.lockfile.stale_lock_error("uv.lock", "uv", "uv lock")))
    assert profile.package_managers["uv"].message("stale-lock", file="uv.lock").search(stale)
    assert not profile.package_managers["uv"].message("stale-lock", file="poetry.lock").search(stale)
    two = said(lambda: bp.package_manager.select_package_manager({"requirements.txt", "uv.lock", "pyproject.toml"}))
    assert profile.message("two-package-managers").search(two), two
    refused = said(lambda: bp.package_manager.check_user_env({"PIP_TARGET": "/tmp/elsewhere"}))
    assert profile.message("refused-variables", variable="PIP_TARGET").search(refused), refused
    assert not profile.message("refused-variables", variable="PIP_PREFIX").search(refused)
    version = bp.versions.Version.parse("3.11.2")
    mismatch = said(lambda: bp.pyproject.check_requires_python(">=3.12", version, ".python-version"))
    assert profile.message("requires-python-mismatch").search(mismatch), mismatch


# ------------------------------------------------------------------------------------------------
# Gaps are skips that name the key
# ------------------------------------------------------------------------------------------------


def test_a_profile_without_package_manager_tables_skips_naming_the_key(tmp_path: Path) -> None:
    profile = load_text(tmp_path, MINIMAL)
    assert profile.package_managers == {} and profile.sbom_launch is None
    for name in PACKAGE_MANAGERS:
        with pytest.raises(pytest.skip.Exception, match=rf"profile custom has no package-managers\.{name}"):
            requirements.need_package_manager(profile, name)
    with pytest.raises(pytest.skip.Exception, match=r"profile custom has no sbom\.launch"):
        requirements.need_launch_sbom(profile)
    with pytest.raises(pytest.skip.Exception, match="has no two-package-managers message"):
        requirements.need_message(profile, "two-package-managers")


def test_a_partial_table_skips_each_missing_key_by_its_dotted_name(tmp_path: Path) -> None:
    profile = load_text(tmp_path, MINIMAL + UV_TABLE + "[sbom]\nlaunch = false\n")
    uv = requirements.need_package_manager(profile, "uv")
    assert requirements.need_manager_app(uv, "main") == "uv"
    with pytest.raises(pytest.skip.Exception, match=r"no package-managers\.uv\.apps\.stale-lock"):
        requirements.need_manager_app(uv, "stale-lock")
    with pytest.raises(pytest.skip.Exception, match=r"no package-managers\.uv\.messages\.venv-reused"):
        requirements.need_manager_message(uv, "venv-reused")
    assert uv.tool_version_gap() == "profile custom has no package-managers.uv.tool-version"
    with pytest.raises(pytest.skip.Exception, match=r"sbom\.launch = false"):
        requirements.need_launch_sbom(profile)
    unsupported = load_text(
        tmp_path, MINIMAL + UV_TABLE + 'tool-version = { version-source = { unsupported = "compiled in" } }\n'
    )
    assert "compiled in" in (unsupported.package_managers["uv"].tool_version_gap() or "")


# ------------------------------------------------------------------------------------------------
# Bad keys and values: clear errors naming the key
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[package-managers.pipenv]\napps = { main = "x" }\n', ["package-managers.pipenv: unknown key"]),
        ('[package-managers.uvv]\napps = { main = "x" }\n', ["package-managers.uvv", "did you mean 'uv'"]),
        ("[package-managers.uv]\ntool-layer = {}\n", ["package-managers.uv.tool-layer", "did you mean 'tool-layers'"]),
        ('[package-managers.uv]\napps = { mian = "uv" }\n', ["package-managers.uv.apps.mian", "did you mean 'main'"]),
        ("[package-managers.uv.messages]\nvenv-reuse = 'x'\n", ["messages.venv-reuse", "did you mean 'venv-reused'"]),
        ("[sbom]\nlauch = true\n", ["sbom.lauch", "did you mean 'launch'"]),
        (
            "[package-managers.uv]\ntool-layers = { uv = { build = true, lanch = true } }\n",
            ["package-managers.uv.tool-layers.uv.lanch", "did you mean 'launch'"],
        ),
    ],
)
def test_unknown_keys_are_errors_with_a_hint(tmp_path: Path, text: str, expected: list[str]) -> None:
    message = error_of(tmp_path, MINIMAL + text)
    for fragment in expected:
        assert fragment in message, message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[package-managers]\nuv = 1\n", "package-managers.uv: must be a table"),
        ("[package-managers.uv]\napps = { main = 3 }\n", "package-managers.uv.apps.main: must be an app directory"),
        ('[package-managers.uv]\napps = { main = "a/b" }\n', "package-managers.uv.apps.main: must be an app directory"),
        ("[package-managers.uv]\napps = { main = true }\n", "apps.main: must be an app directory name or false"),
        ('[package-managers.uv]\nabsent-at-runtime = "uv"\n', "package-managers.uv.absent-at-runtime: must be a list"),
        ("[package-managers.uv]\ndev-dependencies = [1]\n", "package-managers.uv.dev-dependencies: must be a list"),
        ("[package-managers.uv]\nvenv = { build = true }\n", "package-managers.uv.venv.name: is required"),
        ('[package-managers.uv]\nvenv = { name = "venv", cache = "yes" }\n', "venv.cache: must be true or false"),
        ('[package-managers.uv]\nvenv = { name = "launch" }\n', "'launch' is a reserved layer name"),
        (
            "[package-managers.uv]\ntool-layers = { uv = { build = 1 } }\n",
            "tool-layers.uv.build: must be true or false",
        ),
        (
            "[package-managers.uv]\ntool-layers = { uv = { build = true, launch = true } }\n",
            "package-managers.uv.tool-layers.uv.launch: a tool layer must not be launch = true",
        ),
        (
            "[package-managers.uv]\ntool-layers = { python = { build = true } }\n[layers.runtime]\nname = 'python'\n",
            "layer 'python' is already the runtime role layer",
        ),
        (
            '[package-managers.uv]\ntool-layers = { uv = { build = true } }\nvenv = { name = "uv" }\n',
            "package-managers.uv.venv.name: layer 'uv' is already the package-managers.uv tool layer",
        ),
        (
            "[package-managers.uv.messages]\nvenv-discarded = 'since {old}'\n",
            "package-managers.uv.messages.venv-discarded: unknown placeholder {old}",
        ),
        ("[package-managers.uv.messages]\nstale-lock = '[unclosed'\n", "stale-lock: not a valid regular expression"),
        ("[package-managers.uv.messages]\nvenv-reused = ''\n", "venv-reused: must be a non-empty regex string"),
        ('[package-managers.uv]\ntool-version = { current = "1", other = "1" }\n', "tool-version.other: must differ"),
        (
            '[package-managers.uv]\ntool-version = { version-source = { file = "../x.toml", toml-key = "a" } }\n',
            "tool-version.version-source.file: '../x.toml' must be a path inside the buildpack directory",
        ),
        (
            '[package-managers.uv]\ntool-version = { version-source = { file = "b.toml" } }\n',
            "tool-version.version-source.toml-key: is required",
        ),
        ('[sbom]\nlaunch = "yes"\n', "sbom.launch: must be true or false"),
        ("[package-managers.uv]\nbuild-env = { UV_X = 1 }\n", 'build-env.UV_X: must be NAME = "value"'),
        ('[package-managers.uv]\nbuild-env = { "A B" = "1" }\n', "build-env.A B: must be NAME"),
        ("[messages]\nrefused-variables = 'sets {name}'\n", "messages.refused-variables: unknown placeholder {name}"),
        ("[apps]\nrefused-variable = 1\n", "apps.refused-variable: must be an app directory name or false"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    message = error_of(tmp_path, MINIMAL + text)
    assert fragment in message, message
    assert "profile " in message and "custom.toml" in message


def test_an_app_set_to_false_is_left_out_and_its_checks_skip(tmp_path: Path) -> None:
    """As in [apps]: `false` opts out (e.g. a buildpack that cannot build the shipped apps offline)."""
    text = MINIMAL + UV_TABLE.replace('apps = { main = "uv" }', 'apps = { main = false, stale-lock = "uv-stale-lock" }')
    uv = load_text(tmp_path, text).package_managers["uv"]
    assert uv.apps == {"stale-lock": "uv-stale-lock"}
    with pytest.raises(pytest.skip.Exception, match=r"no package-managers\.uv\.apps\.main"):
        requirements.need_manager_app(uv, "main")


def test_a_discard_message_without_reason_still_matches_the_discard(tmp_path: Path) -> None:
    """A buildpack that logs no reason (heroku/python) says so by leaving {reason} out of the template:
    the discard checks then verify the discard, not its reason."""
    text = (
        MINIMAL
        + UV_TABLE
        + "[package-managers.uv.messages]\nvenv-discarded = 'Discarding cached virtual environment$'\n"
    )
    uv = load_text(tmp_path, text).package_managers["uv"]
    pattern = uv.message("venv-discarded", reason=reason_pattern("3.13.5", "3.11.2"))
    assert pattern.search("Discarding cached virtual environment\nInstalling") and not pattern.search("Using cached")


def test_the_venv_may_share_the_app_deps_name_and_tables_are_independent(tmp_path: Path) -> None:
    text = MINIMAL + '[layers.app-deps]\nname = "venv"\nbuild = true\nlaunch = true\n' + UV_TABLE
    text += '[package-managers.poetry]\nvenv = { name = "venv", build = true, launch = true, cache = true }\n'
    profile = load_text(tmp_path, text)
    assert profile.package_managers["uv"].venv.name == profile.package_managers["poetry"].venv.name == "venv"
    assert profile.package_managers["poetry"].apps == {} and profile.package_managers["poetry"].tool_layers == ()


# ------------------------------------------------------------------------------------------------
# Messages and versions
# ------------------------------------------------------------------------------------------------


def test_reason_names_old_then_new_on_one_line(tmp_path: Path) -> None:
    uv = load_text(
        tmp_path, MINIMAL + UV_TABLE + "[package-managers.uv.messages]\nvenv-discarded = 'since: {reason}'\n"
    )
    pattern = uv.package_managers["uv"].message("venv-discarded", reason=reason_pattern("3.13.5", "3.11.2"))
    assert pattern.search("Discarding cached venv since: The Python version has changed from 3.13.5 to 3.11.2")
    assert pattern.search("since: - python 3.13.5 -> 3.11.2")
    assert not pattern.search("since: The Python version has changed from 3.11.2 to 3.13.5")
    assert not pattern.search("since: 3.13.5\nand later 3.11.2")
    assert not pattern.search("since: 3x13x5 to 3.11.2")  # the dots are literal
    with pytest.raises(ValueError, match="takes"):
        uv.package_managers["uv"].message("venv-reused", reason="x")


def test_write_version_edits_a_copy_and_names_a_wrong_key(tmp_path: Path) -> None:
    copy = tmp_path / "bp"
    shutil.copytree(BUILDPACK_DIR, copy)
    profile = load_profile("reference")
    source = {"file": "buildpack.toml", "toml-key": "metadata.uv-version"}
    write_version(copy, source, "0.13.8", where="package-managers.uv.tool-version.version-source", profile=profile)
    assert load_toml(copy / "buildpack.toml", what="bp")["metadata"]["uv-version"] == "0.13.8"
    assert load_toml(BUILDPACK_DIR / "buildpack.toml", what="bp")["metadata"]["uv-version"] == "0.13.9"
    with pytest.raises(ConformanceError, match=r"has no key metadata\.uv-versoin") as caught:
        write_version(
            copy, {"file": "buildpack.toml", "toml-key": "metadata.uv-versoin"}, "1", where="w", profile=profile
        )
    assert "fix w.toml-key" in caught.value.hint


# ------------------------------------------------------------------------------------------------
# The rebuild chain's plan (which steps a profile allows) and the apps' declared dependencies
# ------------------------------------------------------------------------------------------------


def test_history_leaves_out_the_steps_a_profile_cannot_make(tmp_path: Path) -> None:
    from conformance.suite.lockfile_history import LockfileHistory

    reference = load_profile("reference")
    for name, switch in (("uv", None), ("poetry", "the package-manager switch is checked from uv to poetry")):
        chain = LockfileHistory(None, reference, reference.package_managers[name], Path, tmp_path)  # type: ignore[arg-type]
        gaps = {step: chain._gap(step) for step in ("first", "unchanged", "python", "tool-version", "switch")}
        assert gaps == {"first": None, "unchanged": None, "python": None, "tool-version": None, "switch": switch}
    assert chain._gap("removed-dependency") is None  # the Poetry chain's too (testapps/poetry-removed-dependency)
    lone = load_text(tmp_path, MINIMAL + UV_TABLE)
    chain = LockfileHistory(None, lone, lone.package_managers["uv"], Path, tmp_path)  # type: ignore[arg-type]
    assert "python.alternative" in (chain._gap("python") or "")
    assert chain._gap("tool-version") == "profile custom has no package-managers.uv.tool-version"
    assert chain._gap("switch") == "profile custom has no package-managers.poetry to switch to"


def test_declared_dependencies_of_the_sample_apps() -> None:
    from conformance.suite.lockfile_history import declared_dependencies

    apps = load_profile("reference").apps_dir
    assert declared_dependencies(apps / "uv") == {"six"}
    assert declared_dependencies(apps / "poetry") == {"six"}  # "six @ file:///..." is still six
    assert declared_dependencies(apps / "uv-removed-dependency") == set()
    assert declared_dependencies(apps / "poetry-removed-dependency") == set()
    assert declared_dependencies(apps / "minimal") == set()  # no pyproject.toml
