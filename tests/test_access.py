"""Package access: what a container gets (mounts, platform env), CA discovery, wheelhouse stamp."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conformance import access
from conformance.access import CA_BUNDLE_TARGET, WHEELHOUSE_TARGET, PackageAccess
from conformance.engine import Mount
from conformance.errors import ConformanceError

CA_VARIABLES = ("BPCONFORM_CA_BUNDLE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


@pytest.fixture
def no_ca_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No CA variables and no system bundle, so each test states exactly what exists."""
    for name in CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    missing = tmp_path / "no-system-bundle.crt"
    monkeypatch.setattr(access, "SYSTEM_CA_BUNDLE", missing)
    return missing


def _file(path: Path, text: str = "pem\n") -> Path:
    path.write_text(text)
    return path


# --- platform_env and mounts -----------------------------------------------------------------


def test_offline_tells_pip_to_use_only_the_mounted_wheelhouse(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    pa = access.offline(wheels)
    assert pa.platform_env() == {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": WHEELHOUSE_TARGET}
    assert pa.mounts() == [Mount(wheels.resolve(), WHEELHOUSE_TARGET, read_only=True)]


def test_online_with_ca_mounts_bundle_read_only_and_names_it_for_pip_and_openssl(tmp_path: Path) -> None:
    bundle = _file(tmp_path / "ca.pem")
    pa = access.online(bundle)
    assert pa.mode == "online"
    assert pa.platform_env() == {"PIP_CERT": CA_BUNDLE_TARGET, "SSL_CERT_FILE": CA_BUNDLE_TARGET}
    assert pa.mounts() == [Mount(bundle.resolve(), CA_BUNDLE_TARGET, read_only=True)]
    assert "PIP_NO_INDEX" not in pa.platform_env()


def test_online_without_any_bundle_adds_nothing(no_ca_env: Path) -> None:
    pa = access.online()
    assert pa.ca_bundle is None
    assert pa.mounts() == []
    assert pa.platform_env() == {}


def test_offline_with_a_ca_bundle_gets_both(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    pa = PackageAccess("offline", wheels, _file(tmp_path / "ca.pem"))
    assert pa.platform_env() == {
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": WHEELHOUSE_TARGET,
        "PIP_CERT": CA_BUNDLE_TARGET,
        "SSL_CERT_FILE": CA_BUNDLE_TARGET,
    }
    assert [m.target for m in pa.mounts()] == [WHEELHOUSE_TARGET, CA_BUNDLE_TARGET]
    assert all(m.read_only for m in pa.mounts())


def test_ca_bundle_symlink_is_mounted_by_its_target(tmp_path: Path) -> None:
    real = _file(tmp_path / "real.pem")
    link = tmp_path / "link.pem"
    link.symlink_to(real)
    assert access.online(link).mounts()[0].source == real


def test_bad_records_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(ConformanceError, match="unknown package access mode"):
        PackageAccess("sometimes")
    with pytest.raises(ConformanceError, match="needs a wheelhouse"):
        PackageAccess("offline")
    with pytest.raises(ConformanceError, match="not a directory") as err:
        access.offline(tmp_path / "missing")
    assert err.value.hint
    with pytest.raises(ConformanceError, match="not a file"):
        access.online(tmp_path / "missing.pem")


# --- default_ca_bundle precedence ------------------------------------------------------------


def test_explicit_variable_wins_over_everything(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_ca_env) -> None:
    explicit = _file(tmp_path / "explicit.pem")
    monkeypatch.setenv("BPCONFORM_CA_BUNDLE", str(explicit))
    monkeypatch.setenv("SSL_CERT_FILE", str(_file(tmp_path / "ssl.pem")))
    monkeypatch.setattr(access, "SYSTEM_CA_BUNDLE", _file(tmp_path / "system.pem"))
    assert access.default_ca_bundle() == explicit


def test_explicit_variable_naming_a_missing_file_is_an_error(monkeypatch: pytest.MonkeyPatch, no_ca_env) -> None:
    monkeypatch.setenv("BPCONFORM_CA_BUNDLE", "/nonexistent/ca.pem")
    with pytest.raises(ConformanceError, match="BPCONFORM_CA_BUNDLE") as err:
        access.default_ca_bundle()
    assert err.value.hint


def test_ssl_cert_file_before_requests_ca_bundle_before_system(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_ca_env
) -> None:
    system = _file(tmp_path / "system.pem")
    requests_bundle = _file(tmp_path / "requests.pem")
    ssl_bundle = _file(tmp_path / "ssl.pem")
    monkeypatch.setattr(access, "SYSTEM_CA_BUNDLE", system)
    assert access.default_ca_bundle() == system
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(requests_bundle))
    assert access.default_ca_bundle() == requests_bundle
    monkeypatch.setenv("SSL_CERT_FILE", str(ssl_bundle))
    assert access.default_ca_bundle() == ssl_bundle


def test_conventional_variables_naming_missing_files_are_skipped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_ca_env
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "gone.pem"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "also-gone.pem"))
    assert access.default_ca_bundle() is None
    system = _file(tmp_path / "system.pem")
    monkeypatch.setattr(access, "SYSTEM_CA_BUNDLE", system)
    assert access.default_ca_bundle() == system


