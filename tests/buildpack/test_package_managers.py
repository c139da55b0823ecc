"""Package-manager selection, refused variables, requires-python, runtime.txt, SBOMs, lock-file venv
decisions: the pure logic of the uv / Poetry support, with no Docker and no tools."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
import tomllib
from bpconform_python import (
    build,
    dependencies,
    lock_steps,
    lockfile,
    pyproject,
    sbom,
    tomlwriter,
    tool_layers,
    versions,
)
from bpconform_python.context import BuildpackConfig, Target
from bpconform_python.output import BuildpackError, Log
from bpconform_python.package_manager import PackageManager, check_user_env, select_package_manager
from bpconform_python.versions import Version

from conformance.access import LOCKFILE_REQUIREMENTS

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
    wheel = tmp_path / "uv-0.13.9-py3-none-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("uv/__init__.py", "")
        archive.writestr("uv-0.13.9.data/scripts/uv", b"#!binary")
    layer = tmp_path / "uv"
    binary = tool_layers.extract_uv_binary(wheel, layer)
    assert binary == layer / "bin" / "uv" and binary.read_bytes() == b"#!binary"
    assert tool_layers.uv_dir_is_complete(layer)
    assert sorted(p.name for p in layer.rglob("*")) == ["bin", "uv"]  # no Python package: nothing to import


# ------------------------------------------------------------------------------------------------
# The lock-file build steps end to end, with the tools and the venv creation faked
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def fake_tools(monkeypatch):
    calls: list[str] = []

    def fake_install_uv(python, python_layer, uv_layer, version, environ):
        calls.append(f"install uv {version}")
        (uv_layer / "bin").mkdir(parents=True)
        (uv_layer / "bin" / "uv").write_text("")
        (uv_layer / "bin" / "uv").chmod(0o755)

    def fake_install_poetry(python, python_layer, poetry_layer, version, environ):
        calls.append(f"install poetry {version}")
        (poetry_layer / "lib/python3.13/site-packages/poetry").mkdir(parents=True)
        (poetry_layer / "lib/python3.13/site-packages/poetry/__main__.py").write_text("")
        (poetry_layer / "bin").mkdir()
        (poetry_layer / "bin" / "poetry").write_text("")

    def fake_create_venv(python, venv_dir, environ):
        calls.append("create venv")
        (venv_dir / "bin").mkdir(parents=True)
        (venv_dir / "bin" / "python").write_text("")
        (venv_dir / "pyvenv.cfg").write_text("")
        fake_dist(venv_dir / "lib/python3.13/site-packages", "six", "1.17.0")

    def fake_uv_sync(uv, python, app_dir, venv_dir, uv_cache, environ):
        calls.append(f"uv sync into {venv_dir.name} with cache {uv_cache.name}")

    def fake_poetry_sync(python, poetry_layer, app_dir, venv_dir, environ):
        calls.append(f"poetry sync into {venv_dir.name}")

    monkeypatch.setattr(tool_layers, "install_uv", fake_install_uv)
    monkeypatch.setattr(tool_layers, "install_poetry", fake_install_poetry)
    monkeypatch.setattr(dependencies, "create_venv", fake_create_venv)
    monkeypatch.setattr(lockfile, "uv_sync", fake_uv_sync)
    monkeypatch.setattr(lockfile, "poetry_sync", fake_poetry_sync)
    return calls


def lock_inputs(tmp_path: Path):
    config = BuildpackConfig("bpconform/python", "0.1.0", "25.3", "3.13", "file:///m.toml", "0.13.9", "2.5.1")
    layers = tmp_path / "layers"
    layers.mkdir(exist_ok=True)
    return build.BuildInputs(
        tmp_path / "app", layers, tmp_path / "platform", config, Target("linux", "amd64", "debian", "12"), {}
    )


def run_lock_steps(tmp_path: Path, manager: PackageManager, python_version: str = "3.13.5") -> list[str]:
    out = io.StringIO()
    inputs = lock_inputs(tmp_path)
    (tmp_path / "python" / "bin").mkdir(parents=True, exist_ok=True)
    lock_steps.install_locked_dependencies(inputs, manager, python_version, tmp_path / "python", Log(out))
    return [line for line in out.getvalue().splitlines() if line and not line.startswith("[")]


def restore_metadata_only(layers: Path) -> None:
    """What a platform restores: [metadata] of every toml (never [types]); cache layers keep their dirs."""
    for toml in layers.glob("*.toml"):
        data = tomllib.loads(toml.read_text())
        if not data.get("types", {}).get("cache"):
            shutil.rmtree(layers / toml.stem, ignore_errors=True)
            toml.unlink()
            continue
        toml.write_text(tomlwriter.dumps({"metadata": data.get("metadata", {})}))


def test_uv_steps_write_the_layers_and_reuse_the_venv(tmp_path, fake_tools) -> None:
    assert run_lock_steps(tmp_path, PackageManager.UV) == [
        "No cached uv found; installing uv 0.13.9",
        "No cached virtual environment found; creating a new virtual environment",
        "Running uv sync --locked --no-default-groups",
    ]
    layers = tmp_path / "layers"
    types = {name: tomllib.loads((layers / f"{name}.toml").read_text())["types"] for name in ("uv", "uv-cache", "venv")}
    assert types == {
        "uv": {"build": True, "launch": False, "cache": True},
        "uv-cache": {"build": True, "launch": False, "cache": False},
        "venv": {"build": True, "launch": True, "cache": True},
    }
    assert (layers / "uv/env.build/UV_PYTHON_DOWNLOADS.override").read_text() == "never"
    assert (layers / "venv/env.build/UV_PROJECT_ENVIRONMENT.override").read_text() == str(layers / "venv")
    assert (layers / "venv/env/VIRTUAL_ENV.override").read_text() == str(layers / "venv")
    assert not (layers / "pip").exists() and not (layers / "pip.toml").exists()

    restore_metadata_only(layers)
    assert run_lock_steps(tmp_path, PackageManager.UV) == [
        "Using cached uv 0.13.9",
        "Using cached virtual environment",
        "Running uv sync --locked --no-default-groups",
    ]
    restore_metadata_only(layers)
    lines = run_lock_steps(tmp_path, PackageManager.UV, python_version="3.11.2")
    assert lines[1] == (
        "Discarding cached virtual environment since: The Python version has changed from 3.13.5 to 3.11.2"
    )
    assert fake_tools.count("create venv") == 2 and fake_tools.count("install uv 0.13.9") == 1


def test_switching_from_poetry_to_uv_discards_the_venv(tmp_path, fake_tools) -> None:
    assert run_lock_steps(tmp_path, PackageManager.POETRY)[:3] == [
        "No cached Poetry found; installing Poetry 2.5.1",
        "No cached virtual environment found; creating a new virtual environment",
        "Running poetry sync --only main",
    ]
    layers = tmp_path / "layers"
    assert tomllib.loads((layers / "poetry.toml").read_text())["types"] == {
        "build": True,
        "launch": False,
        "cache": True,
    }
    assert (layers / "poetry/env.build/PYTHONUSERBASE.override").read_text() == str(layers / "poetry")
    restore_metadata_only(layers)
    lines = run_lock_steps(tmp_path, PackageManager.UV)
    assert "Discarding cached virtual environment since: The package manager has changed from poetry to uv" in lines


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        ("uv", "uv"),
        ("uv-removed-dependency", "uv"),
        ("uv-stale-lock", "uv"),  # stale only by uv's own check, at build
        ("poetry", "poetry"),
        ("poetry-stale-lock", "poetry"),
        ("poetry-removed-dependency", "poetry"),
        ("requires-python-mismatch", "uv"),  # fails at the version check, after selection
        ("minimal", "pip"),
        ("pip-target", "pip"),  # fails only with PIP_TARGET in the user env
        ("two-package-managers", "Multiple package manager files"),
        ("pipenv", "Pipenv is not supported"),
        ("runtime-txt", "runtime.txt is not supported"),
    ],
)
def test_sample_apps_select_their_package_manager(app, expected) -> None:
    """The shipped samples are what their READMEs say, without a build."""
    app_dir = REPO / "testapps" / app
    try:
        versions.refuse_runtime_txt(app_dir)
        outcome = select_package_manager(p.name for p in app_dir.iterdir() if p.is_file()).manager.value
    except BuildpackError as exc:
        outcome = exc.title
    assert outcome == expected


def test_sample_locks_point_at_the_wheelhouse_path_in_build_containers() -> None:
    """Offline builds need the locks made against /bpconform/wheelhouse (README, "Offline builds")."""
    uv_lock = tomllib.loads((REPO / "testapps" / "uv" / "uv.lock").read_text())
    registries = {p["source"].get("registry") for p in uv_lock["package"] if "registry" in p["source"]}
    assert registries == {"/bpconform/wheelhouse"}
    poetry_lock = tomllib.loads((REPO / "testapps" / "poetry" / "poetry.lock").read_text())
    urls = {p["name"]: p["source"]["url"] for p in poetry_lock["package"]}
    assert urls == {
        "six": "../bpconform/wheelhouse/six-1.17.0-py2.py3-none-any.whl",  # relative to /workspace
        "idna": "../bpconform/wheelhouse/idna-3.10-py3-none-any.whl",
    }
    assert {f"{p['name']}=={p['version']}" for p in poetry_lock["package"]} <= set(LOCKFILE_REQUIREMENTS)


OFFLINE_ENV = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/bpconform/wheelhouse"}
UV_STALE = "error: The lockfile at `uv.lock` needs to be updated, but `--locked` was provided."


def _pypi_locked_uv_app(tmp_path: Path) -> Path:
    """The uv sample with its lock as if made against PyPI (what a new user's `uv lock` records)."""
    app = tmp_path / "app"
    shutil.copytree(REPO / "testapps" / "uv", app)
    lock = (app / "uv.lock").read_text()
    assert 'registry = "/bpconform/wheelhouse"' in lock
    (app / "uv.lock").write_text(
        lock.replace('registry = "/bpconform/wheelhouse"', 'registry = "https://pypi.org/simple"')
    )
    return app


def test_pypi_lock_built_offline_names_the_registries_not_a_stale_lock(tmp_path) -> None:
    error = lockfile.uv_failure(_pypi_locked_uv_app(tmp_path), OFFLINE_ENV, UV_STALE, 2)
    assert error.title == "uv.lock was locked against another package index"
    assert "out of date" not in error.title and "pyproject.toml was changed" not in error.detail
    assert "`https://pypi.org/simple`" in error.detail  # the lock's registry
    assert "this build uses `/bpconform/wheelhouse`" in error.detail  # the build's
    assert "without --offline" in error.detail
    assert "uv lock --no-index --find-links /bpconform/wheelhouse" in error.detail


def test_stale_lock_samples_keep_the_stale_lock_message(tmp_path) -> None:
    """The suite's stale_lock check and the profile regex `\\[Error: {file} is out of date\\]` need this."""
    app = tmp_path / "app"
    shutil.copytree(REPO / "testapps" / "uv-stale-lock", app)
    offline = lockfile.uv_failure(app, OFFLINE_ENV, UV_STALE, 2)
    assert offline.title == "uv.lock is out of date"
    online = lockfile.uv_failure(_pypi_locked_uv_app(tmp_path / "online"), {}, UV_STALE, 2)
    assert online.title == "uv.lock is out of date"  # PyPI is the default index online


def test_build_registries_follow_uv_and_pip_settings(tmp_path) -> None:
    assert lockfile.uv_build_registries({}) == ["https://pypi.org/simple"]
    assert lockfile.uv_build_registries(OFFLINE_ENV) == ["/bpconform/wheelhouse"]
    assert lockfile.uv_build_registries({"PIP_INDEX_URL": "https://m/simple/"}) == ["https://m/simple/"]
    assert lockfile.uv_build_registries({**OFFLINE_ENV, "UV_NO_INDEX": "0"}) == [
        "/bpconform/wheelhouse",
        "https://pypi.org/simple",
    ]
    (tmp_path / "pyproject.toml").write_text('[[tool.uv.index]]\nname = "corp"\nurl = "https://corp/simple"\n')
    assert "https://corp/simple" in lockfile.uv_build_registries({}, tmp_path / "pyproject.toml")
    assert lockfile.unreachable_registries(["https://m/simple"], ["https://m/simple/"]) == []
    assert lockfile.unreachable_registries(["/w"], ["file:///w/"]) == []
    error = lockfile.registry_mismatch_error("uv.lock", ["https://a", "https://b"], [])
    assert "registries `https://a`, `https://b`" in error.detail and "no index and no find-links" in error.detail
    own = lockfile.registry_mismatch_error("uv.lock", ["https://pypi.org/simple"], ["file:///srv/wheels/"])
    assert "`uv lock --no-index --find-links /srv/wheels`" in own.detail  # the build's own directory


def test_one_refused_variable_is_named_in_the_singular() -> None:
    with pytest.raises(BuildpackError) as one:
        check_user_env({"PIP_TARGET": "/t"})
    assert "This variable would make" in one.value.detail and "Remove it from" in one.value.detail
    assert "Remove them" not in one.value.detail
    with pytest.raises(BuildpackError) as two:
        check_user_env({"PIP_TARGET": "/t", "PIP_USER": "1"})
    assert "These variables would make" in two.value.detail and "Remove them from" in two.value.detail


def test_poetry_lock_from_pypi_offline_says_how_to_build_it() -> None:
    """Poetry 2.5.1's words for a PyPI lock synced offline (measured in a --network none container)."""
    output = "  - Installing six (1.17.0)\n\n    | All attempts to connect to pypi.org failed.\n"
    offline = lockfile.poetry_failure(OFFLINE_ENV, output, 1)
    assert offline.title == "Could not install dependencies"
    assert "without --offline" in offline.detail and "cannot use the wheelhouse" in offline.detail
    assert "file:///bpconform/wheelhouse/" in offline.detail
    online = lockfile.poetry_failure({}, output, 1)
    assert "without --offline" not in online.detail
    stale = lockfile.poetry_failure(OFFLINE_ENV, "Run `poetry lock` to fix the lock file.", 1)
    assert stale.title == "poetry.lock is out of date"
