"""The build steps' cache behaviour with the slow parts (download, pip) replaced by fakes."""

from __future__ import annotations

import io
import stat
import sys
from pathlib import Path

import pytest
import tomllib
from bpconform_python import build, dependencies, pip_layer, runtime
from bpconform_python.context import BuildpackConfig, Target
from bpconform_python.output import Log
from bpconform_python.versions import Version

TARGET = Target("linux", "amd64", "debian", "12")
RUNTIME = runtime.Runtime(Version(3, 13, 5), "file:///rt.tgz", "a" * 64, "debian", "12", "amd64")


def inputs(tmp_path: Path, pip_version: str = "25.3") -> build.BuildInputs:
    config = BuildpackConfig("bpconform/python", "0.1.0", pip_version, "3.13", "file:///m.toml")
    layers = tmp_path / "layers"
    layers.mkdir(exist_ok=True)
    return build.BuildInputs(tmp_path / "app", layers, tmp_path / "platform", config, TARGET, {})


@pytest.fixture
def fakes(monkeypatch):
    calls: list[str] = []

    def fake_install_runtime(chosen, layer_dir, environ):
        calls.append(f"runtime {chosen.version}")
        (layer_dir / "bin").mkdir(parents=True)
        (layer_dir / "bin" / "python3").write_text("")

    def fake_install_pip(python, python_layer, pip_dir, cache_dir, version, environ):
        calls.append(f"pip {version}")
        (pip_dir / "lib/python3.13/site-packages/pip").mkdir(parents=True)
        (pip_dir / "lib/python3.13/site-packages/pip/__init__.py").write_text("")
        (pip_dir / "bin").mkdir()
        (pip_dir / "bin" / "pip").write_text("")

    monkeypatch.setattr(runtime, "install_runtime", fake_install_runtime)
    monkeypatch.setattr(pip_layer, "install_pip", fake_install_pip)
    return calls


def restore_like_a_platform(layers: Path) -> None:
    """Keep only [metadata] in every toml (types are never restored)."""
    for toml in layers.glob("*.toml"):
        metadata = tomllib.loads(toml.read_text()).get("metadata", {})
        toml.write_text("[metadata]\n" + "".join(f'{k} = "{v}"\n' for k, v in metadata.items()))


def run_steps(build_inputs: build.BuildInputs) -> list[str]:
    out = io.StringIO()
    log = Log(out)
    python_layer = build.install_python(build_inputs, RUNTIME, log)
    build.install_pip(build_inputs, RUNTIME, python_layer, log)
    return [line for line in out.getvalue().splitlines() if line and not line.startswith("[")]


def test_first_build_then_full_reuse(tmp_path, fakes) -> None:
    assert run_steps(inputs(tmp_path)) == [
        "No cached Python found; installing Python 3.13.5",
        f"Downloading Python 3.13.5 from file:///rt.tgz (sha256 {'a' * 12}...)",
        "No cached pip found; installing pip 25.3",
        "No cached pip cache found; starting an empty pip cache",
    ]
    restore_like_a_platform(tmp_path / "layers")
    assert run_steps(inputs(tmp_path)) == [
        "Using cached Python 3.13.5",
        "Using cached pip 25.3",
        "Using cached pip cache",
    ]
    assert fakes == ["runtime 3.13.5", "pip 25.3"]


def test_pip_upgrade_rebuilds_only_the_pip_layer(tmp_path, fakes) -> None:
    run_steps(inputs(tmp_path, "25.2"))
    marker = tmp_path / "layers" / "python" / "untouched"
    marker.write_text("")
    restore_like_a_platform(tmp_path / "layers")
    lines = run_steps(inputs(tmp_path, "25.3"))
    assert lines == [
        "Using cached Python 3.13.5",
        "Discarding cached pip 25.2 since: The pip version has changed from 25.2 to 25.3",
        "Using cached pip cache",
    ]
    assert marker.exists()
    assert fakes == ["runtime 3.13.5", "pip 25.2", "pip 25.3"]


def test_layer_tomls_and_env_files(tmp_path, fakes) -> None:
    run_steps(inputs(tmp_path))
    layers = tmp_path / "layers"
    types = {
        name: tomllib.loads((layers / f"{name}.toml").read_text())["types"] for name in ("python", "pip", "pip-cache")
    }
    assert types == {
        "python": {"build": True, "launch": True, "cache": True},
        "pip": {"build": True, "launch": False, "cache": True},
        "pip-cache": {"build": False, "launch": False, "cache": True},
    }
    assert "pip-version" not in tomllib.loads((layers / "python.toml").read_text())["metadata"]
    assert (layers / "python/env/LANG.default").read_text() == "C.UTF-8"
    assert (layers / "python/env/PYTHONUNBUFFERED.default").read_text() == "1"
    assert (layers / "python/env.build/SOURCE_DATE_EPOCH.default").read_text() == "315532801"
    assert (layers / "pip/env.build/PYTHONUSERBASE.override").read_text() == str(layers / "pip")
    assert (layers / "pip/env.build/PIP_CACHE_DIR.default").read_text() == str(layers / "pip-cache")
    assert not any(layers.rglob("PYTHONPATH*"))
    assert not any(layers.rglob("*.prepend")) and not any(layers.rglob("*.append"))


