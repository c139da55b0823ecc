"""Exit statuses and messages the `bpconform` commands share (a new-user trial of the installed wheel).

A buildpack.toml that is not TOML, or has no `[buildpack] id`, is the command line's problem: one
check (`run.read_identity`), one message and exit 2 in `run`, `build` and `profile init`. Exit 1
would tell CI the buildpack DOES NOT CONFORM (run), a lifecycle code that a build ran (build).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import cli
from conformance.platform import creator


def _buildpack(tmp_path: Path, descriptor: str) -> Path:
    bp = tmp_path / "bp"
    (bp / "bin").mkdir(parents=True)
    (bp / "buildpack.toml").write_text(descriptor)
    return bp


DESCRIPTORS = {
    "not TOML": ("[buildpack\nid = 'x'\n", "malformed buildpack descriptor {bp}/buildpack.toml: Expected ']'"),
    "no id": ('[buildpack]\nversion = "1.0.0"\n', "{bp}/buildpack.toml has no [buildpack] id and version"),
    "empty id": ('[buildpack]\nid = ""\nversion = "1.0.0"\n', "{bp}/buildpack.toml has no [buildpack] id and version"),
    "bad id": ('[buildpack]\nid = "a b"\nversion = "1.0.0"\n', "invalid buildpack id 'a b'"),
}


def _command(name: str, bp: Path, tmp_path: Path) -> list[str]:
    if name == "run":
        return ["run", "--buildpack", str(bp), "--report-dir", str(tmp_path / "reports")]
    if name == "build":
        app = tmp_path / "app"
        app.mkdir()
        return ["build", "bpconform-test/never-built", "--path", str(app), "-b", str(bp)]
    return ["profile", "init", "--buildpack", str(bp), "--output", str(tmp_path / "draft.toml")]


@pytest.mark.parametrize("command", ["run", "build", "profile init"])
@pytest.mark.parametrize("case", list(DESCRIPTORS))
def test_a_broken_buildpack_descriptor_is_one_usage_error_everywhere(
    command: str, case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(creator, "create", lambda request: pytest.fail("a usage error must stop before the build"))
    text, message = DESCRIPTORS[case]
    bp = _buildpack(tmp_path, text)
    assert cli.main(_command(command, bp, tmp_path)) == 2
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("bpconform: error: ")]
    assert len(error_lines) == 1, err
    assert message.format(bp=bp) in error_lines[0], err
    assert "  -> " in err
    assert not (tmp_path / "reports").exists()


def test_a_build_cache_lock_is_gone_after_the_build(tmp_path: Path) -> None:
    """One lock file per image name used to stay for good, built or not (a session left 24)."""
    from conformance.platform.cache import BuildCache

    cache = BuildCache(tmp_path / "build-caches" / "example.com_app_latest")
    with cache.locked():
        assert cache.lock_path.is_file()
    assert not cache.lock_path.exists()


def test_clean_removes_the_lock_files_no_build_holds(tmp_path: Path) -> None:
    import fcntl

    from conformance import build_caches

    root = tmp_path / "build-caches"
    (root / "kept-cache").mkdir(parents=True)
    stale = [root / "old_app_latest.lock", root / "never-built.lock"]
    for path in stale:
        path.write_text("")
    held = root / "building.lock"
    with held.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # a build in progress (another open file description: as another process)
        removed = build_caches.remove_stale_locks(root)
    assert sorted(removed) == sorted(stale)
    assert not any(path.exists() for path in stale)
    assert held.is_file() and (root / "kept-cache").is_dir()


def test_the_snapshot_warning_comes_only_when_a_snapshot_check_is_selected() -> None:
    from conformance.progress import GroupProgress, NoteIfSelected
    from conformance.run import SNAPSHOT_GROUP

    suite = "conformance/suite"
    managers = [f"{suite}/test_package_managers.py::test_lockfile_is_honoured[{app}]" for app in ("uv", "poetry")]
    lines: list[str] = []
    NoteIfSelected(lines.append, "no snapshots", [SNAPSHOT_GROUP], GroupProgress(lines.append)).expect(managers)
    assert lines == ["2 checks in 1 group"]  # `-k package_managers`: no snapshot check, no warning
    lines.clear()
    progress = NoteIfSelected(lines.append, "no snapshots", [SNAPSHOT_GROUP], None)
    progress.expect([*managers, f"{suite}/test_snapshots.py::test_image_snapshot[minimal]"])
    progress.expect([f"{suite}/test_snapshots.py::test_image_snapshot[minimal]"])  # another xdist worker's
    assert lines == ["no snapshots"]


def test_only_the_snapshot_group_uses_snapshots() -> None:
    """SNAPSHOT_GROUP must name every suite module whose checks take the `snapshot` fixture."""
    import ast

    from conformance import suite
    from conformance.progress import group_of
    from conformance.run import SNAPSHOT_GROUP

    users = set()
    for module in Path(suite.__file__).parent.glob("test_*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.FunctionDef) and any(arg.arg == "snapshot" for arg in node.args.args):
                users.add(group_of(module.name))
    assert users == {SNAPSHOT_GROUP}


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit):
        cli.main([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse's line wrapping undone


def test_run_help_says_offline_is_the_default_and_online_is_for_every_tool(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys, "run")
    options = text[text.index("options:") :]  # the options' entries, not the usage line
    offline = options.split("--offline ", 1)[1].split("--online ")[0]
    online = options.split("--online ", 1)[1].split("--ca-bundle ")[0]
    assert "default" in offline and "no network" in offline, offline
    assert all(tool in online for tool in ("pip", "uv", "Poetry")), online


def test_run_without_a_network_option_builds_offline() -> None:
    """What the help says: the plugin's settings are offline unless --online is given."""
    from conformance import run

    args = cli.build_parser().parse_args(["run", "--buildpack", "reference"])
    argv = run.suite_args(args)
    assert "--online" not in argv
    online = cli.build_parser().parse_args(["run", "--buildpack", "reference", "--online"])
    assert "--online" in run.suite_args(online)


def test_profile_init_help_names_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert "`reference`: the reference buildpack" in _help(capsys, "profile", "init")


def test_clean_help_says_what_each_form_removes_and_warns_about_cache(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys, "clean")
    assert "A plain `bpconform clean` removes" in text and "It keeps the stack images" in text
    assert "--all removes" in text
    cache = text.split("--cache ", 2)[-1]
    assert all(word in cache for word in ("runtimes", "wheelhouse", "shared by every run")), cache


def test_the_suite_runs_with_the_dir_holding_the_package_as_rootdir(tmp_path: Path) -> None:
    """Node ids in report.json are then `conformance/suite/test_x.py::...`, wherever the wheel is installed."""
    import conformance
    from conformance import run

    args = cli.build_parser().parse_args(["run", "--buildpack", "reference"])
    argv = run.build_pytest_argv(args, tmp_path)
    rootdir = Path(argv[argv.index("--rootdir") + 1])
    assert rootdir == Path(conformance.__file__).resolve().parent.parent
    assert (rootdir / "conformance" / "suite" / "conftest.py").is_file()


def test_the_package_init_is_not_for_assertion_rewriting() -> None:
    """The wheel's entry point makes pytest mark `conformance` for rewriting after `bpconform run` has
    imported it: without the marker every pytest.log ends in a PytestAssertRewriteWarning."""
    from _pytest.assertion.rewrite import AssertionRewriter

    import conformance

    assert AssertionRewriter.is_rewrite_disabled(conformance.__doc__ or "")
