"""bin/detect and bin/build as the lifecycle runs them (host python3 stands in for the build image's)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import tomllib
from conftest import BUILDPACK_DIR

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="the buildpack needs Python 3.11+ (tomllib)")


def run_bin(name: str, cwd, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": "/usr/bin:/bin",  # like the build image (no pyenv shims reading .python-version)
        "CNB_BUILDPACK_DIR": str(BUILDPACK_DIR),
        **(env or {}),
    }
    return subprocess.run(
        [str(BUILDPACK_DIR / "bin" / name), *args], cwd=cwd, env=environment, capture_output=True, text=True
    )


def test_detect_passes_and_writes_plan(tmp_path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "requirements.txt").write_text("")
    result = run_bin("detect", app, str(tmp_path), str(tmp_path / "plan.toml"))
    assert result.returncode == 0, result.stderr
    assert tomllib.loads((tmp_path / "plan.toml").read_text())["provides"] == [{"name": "python"}]


def test_detect_fails_with_100(tmp_path) -> None:
    result = run_bin("detect", tmp_path, str(tmp_path), str(tmp_path / "plan.toml"))
    assert result.returncode == 100
    assert "No Python app detected" in result.stdout
    assert not (tmp_path / "plan.toml").exists()


def _build_dirs(tmp_path, manifest_text: str):
    app, layers, platform = tmp_path / "app", tmp_path / "layers", tmp_path / "platform"
    for path in (app, layers, platform / "env"):
        path.mkdir(parents=True)
    (tmp_path / "manifest.toml").write_text(manifest_text)
    (platform / "env" / "BP_PYTHON_RUNTIME_MANIFEST").write_text((tmp_path / "manifest.toml").as_uri())
    return app, layers, platform


TARGET_ENV = {
    "CNB_TARGET_OS": "linux",
    "CNB_TARGET_ARCH": "amd64",
    "CNB_TARGET_DISTRO_NAME": "debian",
    "CNB_TARGET_DISTRO_VERSION": "12",
}


def test_bad_python_version_file_fails_without_traceback(tmp_path) -> None:
    app, layers, platform = _build_dirs(
        tmp_path,
        '[[runtimes]]\nversion = "3.13.5"\ndistro-name = "debian"\ndistro-version = "12"\narch = "amd64"\n'
        'url = "file:///nope"\nsha256 = "0"\n',
    )
    (app / ".python-version").write_text("3.8\n")
    result = run_bin("build", app, str(layers), str(platform), str(tmp_path / "plan.toml"), env=TARGET_ENV)
    assert result.returncode == 1
    assert result.stderr == ""  # one stream: see test_build_output_is_one_stream_in_the_order_written
    assert "[Determining Python version]" in result.stdout
    assert "[Error: Unsupported Python version]" in result.stdout
    assert "'3.8' in .python-version" in result.stdout
    assert "Supported Python versions for debian 12 (amd64): 3.13." in result.stdout
    assert "Traceback" not in result.stdout


def test_unexpected_exception_is_one_paragraph_unless_bp_debug(tmp_path) -> None:
    app, _layers, platform = _build_dirs(tmp_path, "")
    # a layers "directory" that is a file makes the buildpack fail in a way it does not foresee
    bogus_layers = tmp_path / "layers-file"
    bogus_layers.write_text("")
    (tmp_path / "manifest.toml").write_text(
        '[[runtimes]]\nversion = "3.13.5"\ndistro-name = "debian"\ndistro-version = "12"\narch = "amd64"\n'
        f'url = "{(tmp_path / "rt.tgz").as_uri()}"\nsha256 = "0"\n'
    )
    args = (str(bogus_layers), str(platform), str(tmp_path / "plan.toml"))
    result = run_bin("build", app, *args, env=TARGET_ENV)
    assert result.returncode == 1
    assert "[Error: Internal buildpack error]" in result.stdout
    assert "bpconform/python 0.1.0 failed unexpectedly" in result.stdout
    assert "Traceback" not in result.stdout
    (platform / "env" / "BP_DEBUG").write_text("1")
    debug = run_bin("build", app, *args, env=TARGET_ENV)
    assert "Traceback" in debug.stdout and "[Error: Internal buildpack error]" in debug.stdout


def _bad_version_app(tmp_path):
    app, layers, platform = _build_dirs(
        tmp_path,
        '[[runtimes]]\nversion = "3.13.5"\ndistro-name = "debian"\ndistro-version = "12"\narch = "amd64"\n'
        'url = "file:///nope"\nsha256 = "0"\n',
    )
    (app / ".python-version").write_text("3.8\n")
    return app, (str(layers), str(platform), str(tmp_path / "plan.toml"))


def test_build_output_is_one_stream_in_the_order_written(tmp_path) -> None:
    """Separate pipes: everything arrives on stdout, so no platform can reorder banner and error.

    (`docker exec` reads the two pipes independently; flushing alone let the `[Error ...]` block
    arrive before the banner written earlier.)
    """
    app, args = _bad_version_app(tmp_path)
    result = run_bin("build", app, *args, env=TARGET_ENV)
    assert result.returncode == 1
    assert result.stderr == "", "the buildpack's stderr must go down its stdout pipe"
    banner = result.stdout.index("bpconform/python 0.1.0 on debian 12 (amd64)")
    section = result.stdout.index("[Determining Python version]")
    error = result.stdout.index("[Error: Unsupported Python version]")
    assert banner < section < error


def test_build_output_to_one_file_keeps_the_banner_first(tmp_path) -> None:
    """stdout and stderr to one file (`> log 2>&1`): the order the buildpack wrote them."""
    app, args = _bad_version_app(tmp_path)
    log = tmp_path / "build.log"
    environment = {"PATH": "/usr/bin:/bin", "CNB_BUILDPACK_DIR": str(BUILDPACK_DIR), **TARGET_ENV}
    with log.open("w") as sink:
        code = subprocess.run(
            [str(BUILDPACK_DIR / "bin" / "build"), *args], cwd=app, env=environment, stdout=sink, stderr=sink
        ).returncode
    text = log.read_text()
    assert code == 1
    assert text.startswith("bpconform/python 0.1.0 on debian 12 (amd64)\n"), text
    assert text.index("[Determining Python version]") < text.index("[Error: Unsupported Python version]")