def test_online_uses_the_default_bundle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_ca_env) -> None:
    bundle = _file(tmp_path / "ssl.pem")
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    assert access.online().ca_bundle == bundle


# --- wheelhouse ------------------------------------------------------------------------------


class FakePip:
    """Records pip commands; 'downloads' by writing a wheel named after the command's last arg."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.commands: list[list[str]] = []
        self.fail_on = fail_on

    def __call__(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        self.commands.append(command)
        if self.fail_on and self.fail_on in command:
            return subprocess.CompletedProcess(
                command, 1, "Collecting nothing-here\n", "ERROR: No matching distribution"
            )
        dest = Path(command[command.index("-d") + 1])
        (dest / f"w{len(self.commands)}-1.0-py3-none-any.whl").write_text("")
        return subprocess.CompletedProcess(command, 0, "Successfully downloaded\n", "")


@pytest.fixture
def reqs(tmp_path: Path) -> list[Path]:
    return [_file(tmp_path / "requirements.txt", "six==1.17.0\n")]


def test_download_commands_one_per_minor_version_and_extras_alone(reqs: list[Path], tmp_path: Path) -> None:
    dest = tmp_path / "wh"
    commands = access.download_commands(reqs, ["3.13.5", "3.11.2", "3.13"], ["pip==25.3", "pip==25.2"], dest)
    versions = [c[c.index("--python-version") + 1] for c in commands]
    assert versions == ["3.11", "3.11", "3.11", "3.13", "3.13", "3.13"]
    requirement_runs = [c for c in commands if "-r" in c]
    assert len(requirement_runs) == 2
    assert all(c[-2:] == ["-r", str(reqs[0])] for c in requirement_runs)
    extra_runs = [c[-1] for c in commands if "-r" not in c]
    assert extra_runs == ["pip==25.2", "pip==25.3", "pip==25.2", "pip==25.3"]
    first = commands[0]
    assert first[1:4] == ["-m", "pip", "download"]
    assert "--only-binary=:all:" in first
    assert [first[i + 1] for i, a in enumerate(first) if a == "--platform"] == list(access.PLATFORMS)
    assert first[first.index("--implementation") + 1] == "cp"
    assert first[first.index("-d") + 1] == str(dest)


def test_wheelhouse_downloads_once_for_the_same_inputs(reqs: list[Path], tmp_path: Path) -> None:
    pip = FakePip()
    dest = tmp_path / "wh"
    kwargs = {"python_versions": ["3.11", "3.13"], "extra": ["pip==25.3"], "dest": dest, "on_output": lambda _: None}
    assert access.ensure_wheelhouse(reqs, downloader=pip, **kwargs) == dest
    assert len(pip.commands) == 4
    access.ensure_wheelhouse(reqs, downloader=pip, **kwargs)
    assert len(pip.commands) == 4, "second call with unchanged inputs must not download"


@pytest.mark.parametrize("change", ["requirement text", "python version", "extra"])
def test_wheelhouse_downloads_again_when_an_input_changes(reqs: list[Path], tmp_path: Path, change: str) -> None:
    pip = FakePip()
    dest = tmp_path / "wh"
    versions, extra = ["3.13"], ["pip==25.3"]
    access.ensure_wheelhouse(reqs, python_versions=versions, extra=extra, dest=dest, downloader=pip, on_output=print)
    before = len(pip.commands)
    if change == "requirement text":
        reqs[0].write_text("six==1.16.0\n")
    elif change == "python version":
        versions = ["3.11", "3.13"]
    else:
        extra = ["pip==25.3", "pip==25.2"]
    access.ensure_wheelhouse(reqs, python_versions=versions, extra=extra, dest=dest, downloader=pip, on_output=print)
    assert len(pip.commands) > before


def test_alternating_input_sets_do_not_download_again(reqs: list[Path], tmp_path: Path) -> None:
    pip = FakePip()
    dest = tmp_path / "wh"
    other = [_file(tmp_path / "other.txt", "attrs\n")]
    for requirement_files in (reqs, other, reqs, other):
        access.ensure_wheelhouse(
            requirement_files, python_versions=["3.13"], dest=dest, downloader=pip, on_output=print
        )
    assert [c[-1] for c in pip.commands] == [str(reqs[0]), str(other[0])]


def test_unreadable_stamp_means_download_again(reqs: list[Path], tmp_path: Path) -> None:
    pip = FakePip()
    dest = tmp_path / "wh"
    access.ensure_wheelhouse(reqs, python_versions=["3.13"], dest=dest, downloader=pip, on_output=print)
    (dest / access.STAMP_NAME).write_text("{not json")
    access.ensure_wheelhouse(reqs, python_versions=["3.13"], dest=dest, downloader=pip, on_output=print)
    assert len(pip.commands) == 2


def test_stamp_ignores_where_the_requirement_file_lives(tmp_path: Path) -> None:
    a = _file(tmp_path / "a.txt", "six\n")
    (tmp_path / "sub").mkdir()
    b = _file(tmp_path / "sub" / "requirements.txt", "six\n")
    assert access.wheelhouse_inputs_digest([a], ["3.13"], []) == access.wheelhouse_inputs_digest([b], ["3.13.5"], [])


def test_failed_download_raises_with_pip_output_and_leaves_no_stamp(reqs: list[Path], tmp_path: Path) -> None:
    dest = tmp_path / "wh"
    with pytest.raises(ConformanceError, match="No matching distribution") as err:
        access.ensure_wheelhouse(
            reqs, python_versions=["3.13"], extra=["nope==0"], dest=dest, downloader=FakePip("nope==0"), on_output=print
        )
    assert "network" in err.value.hint
    assert not (dest / access.STAMP_NAME).exists()
    pip = FakePip()
    access.ensure_wheelhouse(reqs, python_versions=["3.13"], extra=[], dest=dest, downloader=pip, on_output=print)
    assert pip.commands, "after a failure the next call must download again"


def test_the_wheelhouse_is_made_from_the_apps_of_the_run(tmp_path: Path) -> None:
    """A user's own apps dir: every app's requirements, but not those broken on purpose."""
    for name, text in {"mine": "flask==3.0\n", "second": "six\n", "broken": "no-such-pkg\n", "gone": "x\n"}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "requirements.txt").write_text(text)
    (tmp_path / "gone" / ".wheelhouse-skip").touch()
    (tmp_path / "no-requirements").mkdir()
    found = access.app_requirements(tmp_path, exclude=["broken"])
    assert found == [tmp_path / "mine" / "requirements.txt", tmp_path / "second" / "requirements.txt"]
    shipped = access.sample_app_requirements()
    assert shipped and all(path.parent.parent.name == "testapps" for path in shipped)
    assert not any(path.parent.name == "missing-dependency" for path in shipped)


def test_offline_hints_name_commands_that_exist(tmp_path: Path) -> None:
    from conformance.cli import build_parser

    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    with pytest.raises(ConformanceError) as info:
        access.offline(tmp_path / "absent")
    for named in re.findall(r"`bpconform (\w+)", info.value.hint):
        assert named in commands, f"the hint names `bpconform {named}`, which does not exist"
    assert "--wheelhouse" not in info.value.hint


def test_missing_requirement_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(ConformanceError, match="does not exist"):
        access.ensure_wheelhouse([tmp_path / "nope.txt"], python_versions=["3.13"], dest=tmp_path, downloader=FakePip())


# --- for real: containers of the build image -------------------------------------------------

BUILD_IMAGE = "bpconform/build:bookworm"
PYPI_PAGE = "https://pypi.org/simple/six/"
URLOPEN = f"import urllib.request; print(urllib.request.urlopen('{PYPI_PAGE}', timeout=60).status)"


@pytest.fixture(scope="module")
def build_image() -> str:
    from conformance import engine, stacks

    if not engine.image_exists(BUILD_IMAGE):
        stacks.ensure_stack("bookworm")
    return BUILD_IMAGE


@pytest.fixture(scope="module")
def real_wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pip's own wheel (runnable as `python3 pip.whl/pip`, Debian's python3 has no pip) and six."""
    root = tmp_path_factory.mktemp("wheelhouse")
    requirements = _file(root / "requirements.txt", "six==1.17.0\n")
    return access.ensure_wheelhouse(
        [requirements], python_versions=["3.11"], extra=["pip==25.3"], dest=root / "wheels", on_output=print
    )


