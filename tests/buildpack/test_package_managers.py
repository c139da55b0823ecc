"""Package-manager selection, refused variables, requires-python, runtime.txt, SBOMs, lock-file venv
decisions: the pure logic of the uv / Poetry support, with no Docker and no tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomllib
from bpconform_python import lock_steps, lockfile, pyproject, sbom, tool_layers, versions
from bpconform_python.output import BuildpackError
from bpconform_python.package_manager import PackageManager, check_user_env, select_package_manager
from bpconform_python.versions import Version

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("names", "manager", "file"),
    [
        ({"requirements.txt", "app.py"}, PackageManager.PIP, "requirements.txt"),
        ({"pyproject.toml", "uv.lock"}, PackageManager.UV, "uv.lock"),
        ({"pyproject.toml", "poetry.lock"}, PackageManager.POETRY, "poetry.lock"),
        ({"app.py"}, PackageManager.PIP, None),
        ({"requirements.txt", "pyproject.toml"}, PackageManager.PIP, "requirements.txt"),
    ],
)
def test_one_package_manager_is_selected_by_its_file(names, manager, file) -> None:
    selection = select_package_manager(names)
    assert (selection.manager, selection.file) == (manager, file)


@pytest.mark.parametrize(
    ("names", "named"),
    [
        ({"requirements.txt", "uv.lock", "pyproject.toml"}, ["requirements.txt", "uv.lock"]),
        ({"poetry.lock", "uv.lock", "pyproject.toml"}, ["poetry.lock", "uv.lock"]),
        ({"requirements.txt", "Pipfile"}, ["requirements.txt", "Pipfile"]),
    ],
)
def test_two_package_managers_fail_naming_every_file(names, named) -> None:
    with pytest.raises(BuildpackError) as caught:
        select_package_manager(names)
    assert caught.value.title == "Multiple package manager files"
    assert all(name in caught.value.detail for name in named)


def test_pyproject_without_any_lock_file_fails_naming_it() -> None:
    with pytest.raises(BuildpackError) as caught:
        select_package_manager({"pyproject.toml", "app.py"})
    assert "pyproject.toml" in caught.value.detail and "uv.lock" in caught.value.detail


def test_lock_file_without_pyproject_fails() -> None:
    with pytest.raises(BuildpackError, match=r"uv\.lock without pyproject\.toml"):
        select_package_manager({"uv.lock"})


@pytest.mark.parametrize("names", [{"Pipfile"}, {"Pipfile", "Pipfile.lock"}, {"Pipfile.lock", "pyproject.toml"}])
def test_pipenv_is_refused_as_unsupported(names) -> None:
    with pytest.raises(BuildpackError) as caught:
        select_package_manager(names)
    assert caught.value.title == "Pipenv is not supported"


def test_redirecting_user_variables_are_refused_in_one_error() -> None:
    env = {"PIP_TARGET": "/t", "PIP_PREFIX": "/p", "UV_PROJECT_ENVIRONMENT": "/u", "PIP_INDEX_URL": "https://i"}
    with pytest.raises(BuildpackError) as caught:
        check_user_env(env)
    detail = caught.value.detail
    assert "PIP_TARGET='/t'" in detail and "PIP_PREFIX='/p'" in detail and "UV_PROJECT_ENVIRONMENT='/u'" in detail
    assert "PIP_INDEX_URL" not in detail  # an index setting redirects nothing
    for name in ("PIP_ROOT", "PIP_USER", "PYTHONHOME", "POETRY_VIRTUALENVS_PATH", "POETRY_VIRTUALENVS_IN_PROJECT"):
        with pytest.raises(BuildpackError, match=name):
            check_user_env({name: "x"})
    check_user_env({"PIP_INDEX_URL": "https://i", "PIP_NO_INDEX": "1", "VIRTUAL_ENV": "/v"})


@pytest.mark.parametrize(
    ("spec", "version", "allowed"),
    [
        (">=3.11", "3.13.5", True),
        (">=3.12", "3.11.2", False),
        (">=3.11,<3.13", "3.13.0", False),
        (">=3.11, <3.13", "3.12.9", True),
        ("==3.11.*", "3.11.2", True),
        ("==3.11.*", "3.13.5", False),
        ("!=3.12.*", "3.12.1", False),
        ("~=3.11", "3.13.5", True),
        ("~=3.11.2", "3.11.9", True),
        ("~=3.11.2", "3.12.0", False),
        ("==3.13.5", "3.13.5", True),
        (">3.13", "3.13.5", True),  # 3.13.5 > 3.13.0
        ("<=3.11", "3.11.2", False),
    ],
)
def test_requires_python_specifiers(spec, version, allowed) -> None:
    assert pyproject.allows(spec, Version.parse(version)) is allowed


def test_python_version_file_outside_requires_python_names_both_files() -> None:
    with pytest.raises(BuildpackError) as caught:
        pyproject.check_requires_python(">=3.12", Version(3, 11, 2), ".python-version")
    assert ".python-version" in caught.value.detail and "pyproject.toml" in caught.value.detail
    assert "3.11.2" in caught.value.detail and ">=3.12" in caught.value.detail
    with pytest.raises(BuildpackError, match=r"default Python version 3\.13\.5"):
        pyproject.check_requires_python("<3.13", Version(3, 13, 5), "buildpack.toml (default-python-version)")
    with pytest.raises(BuildpackError, match="not understood"):
        pyproject.check_requires_python("^3.11", Version(3, 13, 5), ".python-version")


def test_requires_python_is_read_from_the_project_table(tmp_path) -> None:
    path = tmp_path / "pyproject.toml"
    assert pyproject.read_requires_python(path) is None
    path.write_text('[project]\nname = "x"\nrequires-python = ">=3.12"\n')
    assert pyproject.read_requires_python(path) == ">=3.12"
    path.write_text("[tool.poetry]\n")
    assert pyproject.read_requires_python(path) is None


def test_runtime_txt_is_refused_with_the_python_version_equivalent(tmp_path) -> None:
    versions.refuse_runtime_txt(tmp_path)  # absent: fine
    (tmp_path / "runtime.txt").write_text("python-3.12.4\n")
    with pytest.raises(BuildpackError) as caught:
        versions.refuse_runtime_txt(tmp_path)
    assert "'3.12'" in caught.value.detail and ".python-version" in caught.value.detail


def fake_dist(site: Path, name: str, version: str, dir_name: str | None = None) -> None:
    info = site / f"{dir_name or name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nbody: Name: nope\n")


def test_venv_sbom_lists_each_installed_distribution_from_its_metadata(tmp_path) -> None:
    site = tmp_path / "venv" / "lib" / "python3.13" / "site-packages"
    fake_dist(site, "six", "1.17.0")
    fake_dist(site, "Jaraco.Classes", "3.4.0", dir_name="jaraco_classes")
    (site / "six.py").write_text("")
    (site / "stray.dist-info").mkdir()  # no METADATA: not a distribution
    path = sbom.write_sbom(tmp_path, "venv", sbom.venv_sbom(tmp_path / "venv"))
    assert path.name == "venv.sbom.cdx.json"
    document = json.loads(path.read_text())
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.5"
    assert [(c["name"], c["version"], c["purl"]) for c in document["components"]] == [
        ("Jaraco.Classes", "3.4.0", "pkg:pypi/jaraco-classes@3.4.0"),
        ("six", "1.17.0", "pkg:pypi/six@1.17.0"),
    ]
    assert "serialNumber" not in document and "timestamp" not in json.dumps(document)  # reproducible bytes


def test_python_sbom_names_the_interpreter(tmp_path) -> None:
    document = sbom.python_sbom("3.13.5")
    assert document["components"] == [sbom.python_component("3.13.5")]
    assert document["components"][0]["purl"] == "pkg:generic/cpython@3.13.5"


def test_buildpack_declares_the_sbom_format_and_pins_the_tools_the_wheelhouse_holds() -> None:
    descriptor = tomllib.loads((REPO / "buildpack_under_test" / "buildpack.toml").read_text())
    assert descriptor["buildpack"]["sbom-formats"] == [sbom.MEDIA_TYPE]
    from conformance.access import LOCKFILE_REQUIREMENTS

    meta = descriptor["metadata"]
    assert f"uv=={meta['uv-version']}" in LOCKFILE_REQUIREMENTS
    assert f"poetry=={meta['poetry-version']}" in LOCKFILE_REQUIREMENTS


VENV = {
    "package-manager": "uv",
    "package-manager-version": "0.13.9",
    "python-version": "3.13.5",
    "distro-name": "debian",
    "distro-version": "12",
    "arch": "amd64",
    "layer-format": "1",
}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"python-version": "3.11.2"}, "The Python version has changed from 3.11.2 to 3.13.5"),
        ({"package-manager-version": "0.13.8"}, "The package manager version has changed from 0.13.8 to 0.13.9"),
        ({"package-manager": "poetry", "package-manager-version": "2.5.1"}, "package manager has changed from poetry"),
        ({"distro-version": "13"}, "The OS distribution version has changed from 13 to 12"),
        ({"arch": "arm64"}, "The CPU architecture has changed from arm64 to amd64"),
    ],
)
def test_lock_file_venv_is_discarded_with_the_reason(change, reason) -> None:
    verdict = lock_steps.decide_venv({**VENV, **change}, VENV, contents_present=True)
    assert not verdict.reuse
    assert verdict.message.startswith("Discarding cached virtual environment since: ") and reason in verdict.message


def test_lock_file_venv_is_reused_when_nothing_changed_and_its_files_came_back() -> None:
    assert lock_steps.decide_venv(dict(VENV), VENV, contents_present=True).message == "Using cached virtual environment"
    assert not lock_steps.decide_venv(dict(VENV), VENV, contents_present=False).reuse
    fresh = lock_steps.decide_venv(None, VENV, contents_present=False)
    assert not fresh.reuse and fresh.message.startswith("No cached virtual environment found")
    pip_venv = {"python-version": "3.13.5"}  # what a pip build records
    from_pip = lock_steps.decide_venv(pip_venv, VENV, contents_present=False)
    assert "The package manager has changed from pip to uv" in from_pip.message


def test_lock_file_layer_types() -> None:
    assert lock_steps.LayerTypes(build=True, launch=True, cache=True) == lock_steps.LOCK_VENV_TYPES
    assert lock_steps.UV_TYPES == lock_steps.POETRY_TYPES == lock_steps.LayerTypes(build=True, cache=True)
    assert not lock_steps.UV_CACHE_TYPES.launch and not lock_steps.UV_CACHE_TYPES.cache


def test_uv_always_uses_the_buildpacks_python_and_the_lock() -> None:
    command = lockfile.uv_sync_command(Path("/l/uv/bin/uv"), Path("/l/python/bin/python3"), {})
    assert command[:5] == ["/l/uv/bin/uv", "sync", "--locked", "--no-default-groups", "--no-install-project"]
    assert command[command.index("--python") + 1] == "/l/python/bin/python3"
    env = lockfile.uv_env({"UV_PYTHON_DOWNLOADS": "automatic"}, Path("/l/venv"), Path("/l/uv-cache"))
    assert env["UV_PYTHON_DOWNLOADS"] == "never" and env["UV_NO_MANAGED_PYTHON"] == "1"
    assert env["UV_PROJECT_ENVIRONMENT"] == "/l/venv" and env["UV_CACHE_DIR"] == "/l/uv-cache"


def test_pip_offline_settings_are_given_to_uv_unless_uv_has_its_own() -> None:
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/bpconform/wheelhouse"}
    assert lockfile.uv_index_args(offline) == ["--no-index", "--find-links", "/bpconform/wheelhouse"]
    assert lockfile.uv_index_args({**offline, "UV_FIND_LINKS": "/w", "UV_NO_INDEX": "1"}) == []
    assert lockfile.uv_index_args({"PIP_INDEX_URL": "https://m/simple"}) == ["--default-index", "https://m/simple"]
    assert lockfile.uv_index_args({"PIP_NO_INDEX": "0"}) == []


def test_poetry_syncs_only_main_into_the_venv_layer(tmp_path) -> None:
    command = lockfile.poetry_sync_command(Path("/l/python/bin/python3"), Path("/l/poetry"))
    assert command[:5] == ["/l/python/bin/python3", "/l/poetry/bin/poetry", "sync", "--only", "main"]
    assert "-m" not in command
    env = lockfile.poetry_env({"POETRY_VIRTUALENVS_CREATE": "true"}, Path("/l/venv"), Path("/l/poetry"), tmp_path)
    assert env["VIRTUAL_ENV"] == "/l/venv" and env["POETRY_VIRTUALENVS_CREATE"] == "false"
    assert env["PYTHONUSERBASE"] == "/l/poetry"


@pytest.mark.parametrize(
    ("output", "stale"),
    [
        ("error: The lockfile at `uv.lock` needs to be updated, but `--locked` was provided.", True),
        ("pyproject.toml changed significantly since poetry.lock was last generated. Run `poetry lock` to fix", True),
        ("error: Failed to fetch: https://pypi.org/simple/six/", False),
    ],
)
def test_stale_lock_is_recognised_from_the_tools_output(output, stale) -> None:
    assert lockfile.is_stale_lock_output(output) is stale


def test_uv_binary_is_taken_out_of_the_wheel(tmp_path) -> None:
    import zipfile

    wheel = tmp_path / "uv-0.13.9-py3-none-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("uv/__init__.py", "")
        archive.writestr("uv-0.13.9.data/scripts/uv", b"#!binary")
    layer = tmp_path / "uv"
    binary = tool_layers.extract_uv_binary(wheel, layer)
    assert binary == layer / "bin" / "uv" and binary.read_bytes() == b"#!binary"
    assert tool_layers.uv_dir_is_complete(layer)
    assert sorted(p.name for p in layer.rglob("*")) == ["bin", "uv"]  # no Python package: nothing to import
