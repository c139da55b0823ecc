"""The conformance report: the collector plugin, rendering, `bpconform run` options and `--compare`.

The real suite needs Docker and minutes, so `bpconform run` is exercised end to end against a fake
suite package and a fake plugin (that only declares the suite's options) generated with pytester.
"""

from __future__ import annotations

import argparse
import json
import re
import textwrap
from pathlib import Path

import pytest

from conformance import results, run
from conformance.cli import build_parser
from conformance.compare import Change, compare, compare_snapshots, parse_compare_setting
from conformance.errors import ConformanceError
from conformance.render import render_markdown_report, render_table, render_text_report, summary_line, write_reports
from conformance.results import Record, ResultCollector, RunResult

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
BUILDPACK_DIR = REPO / "buildpack_under_test"

RECORDS = [
    Record("layer_types", "minimal", "passed", "", 1.5, "s.py::test_layer_types[minimal]"),
    Record("layer_types", "pinned-311", "failed", "pip layer is in the image\nassert True is False", 2.0),
    Record("build_time_path", "minimal", "passed"),
    Record("build_time_path", "pinned-311", "skipped", "profile heroku-python has no package-manager layer"),
    Record("detect_fails", "-", "passed"),
    Record("rebuild", "-", "error", "EngineError: no Docker engine"),
]


def result_of(records: list[Record], **settings: object) -> RunResult:
    return RunResult(
        records=list(records),
        settings={"buildpacks": ["buildpack_under_test"], "profile": "reference", **settings},
        wall_time=12.34,
        exit_code=1 if any(r.outcome in ("failed", "error") for r in records) else 0,
    )


# ------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------