def _run(image: str, pa: PackageAccess, script: str, *, extra_mounts=(), network_disabled: bool = False):
    from conformance import engine

    return engine.run(
        image,
        ["sh", "-c", script],
        mounts=[*pa.mounts(), *extra_mounts],
        environment=pa.platform_env(),
        user="1000:1000",
        network_disabled=network_disabled,
        timeout=300,
        kind="access-test",
    )


@pytest.mark.docker
def test_real_wheelhouse_has_the_wheels_and_a_stamp(real_wheelhouse: Path) -> None:
    names = sorted(p.name for p in real_wheelhouse.glob("*.whl"))
    assert "pip-25.3-py3-none-any.whl" in names
    assert any(n.startswith("six-1.17.0-") for n in names)
    assert (real_wheelhouse / access.STAMP_NAME).exists()


@pytest.mark.docker
def test_online_access_reaches_pypi_through_the_proxy(build_image: str, real_wheelhouse: Path) -> None:
    pa = access.online()
    assert pa.ca_bundle is not None, "this machine has a CA bundle; default_ca_bundle must find it"
    pip = access.WHEELHOUSE_TARGET + "/pip-25.3-py3-none-any.whl/pip"
    script = (
        f'curl -fsS -o /dev/null {PYPI_PAGE} && echo curl-ok && python3 -c "{URLOPEN}" && '
        f"python3 {pip} download --no-deps --no-cache-dir six==1.17.0 -d /tmp/dl && ls /tmp/dl"
    )
    result = _run(
        build_image,
        pa,
        script,
        extra_mounts=[Mount(real_wheelhouse.resolve(), access.WHEELHOUSE_TARGET, read_only=True)],
    )
    assert result.exit_code == 0, result.output
    assert "curl-ok" in result.output
    assert "six-1.17.0-py2.py3-none-any.whl" in result.output


@pytest.mark.docker
def test_without_the_ca_bundle_tls_fails_here(build_image: str) -> None:
    result = _run(build_image, PackageAccess("online"), f'python3 -c "{URLOPEN}"')
    if result.exit_code == 0:
        pytest.skip("no TLS-intercepting proxy on this network: the image's own CAs suffice")
    assert "CERTIFICATE_VERIFY_FAILED" in result.output


@pytest.mark.docker
def test_offline_access_installs_from_the_wheelhouse_without_network(build_image: str, real_wheelhouse: Path) -> None:
    pa = access.offline(real_wheelhouse)
    pip = access.WHEELHOUSE_TARGET + "/pip-25.3-py3-none-any.whl/pip"
    script = f"python3 {pip} download --no-cache-dir six==1.17.0 -d /tmp/dl && ls /tmp/dl"
    result = _run(build_image, pa, script, network_disabled=True)
    assert result.exit_code == 0, result.output
    assert "six-1.17.0-py2.py3-none-any.whl" in result.output
    missing = _run(build_image, pa, f"python3 {pip} download --no-cache-dir attrs -d /tmp/dl", network_disabled=True)
    assert missing.exit_code != 0, "with PIP_NO_INDEX pip must not look anywhere but the wheelhouse"
