"""The pytest plugin (entry point `pytest11: bpconform`): options, ini keys and fixtures.

Installed with the package, so any test suite can use the fixtures (`built_app`, `build_app`,
`probe_record`...) to write its own buildpack tests, and `pytest --pyargs conformance.suite`
runs the ready conformance suite against the buildpack(s) given with `--buildpack`.

It also keeps verdicts honest: a failure that is the harness's (the engine went away, a missing
input, the probe left no record) is marked on its report so the report counts an ERROR, never the
buildpack's FAIL; a build that failed is the buildpack's FAIL even when it happened in a fixture;
and SIGINT/SIGTERM stop a suite run at once (`conformance.signals`).

Under pytest-xdist a suite run schedules every check of one chain of builds (marker
`bpconform_chain`) in one worker, and the other checks one by one (`conformance.scheduling`).
"""

from __future__ import annotations

import pytest

from conformance import signals
from conformance.engine import SESSION_ID
from conformance.errors import ConformanceError
from conformance.fixtures import *  # noqa: F403  (fixtures are registered by being importable here)
from conformance.fixtures import BuildFailed, build_outputs
from conformance.results import BUILD_FAILED_ATTR, COLLECTED_KEY, DESELECTED_KEY, ERROR_ATTR, CheckNamer
from conformance.scheduling import MARKER_HELP, ChainScheduling, chains_of, write_chain_map
from conformance.shared_builds import RUN_ID_KEY, SharedBuilds, is_worker, release_run, run_id, shared_dir

CHECK_NAME = pytest.StashKey[tuple[str, str]]()
HAD_WORKERS = pytest.StashKey[bool]()
DESELECTED = pytest.StashKey[int]()
OWNS_SIGNALS = pytest.StashKey[bool]()

OPTIONS = (
    ("buildpack", "append", "buildpack directory under test; repeat for several, in group order"),
    ("stack", "store", "stack to build on: bookworm (default) or trixie"),
    ("build-image", "store", "any build image meeting the CNB base-image contract (with --run-image)"),
    ("run-image", "store", "any run image meeting the CNB base-image contract (with --build-image)"),
    ("platform", "store", "build backend: embedded (default) or pack (needs the pack CLI and a builder)"),
    ("builder", "store", "builder image for --platform pack"),
    ("lifecycle-image", "store", "lifecycle image for --platform pack"),
    ("profile", "store", "expectations profile: a built-in name (reference, heroku-python) or a TOML path"),
    ("ca-bundle", "store", "CA bundle handed to build containers with --online (default: the host's)"),
    ("apps", "store", "directory holding the sample apps (default: the profile's apps-dir, else the shipped ones)"),
    ("snapshot-dir", "store", "where snapshots live, per profile and stack (default: ./snapshots)"),
    ("previous-buildpack", "store", "previous release for the upgrade check: a directory or a git ref"),
)


def _engine_exceptions() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the engine (or the connection to it) failed, not the buildpack."""
    import docker.errors
    import requests.exceptions

    return (docker.errors.DockerException, requests.exceptions.ConnectionError, ConnectionError)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bpconform", "buildpack conformance")
    for name, action, help_text in OPTIONS:
        group.addoption(f"--{name}", action=action, dest=f"bpconform_{name.replace('-', '_')}", help=help_text)
        parser.addini(f"bpconform_{name.replace('-', '_')}", help_text, type="linelist" if action == "append" else None)
    group.addoption(
        "--offline",
        action="store_false",
        dest="bpconform_online",
        default=None,
        help="builds install from the offline wheelhouse (default)",
    )
    group.addoption(
        "--online",
        action="store_true",
        dest="bpconform_online",
        help="builds reach the package index (with the host's CA bundle)",
    )
    group.addoption(
        "--emulate-lifecycle-1393",
        action="store_true",
        dest="bpconform_emulate_1393",
        default=False,
        help="apply build-time layer env in the pre-0.20.1 (buildpacks/lifecycle#1393) order",
    )


def _is_suite_run(config: pytest.Config) -> bool:
    return bool(config.getoption("bpconform_buildpack", default=None) or config.getini("bpconform_buildpack"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bpconform_check(name): the conformance check a test implements")
    config.addinivalue_line("markers", MARKER_HELP)
    if is_worker(config):
        SharedBuilds(run_id(config)).register_session(SESSION_ID)
    if _is_suite_run(config):
        config.stash[OWNS_SIGNALS] = signals.install()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """(pytest-xdist controller) Workers join this process's run: the builds they share belong to it."""
    node.workerinput[RUN_ID_KEY] = SESSION_ID
    node.config.stash[HAD_WORKERS] = True


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log) -> ChainScheduling | None:
    """(pytest-xdist controller) A suite run under `--dist load` (xdist's default with `-n`) keeps each
    chain of builds in one worker; anything else is xdist's own choice (`conformance.scheduling`)."""
    if config.getvalue("dist") != "load" or not _is_suite_run(config):
        return None
    return ChainScheduling(config, log, shared=shared_dir(SESSION_ID))