def test_text_table_is_checks_by_apps_in_run_order() -> None:
    lines = render_table(RECORDS).splitlines()
    assert lines[0].split() == ["check", "minimal", "pinned-311", "-"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["layer_types", "pass", "FAIL"]
    assert lines[3].split() == ["build_time_path", "pass", "skip"]
    assert lines[4].split() == ["detect_fails", "pass"]
    assert lines[5].split() == ["rebuild", "ERROR"]
    # cells line up under their column
    column = lines[0].index("pinned-311")
    assert lines[2][column:].startswith("FAIL") and lines[3][column:].startswith("skip")
    assert lines[4][lines[0].index(" -") + 1 :].strip() == "pass"


def test_text_report_lists_reasons_totals_and_verdict() -> None:
    text = render_text_report(result_of(RECORDS))
    failures = text.index("Failures:")
    skipped = text.index("Skipped:")
    assert failures < text.index("FAIL layer_types[pinned-311]") < text.index("pip layer is in the image") < skipped
    assert text.index("ERROR rebuild") < skipped
    assert text.index("skip build_time_path[pinned-311]") > skipped
    assert "profile heroku-python has no package-manager layer" in text
    assert text.rstrip().endswith("DOES NOT CONFORM: 6 checks ran: 3 passed, 1 failed, 1 error, 1 skipped, in 12.3s")


def test_all_passing_run_conforms() -> None:
    result = result_of([r for r in RECORDS if r.outcome in ("passed", "skipped")])
    assert result.ok
    assert "CONFORMS: 4 checks ran: 3 passed, 0 failed, 0 error, 1 skipped" in render_text_report(result)
    assert not RunResult(result.records, exit_code=2).ok  # pytest itself failing is never a pass
    assert not RunResult(result.records, exit_code=1).ok  # a failure pytest saw and the records do not


def test_markdown_report_has_table_settings_and_reasons() -> None:
    markdown = render_markdown_report(result_of(RECORDS, stack="bookworm"))
    assert markdown.startswith("# Conformance report: buildpack_under_test (profile reference, stack bookworm)\n")
    assert "| check | `minimal` | `pinned-311` | `-` |" in markdown
    assert "| `layer_types` | pass | **FAIL** |  |" in markdown
    assert "| `rebuild` |  |  | **ERROR** |" in markdown
    assert "- stack: `bookworm`" in markdown
    assert (
        "### FAIL `layer_types[pinned-311]`\n\n```text\npip layer is in the image\nassert True is False\n```"
        in markdown
    )
    assert "### ERROR `rebuild`" in markdown.split("## Errors", 1)[1]
    assert "## Skipped" in markdown


def test_json_report_round_trips(tmp_path: Path) -> None:
    result = result_of(RECORDS, stack="bookworm")
    result.unused_snapshots = ["test_snapshots.ambr::test_metadata[gone]"]
    paths = write_reports(result, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert data["totals"] == {"passed": 3, "failed": 1, "error": 1, "skipped": 1, "total": 6}
    assert data["ok"] is False
    assert data["settings"]["stack"] == "bookworm"
    assert data["records"][1] == {
        "check": "layer_types",
        "app": "pinned-311",
        "outcome": "failed",
        "reason": "pip layer is in the image\nassert True is False",
        "duration": 2.0,
        "nodeid": "",
        "output": "",
    }
    assert data["verdict"] == "DOES NOT CONFORM"
    assert RunResult.from_json(data).records == RECORDS
    assert "snapshot unused: test_snapshots.ambr::test_metadata[gone]" in paths["markdown"].read_text()


def test_long_failure_messages_are_condensed() -> None:
    assert results.condense("a\n\nb\nc\nd\ne") == "a\nb\nc..."
    assert len(results.condense("x" * 1000)) == results.MAX_LINE_CHARS
    assert len(results.condense("\n".join(["y" * 150] * 3))) == results.MAX_REASON_CHARS
    assert results.without_introspection("msg\nassert 1 == 2\n+ where") == "msg"
    assert results.without_introspection("assert 1 == 2\n  +1\n  -2") == "assert 1 == 2\n  +1\n  -2"


# ------------------------------------------------------------------------------------------------
# The collector, on a generated test module
# ------------------------------------------------------------------------------------------------

SAMPLE_TESTS = """
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("engine went away")

@pytest.mark.parametrize("app", ["minimal", "pinned-311"])
def test_layer_types(app):
    assert app == "minimal", f"pip layer of {app} is launch=true\\nsecond line"

def test_needs_alternative():
    pytest.skip("profile heroku-python names no alternative Python version")

@pytest.mark.parametrize("app", ["minimal"])
@pytest.mark.parametrize("setting", ["on", "off"])
def test_cache(app, setting):
    pass

def test_setup_error(broken):
    pass

@pytest.mark.bpconform_check("launch_env")
def test_env_of_the_web_process():
    pass

@pytest.mark.xfail(reason="known lifecycle bug")
def test_xfailing():
    assert False
"""


def run_collector(pytester: pytest.Pytester, source: str, *args: str) -> tuple[ResultCollector, pytest.RunResult]:
    pytester.makepyfile(test_sample=source)
    collector = ResultCollector()
    outcome = pytester.runpytest_inprocess("-p", "no:bpconform", "-p", "no:cacheprovider", *args, plugins=[collector])
    return collector, outcome


def test_collector_records_each_test_as_check_app_outcome_reason(pytester: pytest.Pytester) -> None:
    collector, outcome = run_collector(pytester, SAMPLE_TESTS)
    outcome.assert_outcomes(passed=4, failed=1, skipped=1, errors=1, xfailed=1)
    by_label = {record.label: record for record in collector.records}
    assert list(by_label) == [
        "layer_types[minimal]",
        "layer_types[pinned-311]",
        "needs_alternative",
        "cache[setting=on][minimal]",
        "cache[setting=off][minimal]",
        "setup_error",
        "launch_env",
        "xfailing",
    ]
    assert (by_label["layer_types[minimal]"].outcome, by_label["layer_types[minimal]"].reason) == ("passed", "")
    failed = by_label["layer_types[pinned-311]"]
    assert (failed.check, failed.app, failed.outcome) == ("layer_types", "pinned-311", "failed")
    assert failed.reason == "pip layer of pinned-311 is launch=true\nsecond line"  # no pytest introspection
    assert failed.nodeid.endswith("test_layer_types[pinned-311]")
    skipped = by_label["needs_alternative"]
    assert (skipped.app, skipped.outcome, skipped.reason) == (
        "-",
        "skipped",
        "profile heroku-python names no alternative Python version",
    )
    error = by_label["setup_error"]
    assert (error.outcome, error.reason) == ("error", "RuntimeError: engine went away")
    assert (by_label["xfailing"].outcome, by_label["xfailing"].reason) == ("skipped", "xfail: known lifecycle bug")
    assert all(record.duration >= 0 for record in collector.records)


def test_report_explains_pytest_exit_codes() -> None:
    text = render_text_report(RunResult([], {"profile": "reference"}, exit_code=5))
    assert "pytest exited with code 5: no checks were selected" in text
    assert text.rstrip().splitlines()[-1].startswith("ERROR: 0 checks ran")
    assert RunResult([], exit_code=5).status == 2


def test_collector_reports_a_module_that_fails_to_import(pytester: pytest.Pytester) -> None:
    collector, _ = run_collector(pytester, "import no_such_module_here\n")
    [record] = collector.records
    assert record.outcome == "error"
    assert record.check == "collect test_sample.py"
    assert "no_such_module_here" in record.reason


def test_collector_reports_unused_snapshots(pytester: pytest.Pytester) -> None:
    source = (
        "def test_first(snapshot):\n    assert {'a': 1} == snapshot\n\n"
        "def test_second(snapshot):\n    assert 2 == snapshot\n"
    )
    _, first = run_collector(pytester, source, "--snapshot-update")
    first.assert_outcomes(passed=2)
    collector, _ = run_collector(pytester, source.split("def test_second")[0])
    assert [r.outcome for r in collector.records] == ["passed"]
    assert collector.unused_snapshots == ["test_sample.ambr::test_second"]
    changed = "def test_first(snapshot):\n    assert {'a': 2} == snapshot\n"
    collector, _ = run_collector(pytester, changed)
    assert collector.failed_snapshots == ["test_sample.ambr::test_first"]


# ------------------------------------------------------------------------------------------------
# Comparison
# ------------------------------------------------------------------------------------------------


def test_compare_lists_only_changed_outcomes() -> None:
    before = [
        Record("build_time_path", "minimal", "passed"),
        Record("launch_path", "minimal", "passed"),
        Record("layer_types", "-", "skipped", "no role"),
        Record("removed_check", "-", "passed"),
    ]
    after = [
        Record("build_time_path", "minimal", "failed", "venv/bin is not first on PATH"),
        Record("launch_path", "minimal", "passed"),
        Record("layer_types", "-", "skipped", "another reason"),
        Record("new_check", "minimal", "passed"),
    ]
    changes = compare(before, after)
    assert changes == [
        Change("build_time_path", "minimal", "passed", "failed", "venv/bin is not first on PATH"),
        Change("new_check", "minimal", "absent", "passed"),
        Change("removed_check", "-", "passed", "absent"),
    ]
    assert changes[0].describe() == "build_time_path[minimal]: pass -> FAIL"
    assert compare(before, before) == []


def test_compare_snapshots_splits_new_and_fixed_failures() -> None:
    assert compare_snapshots(["a", "b"], ["b", "c"]) == {"newly_failing": ["c"], "no_longer_failing": ["a"]}


def test_compare_settings() -> None:
    baseline, variant = parse_compare_setting("lifecycle-1393", None, None)
    assert (baseline.extra_args, variant.extra_args) == ((), ("--emulate-lifecycle-1393",))
    baseline, variant = parse_compare_setting("lifecycle-image=lc:0.20.1", "pack", "lc:0.17.0")
    assert (baseline.lifecycle_image, variant.lifecycle_image) == ("lc:0.17.0", "lc:0.20.1")
    with pytest.raises(ConformanceError, match="platform is not pack"):
        parse_compare_setting("lifecycle-image=lc:0.20.1", "embedded", None)
    with pytest.raises(ConformanceError, match="unknown --compare setting 'lifecycle-1394'"):
        parse_compare_setting("lifecycle-1394", None, None)


# ------------------------------------------------------------------------------------------------
# `bpconform run`: options and end to end on a fake suite
# ------------------------------------------------------------------------------------------------


def parse_run(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", *argv])


def test_run_options_become_the_plugin_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(run, "plugin_is_autoloaded", lambda: False)
    options = [
        *("--buildpack", "bp1", "--buildpack", "probe", "--profile", "heroku-python", "--stack", "trixie"),
        *("--platform", "pack", "--builder", "b:1", "--lifecycle-image", "lc:1", "--offline"),
        *("--ca-bundle", "/ca.pem", "-k", "path", "--snapshot-update", "-x"),
    ]
    args = parse_run(*options, "--report-dir", str(tmp_path), "--", "-vv", "--maxfail=2")
    assert args.func is run.cmd_run
    argv = run.build_pytest_argv(args, tmp_path)
    assert argv[:4] == ["--pyargs", "conformance.suite", "-p", "conformance.plugin"]
    # the same options in the same order, buildpack dirs made absolute
    expected = [str(Path(o).resolve()) if o in ("bp1", "probe") else o for o in options]
    assert argv[4 : 4 + len(expected)] == expected
    assert argv[argv.index("--junitxml") + 1] == str(tmp_path / "junit.xml")
    assert argv[-2:] == ["-vv", "--maxfail=2"]
    variant = parse_compare_setting("lifecycle-1393", None, None)[1]
    assert "--emulate-lifecycle-1393" in run.build_pytest_argv(args, tmp_path, variant)


def test_run_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "plugin_is_autoloaded", lambda: True)
    args = parse_run("--buildpack", "bp")
    assert (args.profile, args.stack, args.report_dir, args.network, args.compare) == (
        "reference",
        "bookworm",
        Path("reports"),
        None,
        None,
    )
    argv = run.build_pytest_argv(args, Path("reports"))
    assert "-p" not in argv[:4]  # an installed entry point loads the plugin; -p would register it twice
    assert "--online" not in argv and "--offline" not in argv and "--platform" not in argv
    with pytest.raises(SystemExit):
        parse_run("--offline", "--online")


# The fake plugin declares the real plugin's options; keep an installed real plugin out of the way.
NO_ENTRY_POINT = ("--", "-p", "no:bpconform")

FAKE_PLUGIN = """
import pytest

def pytest_addoption(parser):
    group = parser.getgroup("bpconform")
    group.addoption("--buildpack", action="append", default=[])
    for name in ("--stack", "--platform", "--builder", "--lifecycle-image", "--profile", "--ca-bundle"):
        group.addoption(name)
    group.addoption("--offline", action="store_true")
    group.addoption("--online", action="store_true")
    group.addoption("--emulate-lifecycle-1393", action="store_true")

@pytest.fixture
def options(request):
    return request.config.option
"""

FAKE_SUITE = """
import pytest

@pytest.mark.parametrize("app", ["minimal", "pinned-311"])
def test_build_time_path(options, app):
    assert not options.emulate_lifecycle_1393, f"venv/bin after python/bin for {app}"

@pytest.mark.parametrize("app", ["minimal", "pinned-311"])
def test_launch_path(options, app):
    assert options.buildpack and options.stack != "trixie"

def test_pip_bump():
    pytest.skip("profile reference: nothing to bump")
"""


@pytest.fixture
def fake_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makepyfile(fakeplugin=FAKE_PLUGIN)
    pkg = pytester.mkpydir("fakesuite")
    (pkg / "test_checks.py").write_text(textwrap.dedent(FAKE_SUITE))
    pytester.syspathinsert()
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    monkeypatch.setattr(run, "SUITE_MODULE", "fakesuite")
    monkeypatch.setattr(run, "PLUGIN_MODULE", "fakeplugin")
    monkeypatch.setattr(run, "plugin_is_autoloaded", lambda: False)
    monkeypatch.setattr(run, "check_stack_ready", lambda name, **_: None)  # no engine needed for a fake suite
    return pytester


def test_cmd_run_prints_and_writes_the_report(fake_suite: pytest.Pytester, capsys: pytest.CaptureFixture) -> None:
    reports = fake_suite.path / "reports"
    args = parse_run("--buildpack", str(BUILDPACK_DIR), "--report-dir", str(reports), "-v", *NO_ENTRY_POINT)
    assert run.cmd_run(args) == 0
    out = capsys.readouterr().out
    assert "test session starts" in out and "PASSED" in out, "-v: pytest's own output, as before"
    table = out[out.index("check ") :].splitlines()
    assert table[0].split() == ["check", "minimal", "pinned-311", "-"]
    assert table[2].split() == ["build_time_path", "pass", "pass"]
    assert table[4].split() == ["pip_bump", "skip"]
    assert "CONFORMS: 5 of 5 checks ran: 4 passed, 0 failed, 0 error, 1 skipped" in out
    data = json.loads((reports / "report.json").read_text())
    assert data["ok"] is True and data["totals"]["total"] == 5
    assert (reports / "report.md").is_file()
    assert "testcase" in (reports / "junit.xml").read_text()


def test_cmd_run_is_lean_by_default(fake_suite: pytest.Pytester, capsys: pytest.CaptureFixture) -> None:
    """A line per check group on stderr, then the verdict; pytest's output and the table are in the report
    dir (the last line says where), and the report files are the same as with -v."""
    reports = fake_suite.path / "reports"
    args = parse_run("--buildpack", str(BUILDPACK_DIR), "--report-dir", str(reports), *NO_ENTRY_POINT)
    assert run.cmd_run(args) == 0
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    assert "test session starts" not in out + err and "PASSED" not in out + err and "check  " not in out
    assert "bpconform run: 5 checks in 1 group" in err
    assert re.search(r"^bpconform run: \[5/5\] checks  4 passed, 1 skipped  \(\d+s\)$", err, re.M), err
    assert "CONFORMS: 5 of 5 checks ran: 4 passed, 0 failed, 0 error, 1 skipped" in out
    assert "1 check skipped: the reasons are in report.md" in out
    last = out.rstrip().splitlines()[-1]
    log = reports / run.PYTEST_LOG
    assert last.startswith(f"reports: {reports / 'report.md'}") and last.endswith(f"pytest's full output: {log}")
    text = log.read_text()
    assert "test session starts" in text and "test_checks.py::test_launch_path[minimal] PASSED" in text
    data = json.loads((reports / "report.json").read_text())
    assert data["ok"] is True and data["totals"]["total"] == 5
    assert "| `build_time_path` | pass | pass |" in (reports / "report.md").read_text()


def test_a_lean_run_prints_each_failure_in_full(fake_suite: pytest.Pytester, capsys: pytest.CaptureFixture) -> None:
    """The terminal table report cuts a long reason at MAX_TERMINAL_LINES; the lean one, which has no
    table, shows all of it (and report.md, as always)."""
    long_check = "def test_long_reason():\n    assert False, '\\n'.join(f'line {i}' for i in range(60))\n"
    (fake_suite.path / "fakesuite" / "test_long.py").write_text(long_check)
    reports = fake_suite.path / "reports"
    args = parse_run("--buildpack", str(BUILDPACK_DIR), "--report-dir", str(reports), *NO_ENTRY_POINT)
    assert run.cmd_run(args) == 1
    out = capsys.readouterr().out
    assert "Failures:\n  FAIL long_reason\n" in out and "line 0" in out and "line 59" in out
    assert "more lines in report.md" not in out
    assert out.rstrip().splitlines()[-3].startswith("DOES NOT CONFORM: 6 of 6 checks ran: 4 passed, 1 failed")


def test_cmd_run_fails_when_a_check_fails(fake_suite: pytest.Pytester, capsys: pytest.CaptureFixture) -> None:
    reports = fake_suite.path / "reports"
    args = parse_run(
        "--buildpack", str(BUILDPACK_DIR), "--stack", "trixie", "--report-dir", str(reports), *NO_ENTRY_POINT
    )  # fmt: skip
    assert run.cmd_run(args) == 1
    out = capsys.readouterr().out
    assert "FAIL launch_path[minimal]" in out and "FAIL launch_path[pinned-311]" in out


def test_cmd_run_compare_finds_exactly_the_changed_check(
    fake_suite: pytest.Pytester, capfd: pytest.CaptureFixture
) -> None:
    reports = fake_suite.path / "reports"
    args = parse_run(
        "--buildpack", str(BUILDPACK_DIR), "--report-dir", str(reports), "--compare", "lifecycle-1393", *NO_ENTRY_POINT
    )  # fmt: skip
    assert run.cmd_run(args) == 1  # the variant changed behaviour
    captured = capfd.readouterr()  # the children's stderr (their progress lines) is the process's
    out = captured.out
    assert "PASSED" not in out + captured.err, "lean: each side's pytest output is in its report dir"
    assert captured.err.count("bpconform run: [5/5] checks") == 2, captured.err  # the children's progress
    for side in ("baseline", "lifecycle-1393"):
        assert "test session starts" in (reports / side / run.PYTEST_LOG).read_text()
    assert "2 check(s) changed outcome:" in out
    assert "build_time_path[minimal]: pass -> FAIL" in out
    assert "venv/bin after python/bin for minimal" in out
    data = json.loads((reports / "compare.json").read_text())
    assert [(c["check"], c["app"], c["before"], c["after"]) for c in data["changes"]] == [
        ("build_time_path", "minimal", "passed", "failed"),
        ("build_time_path", "pinned-311", "passed", "failed"),
    ]
    assert (reports / "baseline" / "report.json").is_file()
    assert json.loads((reports / "lifecycle-1393" / "report.json").read_text())["totals"]["failed"] == 2
    assert "`build_time_path[minimal]`: pass -> FAIL" in (reports / "compare.md").read_text()


def test_cmd_run_rejects_bad_inputs_before_running(tmp_path: Path) -> None:
    with pytest.raises(ConformanceError, match="no buildpack given"):
        run.cmd_run(parse_run())
    with pytest.raises(ConformanceError, match="not a buildpack directory"):
        run.cmd_run(parse_run("--buildpack", str(tmp_path)))
    with pytest.raises(ConformanceError, match="unknown profile"):
        run.cmd_run(parse_run("--buildpack", str(BUILDPACK_DIR), "--profile", "nope"))
    with pytest.raises(ConformanceError, match="do not mix"):
        run.cmd_run(parse_run("--buildpack", str(BUILDPACK_DIR), "--compare", "lifecycle-1393", "--snapshot-update"))
    with pytest.raises(ConformanceError, match="platform is not pack"):
        run.cmd_run(parse_run("--buildpack", str(BUILDPACK_DIR), "--compare", "lifecycle-image=lc:2"))


# ------------------------------------------------------------------------------------------------
# Parallel runs (pytest-xdist)
# ------------------------------------------------------------------------------------------------


def test_workers_option_runs_pytest_xdist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "plugin_is_autoloaded", lambda: True)
    argv = run.build_pytest_argv(parse_run("--buildpack", "bp", "--workers", "2"), Path("reports"))
    assert argv[argv.index("-n") + 1] == "2" and argv.index("-n") < argv.index("-v")
    assert "-n" not in run.build_pytest_argv(parse_run("--buildpack", "bp"), Path("reports"))
    assert "-n" not in run.build_pytest_argv(parse_run("--buildpack", "bp", "--workers", "0"), Path("reports"))
    with pytest.raises(SystemExit):
        parse_run("--buildpack", "bp", "--workers", "two")


PARALLEL_TESTS = """
import time
import pytest

def test_slow_first():
    time.sleep(1)  # so that the other worker reports later tests first

@pytest.mark.parametrize("app", ["minimal", "pinned-311"])
@pytest.mark.parametrize("role", ["runtime", "venv"])
def test_layer_types(app, role):
    assert (app, role) != ("pinned-311", "venv"), "venv of pinned-311 is launch=false"

@pytest.mark.parametrize("app", ["minimal", "pinned-311"])
def test_skipped(app):
    pytest.skip(f"nothing to check for {app}")
"""


def test_records_under_xdist_are_the_serial_records(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The controller collects nothing: names come from the workers (the bpconform plugin) and the order
    from their collection, so a parallel run reports exactly what a serial one does."""
    pytester.makepyfile(test_parallel=PARALLEL_TESTS)
    monkeypatch.chdir(pytester.path)
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)  # this test may itself run in an xdist worker
    argv = ["test_parallel.py", "-p", "no:cacheprovider", "-q"]
    serial_code, serial = run.run_pytest_subprocess(argv, pytester.path / "serial.json")
    parallel_code, parallel = run.run_pytest_subprocess([*argv, "-n", "2"], pytester.path / "parallel.json")

    def essentials(records: list[Record]) -> list[tuple[str, str, str, str, str]]:
        return [(r.check, r.app, r.outcome, r.reason, r.nodeid) for r in records]

    assert serial_code == parallel_code == 1
    assert essentials(parallel.records) == essentials(serial.records)
    assert [r.label for r in serial.records] == [
        "slow_first",
        "layer_types[role=runtime][minimal]",
        "layer_types[role=runtime][pinned-311]",
        "layer_types[role=venv][minimal]",
        "layer_types[role=venv][pinned-311]",
        "skipped[minimal]",
        "skipped[pinned-311]",
    ]


# ------------------------------------------------------------------------------------------------
# Honest verdicts
# ------------------------------------------------------------------------------------------------


def _result(outcomes: list[str], *, exit_code: int | None = None, **fields: object) -> RunResult:
    records = [Record(f"check{i}", "minimal", outcome) for i, outcome in enumerate(outcomes)]
    code = exit_code if exit_code is not None else (1 if {"failed", "error"} & set(outcomes) else 0)
    return RunResult(records, {"k": fields.pop("k", None)}, exit_code=code, **fields)  # type: ignore[arg-type]


def test_verdicts_and_exit_statuses() -> None:
    assert (_result(["passed", "skipped"], selected=2, deselected=0).verdict, 0) == (results.Verdict.CONFORMS, 0)
    partial = _result(["passed"], selected=1, deselected=97, k="path")
    assert (partial.verdict, partial.status) == (results.Verdict.PARTIAL, 0)
    assert "PARTIAL: 1 of 98 checks ran (-k path)" in render_text_report(partial)
    failed = _result(["passed", "failed", "error"], selected=3, deselected=0)
    assert (failed.verdict, failed.status) == (results.Verdict.DOES_NOT_CONFORM, 1)
    errored = _result(["passed", "error"], selected=2, deselected=0)
    assert (errored.verdict, errored.status) == (results.Verdict.ERROR, 2), "an ERROR is never CONFORMS"
    aborted = _result(["passed"], exit_code=2, aborted="SIGTERM", selected=1, deselected=0)
    assert (aborted.verdict, aborted.status) == (results.Verdict.ABORTED, 143)
    assert "stopped by SIGTERM: no verdict" in render_text_report(aborted)
    assert _result([], exit_code=5).verdict is results.Verdict.ERROR, "no checks is not a pass"


def test_a_run_that_records_snapshots_is_never_conforms() -> None:
    """--snapshot-update writes what the snapshot checks see instead of comparing: a CI job left with
    it would be green on snapshots forever."""
    recorded = RunResult([Record("image_snapshot", "minimal", "passed")], {"snapshot_update": True}, selected=1)
    assert (recorded.verdict, recorded.status) == (results.Verdict.PARTIAL, 0)
    assert "snapshots were recorded, not compared" in render_text_report(recorded)
    via_pytest = RunResult(recorded.records, {"pytest_args": ["--snapshot-update"]}, selected=1)
    assert via_pytest.verdict is results.Verdict.PARTIAL
    assert RunResult(recorded.records, {}, selected=1, deselected=0).verdict is results.Verdict.CONFORMS


HONESTY_TESTS = """
import docker.errors
import pytest

from conformance.errors import MissingInput
from conformance.fixtures import BuildFailed


@pytest.fixture
def failing_build():
    raise BuildFailed("minimal", "bin/build exited with 1", "Collecting six\\nERROR: No matching distribution", 51)


@pytest.fixture
def no_app():
    raise MissingInput("sample app 'minimal' is not a directory: /nowhere/minimal", "point --apps at your apps")


def test_engine_gone():
    raise docker.errors.APIError("500 Server Error: engine restarting")


def test_shared_build_failed(failing_build):
    pass


def test_app_missing(no_app):
    pass


def test_probe_missing():
    raise MissingInput("the probe buildpack left no record", "see the build output")


def test_real_failure():
    assert False, "venv/bin is after python/bin on PATH"
"""


def test_harness_failures_are_errors_and_build_failures_are_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_honesty=HONESTY_TESTS)
    collector = ResultCollector()
    pytester.runpytest_inprocess("-p", "no:cacheprovider", plugins=[collector])  # the real plugin, autoloaded
    by_check = {record.check: record for record in collector.records}
    assert {check: record.outcome for check, record in by_check.items()} == {
        "engine_gone": "error",
        "shared_build_failed": "failed",
        "app_missing": "error",
        "probe_missing": "error",
        "real_failure": "failed",
    }
    assert "Docker engine failed or went away" in by_check["engine_gone"].reason
    assert "point --apps at your apps" in by_check["app_missing"].reason
    assert "No matching distribution" in by_check["shared_build_failed"].output, "the build output reaches the report"


INTERRUPTED_TESTS = """
def test_first():
    pass

def test_interrupted():
    raise KeyboardInterrupt

def test_never_reached():
    pass
"""


def test_an_interrupted_check_is_never_a_pass(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_interrupted=INTERRUPTED_TESTS)
    monkeypatch.chdir(pytester.path)
    code, collector = run.run_pytest_subprocess(
        ["test_interrupted.py", "-p", "no:cacheprovider"], pytester.path / "r.json"
    )
    assert code == 2
    outcomes = {record.check: record.outcome for record in collector.records}
    assert outcomes == {"first": "passed", "interrupted": "error"}, "the interrupted check did not pass"
    assert collector.records[1].reason == results.NOT_FINISHED


def test_a_subset_is_counted_and_partial(pytester: pytest.Pytester) -> None:
    collector, _ = run_collector(pytester, SAMPLE_TESTS, "-k", "layer_types")
    assert (collector.selected, collector.deselected) == (2, 6)
    result = RunResult(collector.records, {"k": "layer_types"}, selected=2, deselected=6)
    assert "2 of 8 checks ran" in summary_line(result)


def test_a_subset_under_xdist_is_partial(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The controller collects nothing; the workers say how much they deselected."""
    pytester.makepyfile(test_parallel=PARALLEL_TESTS)
    monkeypatch.chdir(pytester.path)
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    argv = ["test_parallel.py", "-p", "no:cacheprovider", "-q", "-n", "2", "-k", "skipped"]
    _, collector = run.run_pytest_subprocess(argv, pytester.path / "records.json")
    assert (collector.selected, collector.deselected) == (2, 5)
    result = RunResult(collector.records, {"k": "skipped"}, selected=2, deselected=5)
    assert result.verdict is results.Verdict.PARTIAL


def test_report_md_keeps_whole_messages_wrapped(tmp_path: Path) -> None:
    path_value = ":".join(f"/layers/bpconform_python/layer{i}/bin" for i in range(12)) + ":/WRONG/END"
    reason = f"PATH at launch has python/bin before venv/bin: {path_value}"
    diff = "assert [+ received] == [- snapshot]\n  dict({\n-   'env': 'PATH=/a:/b',\n+   'env': 'PATH=/b:/a',\n  })"
    records = [
        Record("launch_path_order", "minimal", "failed", reason, output="step 1\nstep 2"),
        Record("launch_path_order", "pinned-311", "failed", reason, output="step 1\nstep 2"),
        Record("image_snapshot", "minimal", "failed", diff),
    ]
    markdown = render_markdown_report(RunResult(records, {"profile": "reference"}, exit_code=1))
    assert "/WRONG/END" in markdown, "the end of a long message is never cut"
    block = markdown.split("```text\n", 1)[1].split("```", 1)[0]
    assert all(len(line) <= 110 for line in block.splitlines()), "long lines are wrapped"
    assert "".join(block.split()) == "".join(reason.split()), "wrapped, every character kept"
    assert "```diff\n# - snapshot (expected)   + received (this build)\ndict({\n-   'env': 'PATH=/a:/b'," in markdown
    assert markdown.count("<details><summary>build output") == 1, "the same build output is shown once"
    text = render_text_report(RunResult(records, {"profile": "reference"}, exit_code=1))
    assert text.count("Build output for launch_path_order[minimal]") == 1 and "  | step 2" in text
    assert "/WRONG/END" in text, "the terminal has the whole message too"
    assert "the same as for `launch_path_order[minimal]`" in markdown


def test_junit_names_the_suite_and_the_buildpack(tmp_path: Path) -> None:
    from conformance import junit

    path = tmp_path / "junit.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="1">'
        '<testcase classname="venv.lib.python3.11.site-packages.conformance.suite.test_layers" name="test_x"/>'
        "</testsuite></testsuites>"
    )
    assert junit.finish(path, {"buildpack": "bpconform/python", "version": "0.1.0", "stack": "bookworm"})
    text = path.read_text()
    assert 'classname="conformance.suite.test_layers"' in text
    assert '<property name="buildpack" value="bpconform/python" />' in text
    assert '<property name="version" value="0.1.0" />' in text
    assert not junit.finish(tmp_path / "absent.xml", {})
    assert junit.suite_classname("test_pip") == "conformance.suite.test_pip"  # rootdir inside the installed suite
    assert junit.suite_classname("conformance.suite.test_pip") == "conformance.suite.test_pip"


# ------------------------------------------------------------------------------------------------
# Checks before a run: one message, exit 2
# ------------------------------------------------------------------------------------------------


def test_unknown_stack_is_one_message_with_did_you_mean() -> None:
    with pytest.raises(ConformanceError, match="unknown stack 'bookwrm' \\(did you mean 'bookworm'\\?\\)") as info:
        run.check_stack_ready("bookwrm")
    assert info.value.exit_code == 2


def test_profile_version_is_checked_against_buildpack_toml(tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "bp"
    shutil.copytree(BUILDPACK_DIR, copy)
    descriptor = copy / "buildpack.toml"
    descriptor.write_text(descriptor.read_text().replace('version = "0.', 'version = "7.', 1))
    with pytest.raises(ConformanceError, match=r"version 7\.\S+ of bpconform/python is outside") as info:
        run.check_inputs(parse_run("--buildpack", str(copy)))
    assert info.value.exit_code == 2
    with pytest.raises(ConformanceError, match="describes buildpack heroku/python") as info:
        run.check_inputs(parse_run("--buildpack", str(BUILDPACK_DIR), "--profile", "heroku-python"))
    assert info.value.exit_code == 2


def test_sample_apps_missing_from_the_apps_dir_are_one_set_up_error(tmp_path: Path) -> None:
    (tmp_path / "minimal").mkdir()
    with pytest.raises(ConformanceError) as info:
        run.check_inputs(parse_run("--buildpack", str(BUILDPACK_DIR), "--apps", str(tmp_path)))
    assert info.value.exit_code == 2
    assert "not-python" in info.value.message and "pinned-311" in info.value.message
    assert "minimal" not in info.value.message.split(" not found")[0], "an app that is there is not named"


def test_run_flags_reach_the_plugin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(run, "plugin_is_autoloaded", lambda: True)
    args = parse_run(
        *("--buildpack", "reference", "--apps", str(tmp_path), "--snapshot-dir", str(tmp_path / "snaps")),
        *("--previous-buildpack", "v0.1.0", "-k", "path", "--workers", "2", "--snapshot-update"),
    )
    run.resolve_buildpacks(args.buildpack)
    argv = run.build_pytest_argv(args, tmp_path)
    assert argv[argv.index("--apps") + 1] == str(tmp_path)
    assert argv[argv.index("--snapshot-dir") + 1] == str(tmp_path / "snaps")
    assert argv[argv.index("--previous-buildpack") + 1] == "v0.1.0"
    assert "--snapshot-update" in argv and argv[argv.index("-k") + 1] == "path"
    assert run.resolve_buildpacks([Path("reference")]) == [run.reference_buildpack()]
