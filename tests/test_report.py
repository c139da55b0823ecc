"""The conformance report: the collector plugin, rendering, `bpconform run` options and `--compare`.

The real suite needs Docker and minutes, so `bpconform run` is exercised end to end against a fake
suite package and a fake plugin (that only declares the suite's options) generated with pytester.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

import pytest

from conformance import results, run
from conformance.cli import build_parser
from conformance.compare import Change, compare, compare_snapshots, parse_compare_setting
from conformance.errors import ConformanceError
from conformance.render import render_markdown_report, render_table, render_text_report, write_reports
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
    assert text.rstrip().endswith("DOES NOT CONFORM: 3 passed, 1 failed, 1 error, 1 skipped (6 tests) in 12.3s")


def test_all_passing_run_conforms() -> None:
    result = result_of([r for r in RECORDS if r.outcome in ("passed", "skipped")])
    assert result.ok
    assert "CONFORMS: 3 passed, 0 failed, 0 error, 1 skipped" in render_text_report(result)
    assert not RunResult(result.records, exit_code=2).ok  # pytest itself failing is never a pass


def test_markdown_report_has_table_settings_and_reasons() -> None:
    markdown = render_markdown_report(result_of(RECORDS, stack="bookworm"))
    assert markdown.startswith("# Conformance report: buildpack_under_test (profile reference)\n")
    assert "| check | `minimal` | `pinned-311` | `-` |" in markdown
    assert "| `layer_types` | pass | **FAIL** |  |" in markdown
    assert "| `rebuild` |  |  | **ERROR** |" in markdown
    assert "- stack: `bookworm`" in markdown
    assert "- **FAIL** `layer_types[pinned-311]`: pip layer is in the image / assert True is False" in markdown
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
    }
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
    assert by_label["layer_types[minimal]"].outcome == "passed"
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
    assert "DOES NOT CONFORM" in text


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
    assert options.buildpack and options.profile == "reference"

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
    return pytester


def test_cmd_run_prints_and_writes_the_report(fake_suite: pytest.Pytester, capsys: pytest.CaptureFixture) -> None:
    reports = fake_suite.path / "reports"
    args = parse_run("--buildpack", str(BUILDPACK_DIR), "--report-dir", str(reports), *NO_ENTRY_POINT)
    assert run.cmd_run(args) == 0
    out = capsys.readouterr().out
    table = out[out.index("check ") :].splitlines()
    assert table[0].split() == ["check", "minimal", "pinned-311", "-"]
    assert table[2].split() == ["build_time_path", "pass", "pass"]
    assert table[4].split() == ["pip_bump", "skip"]
    assert "CONFORMS: 4 passed, 0 failed, 0 error, 1 skipped" in out
    data = json.loads((reports / "report.json").read_text())
    assert data["ok"] is True and data["totals"]["total"] == 5
    assert (reports / "report.md").is_file()
    assert "testcase" in (reports / "junit.xml").read_text()


def test_cmd_run_fails_when_a_check_fails(fake_suite: pytest.Pytester, capsys: pytest.CaptureFixture) -> None:
    reports = fake_suite.path / "reports"
    args = parse_run(
        "--buildpack", str(BUILDPACK_DIR), "--profile", "heroku-python", "--report-dir", str(reports), *NO_ENTRY_POINT
    )  # fmt: skip
    assert run.cmd_run(args) == 1
    out = capsys.readouterr().out
    assert "FAIL launch_path[minimal]" in out and "FAIL launch_path[pinned-311]" in out


def test_cmd_run_compare_finds_exactly_the_changed_check(
    fake_suite: pytest.Pytester, capsys: pytest.CaptureFixture
) -> None:
    reports = fake_suite.path / "reports"
    args = parse_run(
        "--buildpack", str(BUILDPACK_DIR), "--report-dir", str(reports), "--compare", "lifecycle-1393", *NO_ENTRY_POINT
    )  # fmt: skip
    assert run.cmd_run(args) == 1  # the variant changed behaviour
    out = capsys.readouterr().out
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