def test_layer_names_put_venv_before_python_on_path() -> None:
    # within a buildpack the alphabetically last layer comes first on PATH
    names = [build.PIP_LAYER, build.PIP_CACHE_LAYER, build.PYTHON_LAYER, build.VENV_LAYER]
    assert sorted(names, reverse=True)[:2] == [build.VENV_LAYER, build.PYTHON_LAYER]


def test_tool_env_keeps_user_pip_settings_and_drops_pythonhome() -> None:
    env = pip_layer.tool_env(
        {"PIP_INDEX_URL": "https://idx", "PYTHONHOME": "/x", "SOURCE_DATE_EPOCH": "42"}, PYTHONUSERBASE="/p"
    )
    assert env["PIP_INDEX_URL"] == "https://idx" and env["PYTHONUSERBASE"] == "/p"
    assert "PYTHONHOME" not in env
    assert env["SOURCE_DATE_EPOCH"] == "42"  # the platform's value wins
    assert pip_layer.tool_env({})["SOURCE_DATE_EPOCH"] == "315532801"


def test_pip_runs_from_its_wheel_and_from_the_pip_layer_script() -> None:
    bootstrap = pip_layer.pip_bootstrap_command(Path("/py/bin/python3"), Path("/w/pip-24.0-py3-none-any.whl"), "25.3")
    assert bootstrap[:4] == ["/py/bin/python3", "/w/pip-24.0-py3-none-any.whl/pip", "install", "--user"]
    assert bootstrap[-1] == "pip==25.3"
    install = dependencies.pip_install_command(Path("/py/bin/python3"), Path("/l/pip"), Path("/app/requirements.txt"))
    assert install[:3] == ["/py/bin/python3", "/l/pip/bin/pip", "install"]
    assert "-m" not in install  # `-m` would put the app dir first on sys.path


def test_venv_bin_and_site_packages_become_group_writable(tmp_path) -> None:
    site = tmp_path / "lib" / "python3.13" / "site-packages"
    site.mkdir(parents=True)
    (site / "pkg").mkdir()
    (tmp_path / "bin").mkdir()
    for path in (tmp_path, tmp_path / "bin", site, site / "pkg"):
        path.chmod(0o755)
    dependencies.make_group_writable(tmp_path)
    assert stat.S_IMODE((tmp_path / "bin").stat().st_mode) == 0o775
    assert stat.S_IMODE(site.stat().st_mode) == 0o775
    assert stat.S_IMODE((site / "pkg").stat().st_mode) == 0o755  # installed packages stay protected
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


def test_site_packages_pruned_by_a_sync_is_made_again(tmp_path) -> None:
    """Poetry prunes the dirs an uninstall leaves empty: dropping a venv's last package took site-packages."""
    (tmp_path / "bin").mkdir()
    made = dependencies.ensure_site_packages(tmp_path, "3.13.5")
    assert made == tmp_path / "lib" / "python3.13" / "site-packages" and made.is_dir()
    (made / "six.py").write_text("")
    assert dependencies.ensure_site_packages(tmp_path, "3.11.2") == made  # an existing one is kept as it is
    assert dependencies.make_group_writable(tmp_path) == [tmp_path / "bin", made]


def test_bundled_pip_wheel_missing_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(Exception, match="bundled pip"):
        pip_layer.bundled_pip_wheel(tmp_path)


def test_pip_layer_is_compiled_to_hash_checked_pycs_that_do_not_depend_on_mtimes(tmp_path) -> None:
    """pip installs with --no-compile; the layer must still come out compiled, reproducibly."""
    package = tmp_path / "lib" / "python3.x" / "site-packages" / "pip"
    package.mkdir(parents=True)
    for name in ("__init__.py", "cli.py", "resolver.py"):
        (package / name).write_text(f"NAME = {name!r}\n")
    pip_layer.compile_pip(Path(sys.executable), tmp_path, {})
    pycs = sorted((package / "__pycache__").glob("*.pyc"))
    assert len(pycs) == 3
    first = {pyc.name: pyc.read_bytes() for pyc in pycs}
    assert all(int.from_bytes(data[4:8], "little") == 0b11 for data in first.values())  # checked hash
    for source in package.glob("*.py"):
        source.touch()
    for pyc in pycs:
        pyc.unlink()
    pip_layer.compile_pip(Path(sys.executable), tmp_path, {})
    assert {pyc.name: pyc.read_bytes() for pyc in pycs} == first


def test_pip_byte_compile_failure_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "broken.py").write_text("def (:\n")
    with pytest.raises(Exception, match="byte-compile pip") as caught:
        pip_layer.compile_pip(Path(sys.executable), tmp_path, {})
    assert "broken.py" in caught.value.detail
