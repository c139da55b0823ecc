"""`bpconform build`'s pack-shaped command line (issue 13 item 15 / "What to build" 6), without Docker.

pack's meaning for each flag (internal/commands/build.go): the image is the argument, `--path/-p`
the app (default `.`), `-b` repeatable or comma-separated, `-e NAME=VALUE` or `-e NAME` (the value
of this process's environment, empty when unset), `--env-file` lines of the same form, `-e` over
`--env-file` over project.toml's build env (pkg/client/build.go:558-565). The old spelling is refused
with the new command line spelled out. The real builds are in tests/integration/test_cli_build.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import access, cli
from conformance.errors import ConformanceError
from conformance.project import read_project


def parse(*argv: str):
    return cli.build_parser().parse_args(["build", *argv])


def test_defaults_are_packs() -> None:
    args = parse("my-app", "-b", "bp")
    assert (args.image, args.path, args.buildpack, args.env, args.env_file) == ("my-app", Path("."), ["bp"], [], [])
    assert args.clear_cache is False and args.stack == "bookworm"


def test_env_precedence_and_value_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_SHELL", "shell value")
    monkeypatch.delenv("UNSET_VAR", raising=False)
    env_file = tmp_path / "build.env"
    env_file.write_text("A=from-file\n\n  B=from-file = with spaces  \nFROM_SHELL\nC=file\n")
    args = parse("img", "--env-file", str(env_file), "-e", "C=flag", "-e", "UNSET_VAR", "--env", "D=x=y")
    assert cli._user_env(args) == {
        "A": "from-file",
        "B": "from-file = with spaces",  # pack trims the line, not the value inside it
        "FROM_SHELL": "shell value",
        "C": "flag",  # -e wins over --env-file
        "UNSET_VAR": "",  # pack's os.Getenv of an unset variable
        "D": "x=y",  # split at the first '='
    }


@pytest.mark.parametrize("item", ["=x", "1BAD=x", "A B=x", "# a comment"])
def test_a_bad_variable_name_is_a_usage_error(item: str) -> None:
    with pytest.raises(ConformanceError, match="is not a variable name"):
        cli._user_env(parse("img", "-e", item))


def test_a_missing_env_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConformanceError, match=r"--env-file .*nope"):
        cli._user_env(parse("img", "--env-file", str(tmp_path / "nope")))


def test_buildpacks_repeat_or_comma_separated_in_order() -> None:
    project = read_project(Path("/nonexistent-app"))
    assert cli._buildpacks(parse("img", "-b", "a,b", "-b", "c"), project) == [Path("a"), Path("b"), Path("c")]
    with pytest.raises(ConformanceError, match="no buildpacks to build with"):
        cli._buildpacks(parse("img"), project)


def test_the_project_group_is_used_only_without_b(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (tmp_path / "bps" / "one").mkdir(parents=True)
    app.mkdir()
    (app / "project.toml").write_text('[_]\nschema-version = "0.2"\n[[io.buildpacks.group]]\nuri = "../bps/one"\n')
    project = read_project(app)
    assert cli._buildpacks(parse("img"), project) == [app / "../bps/one"]
    assert cli._buildpacks(parse("img", "-b", "mine"), project) == [Path("mine")]


def test_the_old_spelling_is_refused_with_the_new_command(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["build", "testapps/minimal", "--buildpack", "reference", "--image", "my-app"])
    err = capsys.readouterr().err
    assert code == 2  # a usage error, as argparse's own and `bpconform run`'s
    assert "bpconform: error: --image is gone" in err
    assert "-> write: bpconform build my-app --path testapps/minimal -b BUILDPACK" in err


def test_the_image_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["build", "-b", "reference"]) == 2
    assert "needs the name of the image to create" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bad image name!"], "IMAGE"),
        (["img", "--timeout", "0"], "--timeout"),
        (["img", "--memory", "lots"], "--memory"),
        (["img", "-e", "1BAD=x"], "is not a variable name"),
        (["img", "--path", "/nonexistent-app-dir"], "the app directory does not exist"),
        (["img", "-b", "/nonexistent-buildpack"], "is not a buildpack directory"),
        (["img", "--build-image", "b:1"], "--build-image was given without --run-image"),
        (["img", "--wheelhouse", "/nonexistent-wheels"], "wheelhouse /nonexistent-wheels is not a directory"),
        (["img", "--descriptor", "/nonexistent/project.toml"], "does not exist"),
    ],
)
def test_usage_errors_exit_2_before_anything_slow(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each is the command line's fault: exit 2 (argparse's convention, and `bpconform run`'s), never 1 or
    a lifecycle code, which mean a build ran and failed. No engine is touched: `create` must not run."""
    from conformance.platform import creator

    monkeypatch.setattr(creator, "create", lambda request: pytest.fail("a usage error must stop before the build"))
    args = argv if "-b" in argv else [*argv, "-b", "reference"]
    assert cli.main(["build", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bpconform: error: ") and message in err, err
    assert "  -> " in err  # the hint line


def test_an_unknown_stack_has_a_did_you_mean_as_in_run(capsys: pytest.CaptureFixture[str]) -> None:
    """One helper (stacks.check_stack_name) for build, run, setup, stack build and runtime build."""
    assert cli.main(["build", "img", "-b", "reference", "--stack", "bookwrm"]) == 2
    err = capsys.readouterr().err
    assert "unknown stack 'bookwrm' (did you mean 'bookworm'?)" in err
    assert "use one of: bookworm, trixie" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["stack", "build", "bookwrm"],
        ["runtime", "build", "3.13.5", "--stack", "bookwrm"],
        ["setup", "--stack", "bookwrm"],
    ],
)
def test_other_commands_share_the_stack_check_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    assert "unknown stack 'bookwrm' (did you mean 'bookworm'?)" in capsys.readouterr().err


def test_an_unpinned_runtime_is_a_usage_error_before_any_stack_is_made(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["runtime", "build", "3.9.1"]) == 2
    assert "Python 3.9.1 is not pinned" in capsys.readouterr().err


def test_the_exit_codes_are_documented_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.platform.spec import ExitCode

    with pytest.raises(SystemExit):
        cli.main(["build", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "2 usage error" in text
    for code in ExitCode:  # every lifecycle code a failed build passes through
        assert f"{code.value} " in text, code


def test_no_package_access_unless_asked(tmp_path: Path) -> None:
    """Issue 13 item 8: by default nothing is mounted and nothing is added to <platform>/env."""
    assert cli._package_access(parse("img"), tmp_path) is None
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    offline = cli._package_access(parse("img", "--wheelhouse", str(wheels)), tmp_path)
    assert offline is not None and offline.platform_env() == {
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": access.WHEELHOUSE_TARGET,
    }
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    online = cli._package_access(parse("img", "--ca-bundle", str(bundle)), tmp_path)
    assert online is not None and online.platform_env() == {
        "PIP_CERT": access.CA_BUNDLE_TARGET,
        "SSL_CERT_FILE": access.CA_BUNDLE_TARGET,
    }
    assert online.mode == "online" and online.ca_bundle == bundle
