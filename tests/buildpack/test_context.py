from __future__ import annotations

from bpconform_python.context import effective_env, load_buildpack_config, read_platform_env, target_from_env
from conftest import BUILDPACK_DIR


def test_platform_env_files_are_read_verbatim(tmp_path) -> None:
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "PIP_NO_INDEX").write_text("1")
    (tmp_path / "env" / "NOTE").write_text("two\nlines\n")
    assert read_platform_env(tmp_path) == {"NOTE": "two\nlines\n", "PIP_NO_INDEX": "1"}
    assert read_platform_env(tmp_path / "missing") == {}


def test_process_env_wins_over_platform_files() -> None:
    merged = effective_env({"PATH": "/user:/usr/bin", "A": "env"}, {"PATH": "/user", "A": "file", "B": "file"})
    assert merged == {"PATH": "/user:/usr/bin", "A": "env", "B": "file"}


def test_target_from_cnb_variables() -> None:
    env = {
        "CNB_TARGET_OS": "linux",
        "CNB_TARGET_ARCH": "amd64",
        "CNB_TARGET_DISTRO_NAME": "debian",
        "CNB_TARGET_DISTRO_VERSION": "13",
    }
    target = target_from_env(env)
    assert (target.distro_name, target.distro_version, target.arch) == ("debian", "13", "amd64")
    assert target.describe() == "debian 13 (amd64)"


def test_target_falls_back_to_os_release(tmp_path) -> None:
    release = tmp_path / "os-release"
    release.write_text('ID=debian\nVERSION_ID="12"\n')
    target = target_from_env({}, release)
    assert (target.os, target.distro_name, target.distro_version) == ("linux", "debian", "12")


def test_shipped_buildpack_toml() -> None:
    config = load_buildpack_config(BUILDPACK_DIR)
    assert (config.id, config.version, config.pip_version) == ("bpconform/python", "0.1.0", "25.3")
    assert config.default_python_version == "3.13"
    assert config.runtime_manifest == "file:///bpconform/runtimes/manifest.toml"