def pytest_unconfigure(config: pytest.Config) -> None:
    """The process whose session is the run (the xdist controller, or the only process) ends it,
    after every worker has ended (xdist stops them at session finish)."""
    if config.stash.get(OWNS_SIGNALS, False):
        signals.uninstall()
    if run_id(config) == SESSION_ID:
        release_run(SESSION_ID, had_workers=config.stash.get(HAD_WORKERS, False))


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        config = items[0].config
        config.stash[DESELECTED] = config.stash.get(DESELECTED, 0) + len(items)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In an xdist worker, name each test as the report does: the controller, which collects
    nothing, then gets (check, app) with each result instead of guessing from the node id; and
    leave the controller the map of which selected checks share a chain of builds (trylast: after
    `-k`/`-m` deselection; before `pytest_collection_finish` sends the controller the collection)."""
    if is_worker(config):
        namer = CheckNamer()
        for item in items:
            item.stash[CHECK_NAME] = namer(item)
        if _is_suite_run(config):  # the runs the controller's scheduler is for
            write_chain_map(shared_dir(run_id(config)), str(config.workerinput["workerid"]), chains_of(items))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """(xdist worker) Tell the controller how much of the suite this worker left out (-k, --lf):
    a subset is PARTIAL, never CONFORMS."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output[DESELECTED_KEY] = session.config.stash.get(DESELECTED, 0)
        output[COLLECTED_KEY] = session.testscollected


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Say whose failure it is, and attach the build output that led to it (the last 200 lines)."""
    outcome = yield
    report = outcome.get_result()
    if CHECK_NAME in item.stash:
        report.bpconform_check = list(item.stash[CHECK_NAME])  # sent along with the report to the controller
    if not report.failed or call.excinfo is None:
        return
    error = call.excinfo.value
    if isinstance(error, BuildFailed):
        setattr(report, BUILD_FAILED_ATTR, True)
        report.sections.append((f"build output: {error.app}", _tail(error.output)))
        return
    said = harness_fault(error, report.longreprtext)
    if said:
        setattr(report, ERROR_ATTR, said)
    if report.when == "call":
        for label, text in build_outputs(item)[-2:]:
            report.sections.append((f"build output: {label}", _tail(text)))


def harness_fault(error: BaseException, text: str) -> str:
    """Why a failure is not the buildpack's (a short label, with a hint when there is one), or ""."""
    if isinstance(error, pytest.UsageError):
        return f"usage error: {error}"
    if isinstance(error, ConformanceError):
        return "set-up error"  # its message and hint are the failure's own text
    if isinstance(error, _engine_exceptions()):
        return "harness error: the Docker engine failed or went away (not the buildpack's fault)"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, AssertionError) and "Snapshot '" in text and "does not exist!" in text:
        return "missing snapshot: run with --snapshot-update once, review the new snapshots and keep them"
    return ""


def _tail(text: str, lines: int = 200) -> str:
    return "\n".join(text.splitlines()[-lines:])
