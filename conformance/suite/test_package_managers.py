"""uv and Poetry apps: build-only tools, a synced and cached venv, and clear errors.

Every check here reads its promise from the profile's `[package-managers.<name>]` table (or the
top-level `[messages]`, `[apps]` and `[sbom]` keys); a buildpack whose profile has no such table
gets a skip whose reason names the missing key, never a pass and never a failure. A table that
names an app which does not exist is an ERROR (`find_app`).

The checks on the manager's main app share the run's build of it (`built_app`); the rebuild
promises share one chain of builds per manager (`lockfile_history.LockfileHistory`), and each of
them carries `bpconform_chain(<manager>)` so that under xdist a chain's checks run in one worker
(`conformance.scheduling`): the ones that ask for `history` get it from `pytest_generate_tests`,
the switch check (uv's chain) has it written on it, and `step_of` refuses a check without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from conformance.assertions import (
    assert_absent_in_image,
    assert_image_starts,
    assert_layer_types,
    assert_message,
    assert_no_traceback,
    assert_not_found,
    key_lines,
)
from conformance.backends import AppBuilder, Build
from conformance.fixtures import find_app, record_build_output
from conformance.profile import PACKAGE_MANAGERS, PackageManagerProfile, Profile, reason_pattern
from conformance.scheduling import CHAIN_MARKER, chain_key
from conformance.suite.lockfile_history import (
    SWITCH,
    LockfileHistory,
    StepResult,
    declared_dependencies,
    image_facts,
    normalize,
)
from conformance.suite.requirements import (
    HarnessError,
    need_app,
    need_launch_sbom,
    need_manager_app,
    need_manager_message,
    need_message,
    need_package_manager,
    need_role,
)
from conformance.tomlcompat import tomllib

BUILDPACK_FAILED = 51
uses_chain = getattr(pytest.mark, CHAIN_MARKER)  # `uses_chain(key)`: the check uses the session chain `key`
LOCK_FILES = {"uv": "uv.lock", "poetry": "poetry.lock"}
# The user variable the refused-variable app is built with: it would send pip's install elsewhere.
REFUSED_VARIABLE = ("PIP_TARGET", "/tmp/elsewhere")
TOOL_ABSENT_RULE = "build-only tools must be absent at run time (they live in build-only layers)"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`manager` over every package manager the suite knows (a missing table skips); `tool` over what
    must be absent at run time for that manager: pip always, plus the profile's `absent-at-runtime`.
    A check that asks for `history` uses its manager's chain, and is marked so."""
    if "manager" not in metafunc.fixturenames:
        return
    if "history" in metafunc.fixturenames:
        metafunc.parametrize("manager", [pytest.param(name, marks=uses_chain(name)) for name in PACKAGE_MANAGERS])
        return
    if "tool" not in metafunc.fixturenames:
        metafunc.parametrize("manager", PACKAGE_MANAGERS)
        return
    from conformance.settings import settings_of

    profile = settings_of(metafunc.config).profile
    pairs = []
    for name in PACKAGE_MANAGERS:
        table = profile.package_managers.get(name)
        tools = ["pip", *table.absent_at_runtime] if table else [name]
        pairs += [(name, tool) for tool in dict.fromkeys(tools)]
    metafunc.parametrize(("manager", "tool"), pairs)


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def pm(profile: Profile, manager: str) -> PackageManagerProfile:
    """The profile's table for `manager` (the check skips when there is none)."""
    return need_package_manager(profile, manager)


@pytest.fixture
def main_build(pm: PackageManagerProfile, built_app: Callable[[str], Build]) -> Build:
    """The run's shared build of the manager's main app."""
    return built_app(need_manager_app(pm, "main"))


@pytest.fixture(scope="session")
def lockfile_history(
    app_builder: AppBuilder, profile: Profile, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[PackageManagerProfile], LockfileHistory]:
    """The session's rebuild chain of each manager (`lockfile_history.LockfileHistory`), made on first use."""
    made: dict[str, LockfileHistory] = {}

    def get(manager: PackageManagerProfile) -> LockfileHistory:
        if manager.name not in made:
            scratch = tmp_path_factory.mktemp(f"{manager.name}-history")
            find = lambda name: find_app(app_builder.settings, name)  # noqa: E731
            made[manager.name] = LockfileHistory(app_builder, profile, manager, find, scratch)
        return made[manager.name]

    return get


@pytest.fixture
def history(
    pm: PackageManagerProfile, lockfile_history: Callable[[PackageManagerProfile], LockfileHistory]
) -> LockfileHistory:
    return lockfile_history(pm)


@pytest.fixture
def step_of(request: pytest.FixtureRequest) -> Callable[[LockfileHistory, str], StepResult]:
    """`step_of(chain, name)`: the chain's step (skip when the profile cannot make it), its build output
    kept with the check's report; a failed build of this or an earlier step is raised as the FAIL.
    A check not marked with the chain it uses is the suite's error: under xdist it could run in a
    worker of its own and build the whole chain again."""

    def get(chain: LockfileHistory, name: str) -> StepResult:
        marked = chain_key(request.node)
        if marked != chain.manager.name:
            said = f"is marked {CHAIN_MARKER}({marked!r})" if marked else f"is not marked {CHAIN_MARKER}"
            raise HarnessError(
                f"{request.node.nodeid} uses the {chain.manager.name} chain of builds but {said}",
                f"mark it @pytest.mark.{CHAIN_MARKER}({chain.manager.name!r}), so that under xdist it runs in"
                " the worker that builds that chain",
            )
        try:
            result = chain.step(name)
        except Exception:
            for label, output in chain.outputs[-1:]:
                record_build_output(request.node, label, output)
            raise
        if isinstance(result, str):
            pytest.skip(result)
        record_build_output(request.node, f"{chain.manager.name} history, step {name}", result.output)
        return result

    return get


# ------------------------------------------------------------------------------------------------
# Layers
# ------------------------------------------------------------------------------------------------


def test_tool_layer_types(main_build: Build, pm: PackageManagerProfile) -> None:
    """Each tool layer declares exactly the profile's types (seen by a later buildpack at build time)."""
    if not pm.tool_layers:
        pytest.skip(pm.gap("tool-layers"))
    escaped = main_build.profile.layers_dir_name
    tomls = main_build.probe.get("layer_tomls", {}).get(escaped, {})
    for layer in pm.tool_layers:
        text = tomls.get(layer.name)
        assert_layer_types(layer, None if text is None else tomllib.loads(text))


def test_tool_layers_not_in_image(main_build: Build, pm: PackageManagerProfile) -> None:
    """Tool layers are build-only: neither in the image's layer records nor on its disk."""
    if not pm.tool_layers:
        pytest.skip(pm.gap("tool-layers"))
    profile = main_build.profile
    for layer in pm.tool_layers:
        listed = main_build.image.layer(profile.buildpack_id, layer.name)
        assert listed is None, (
            f"{layer.name} layer ({pm.name}'s tool) is in the image {main_build.image.reference} as {listed.types};"
            f" rule: {TOOL_ABSENT_RULE}, so it must not be launch=true"
        )
        assert_absent_in_image(
            main_build.image,
            f"/layers/{profile.layers_dir_name}/{layer.name}",
            rule=f"the {layer.name} layer ({pm.name}'s tool) must not be launch=true (it would ship in the image)",
        )


def test_locked_venv_layer_types(main_build: Build, pm: PackageManagerProfile) -> None:
    """The lock-file venv has the profile's types at build time and, when it is a launch layer, in the image."""
    if pm.venv is None:
        pytest.skip(pm.gap("venv"))
    escaped = main_build.profile.layers_dir_name
    text = main_build.probe.get("layer_tomls", {}).get(escaped, {}).get(pm.venv.name)
    assert_layer_types(pm.venv, None if text is None else tomllib.loads(text))
    listed = main_build.image.layer(main_build.profile.buildpack_id, pm.venv.name)
    if pm.venv.launch:
        assert listed is not None and listed.types == pm.venv.types, (
            f"{pm.venv.name} layer of a {pm.name} app is recorded in the image as"
            f" {None if listed is None else listed.types}, expected {pm.venv.types}"
        )


def test_tool_build_env_for_later_buildpacks(main_build: Build, pm: PackageManagerProfile) -> None:
    """A later buildpack sees the profile's `build-env` values (e.g. uv told never to fetch a Python)."""
    if not pm.build_env:
        pytest.skip(pm.gap("build-env"))
    seen = main_build.probe.get("env", {})
    wrong = {name: seen.get(name) for name, value in pm.build_env.items() if seen.get(name) != value}
    assert not wrong, (
        f"a later buildpack of a {pm.name} app sees {wrong} at build time, expected {pm.build_env}; rule: the"
        f" {pm.name} layers' build env must keep a later buildpack's {pm.name} on the buildpack's own Python"
    )


# ------------------------------------------------------------------------------------------------
# Run time
# ------------------------------------------------------------------------------------------------


def test_locked_venv_uses_runtime_python(main_build: Build, pm: PackageManagerProfile) -> None:
    """The venv of a lock-file app is based on the runtime layer's Python, never a tool-managed one."""
    runtime = need_role(main_build.profile, "runtime")
    if pm.venv is None:
        pytest.skip(pm.gap("venv"))
    code = "import sys; print(sys.prefix); print(sys.base_prefix)"
    result = main_build.image.run(["python", "-c", code])
    lines = result.stdout.strip().splitlines()
    assert result.exit_code == 0 and len(lines) >= 2, f"`python -c {code!r}` failed at run time: {result.output}"
    prefix, base = lines[-2:]
    layers = f"/layers/{main_build.profile.layers_dir_name}"
    assert prefix == f"{layers}/{pm.venv.name}", f"at run time sys.prefix is {prefix}, not the {pm.venv.name} layer"
    assert base == f"{layers}/{runtime.name}", (
        f"the {pm.name} app's venv is based on {base}, not on the {runtime.name} layer ({layers}/{runtime.name});"
        f" rule: {pm.name} must use the buildpack's Python, never one it downloads or manages itself"
    )


def test_tool_absent_at_runtime(main_build: Build, pm: PackageManagerProfile, tool: str) -> None:
    """`<tool> --version` is not found and `import <tool>` fails for its absence, at run time."""
    image = main_build.image
    assert_image_starts(image, what=f"`{tool}` at run time in a {pm.name} app")
    command = f"{tool} --version"
    where = f"{pm.name} app at run time"
    assert_not_found(image.run(["sh", "-c", command]), command, what=where, rule=TOOL_ABSENT_RULE)
    module = tool.replace("-", "_")
    code = f"import {module}; print({module}.__file__)"
    assert_not_found(
        image.run(["python", "-c", code]),
        f"python -c '{code}'",
        what=f"{pm.name} app at run time",
        rule=TOOL_ABSENT_RULE,
    )


def test_ensurepip_restores_pip_in_lockfile_app(main_build: Build, pm: PackageManagerProfile) -> None:
    """Without the tool, a user can still get pip back, offline, from the wheel bundled with CPython."""
    script = "python -m ensurepip --default-pip && pip --version"
    result = main_build.image.run(["sh", "-c", script], network=False)
    assert result.exit_code == 0, (
        f"`{script}` failed in a {pm.name} app as {main_build.image.user} with no network:\n{key_lines(result.output)}"
    )
    assert "pip " in result.output, f"`{script}` printed no pip version: {result.output[-500:]}"


def test_dev_dependencies_not_installed(main_build: Build, pm: PackageManagerProfile) -> None:
    """The dev group is not installed; the app's own dependencies are (so an empty venv cannot pass)."""
    if not pm.dev_dependencies:
        pytest.skip(pm.gap("dev-dependencies"))
    _, installed = image_facts(main_build.image)
    runtime = declared_dependencies(main_build.app_dir)
    missing = sorted(runtime - installed)
    assert runtime and not missing, (
        f"the {pm.name} app's dependencies {sorted(runtime) or '(none declared)'} must be installed at run time;"
        f" missing: {missing or '-'}; installed: {sorted(installed)}"
    )
    leaked = sorted({normalize(name) for name in pm.dev_dependencies} & installed)
    assert not leaked, (
        f"dev dependencies {leaked} of the {pm.name} app are installed at run time; rule: only the main group is"
        f" installed (`uv sync --no-default-groups`, `poetry sync --only main`); installed: {sorted(installed)}"
    )


# ------------------------------------------------------------------------------------------------
# The cached venv across rebuilds
# ------------------------------------------------------------------------------------------------


def test_locked_venv_reused_on_unchanged_rebuild(pm: PackageManagerProfile, history, step_of) -> None:
    pattern = need_manager_message(pm, "venv-reused")
    step = step_of(history, "unchanged")
    assert_message(pattern, step.output, what=f"{pm.name} app rebuilt with no change: venv reuse")


def _assert_discarded(pm: PackageManagerProfile, step: StepResult, change: str) -> None:
    old, new = step.values["old"], step.values["new"]
    assert old and new and old != new, f"the {change} step did not change anything: {old!r} -> {new!r}"
    pattern = need_manager_message(pm, "venv-discarded", reason=reason_pattern(old, new))
    assert_message(pattern, step.output, what=f"{pm.name} app, {change} {old} -> {new}: venv discard with the reason")


def test_python_change_discards_locked_venv(pm: PackageManagerProfile, history, step_of) -> None:
    need_manager_message(pm, "venv-discarded", reason=".*")
    step = step_of(history, "python")
    _assert_discarded(pm, step, "Python version change")
    first = history.results["first"]
    assert step.python == step.values["new"] and step.python != first.python
    kept = sorted(declared_dependencies(history.find_app(step.app)) - step.distributions)
    assert not kept, f"after the Python change the {pm.name} app's dependencies {kept} are not installed"


def test_tool_version_change_discards_locked_venv(pm: PackageManagerProfile, history, step_of) -> None:
    need_manager_message(pm, "venv-discarded", reason=".*")
    _assert_discarded(pm, step_of(history, "tool-version"), f"{pm.name} version change")


def test_removed_dependency_gone_after_rebuild(pm: PackageManagerProfile, history, step_of) -> None:
    """A dependency dropped from pyproject.toml and the lock is not in the rebuilt venv (reused or not)."""
    need_manager_app(pm, "removed-dependency")
    after = step_of(history, "removed-dependency")
    before = history.results.get("unchanged") or history.results["first"]
    removed = declared_dependencies(history.find_app(before.app)) - declared_dependencies(history.find_app(after.app))
    if not removed:
        raise HarnessError(
            f"the removed-dependency app {after.app} declares every dependency of {before.app}: nothing is removed",
            f"drop a dependency from its pyproject.toml and lock file ({pm.key}.apps.removed-dependency)",
        )
    assert removed <= before.distributions, (
        f"{sorted(removed)} were not installed before they were removed ({before.app}: {sorted(before.distributions)})"
    )
    kept = sorted(removed & after.distributions)
    assert not kept, (
        f"{kept} removed from {after.app}'s pyproject.toml and {LOCK_FILES.get(pm.name, 'lock file')} are still"
        f" installed after the rebuild; rule: a cached venv must be synced to the lock (removing what it no longer"
        f" lists); installed: {sorted(after.distributions)}"
    )


@uses_chain(SWITCH[0])
def test_package_manager_switch_discards_venv(profile: Profile, lockfile_history, step_of) -> None:
    """The same app rebuilt (same image, same cache) as a uv app, then as a Poetry app."""
    source = need_package_manager(profile, SWITCH[0])
    target = need_package_manager(profile, SWITCH[1])
    need_manager_message(target, "venv-discarded", reason=".*")
    step = step_of(lockfile_history(source), "switch")
    _assert_discarded(target, step, "package manager change")


# ------------------------------------------------------------------------------------------------
# Failing apps
# ------------------------------------------------------------------------------------------------


def test_stale_lock_fails_with_message(pm: PackageManagerProfile, build_failure, app_dir) -> None:
    lock = LOCK_FILES[pm.name]
    pattern = need_manager_message(pm, "stale-lock", file=lock)
    failure = build_failure(app_dir(need_manager_app(pm, "stale-lock")))
    assert failure.exit_code == BUILDPACK_FAILED, f"expected a build failure (exit 51), got {failure.exit_code}"
    assert_message(pattern, failure.output, what=f"{lock} out of date with pyproject.toml")
    assert_no_traceback(failure.output, what=f"stale {lock}")


# Message key -> the [apps] purpose of the app that must fail with it.
FAILING_APPS = {
    "two-package-managers": "two-package-managers",
    "requires-python-mismatch": "requires-python-mismatch",
    "refused-variables": "refused-variable",
}


@pytest.mark.parametrize("message", FAILING_APPS)
def test_app_fails_with_message(profile: Profile, build_failure, app_dir, message: str) -> None:
    """Two package managers, a .python-version outside requires-python, a user variable that would
    send the install elsewhere: each fails the build with the profile's message, not a traceback."""
    values = {"variable": REFUSED_VARIABLE[0]} if message == "refused-variables" else {}
    pattern = need_message(profile, message, **values)
    app = app_dir(need_app(profile, FAILING_APPS[message]))
    user_env = dict([REFUSED_VARIABLE]) if message == "refused-variables" else None
    failure = build_failure(app, user_env=user_env)
    assert failure.exit_code == BUILDPACK_FAILED, f"expected a build failure (exit 51), got {failure.exit_code}"
    assert_message(pattern, failure.output, what=f"{app.name}: {message} message")
    assert_no_traceback(failure.output, what=app.name)


# ------------------------------------------------------------------------------------------------
# SBOM and native libraries
# ------------------------------------------------------------------------------------------------

SBOM_ROOT = "/layers/sbom/launch"  # the lifecycle's layout of exported launch SBOMs


def _venv_distributions(image, layer_dir: str) -> dict[str, str]:
    """name -> version of every distribution installed in the venv layer `layer_dir`, read in the image."""
    code = (
        "import glob, importlib.metadata as m, json, re, sys\n"
        f"paths = glob.glob({layer_dir!r} + '/lib/python3*/site-packages')\n"
        "found = {re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version"
        " for d in m.distributions(path=paths) if d.metadata['Name']}\n"
        "print(json.dumps({'paths': paths, 'found': found}))\n"
    )
    result = image.run(["python", "-c", code])
    lines = result.stdout.strip().splitlines()
    if result.exit_code != 0 or not lines:
        raise HarnessError(f"could not list the distributions of {layer_dir}: {result.output[-800:]}")
    data = json.loads(lines[-1])
    if not data["paths"]:
        raise HarnessError(
            f"{layer_dir} has no lib/python3*/site-packages in {image.reference}: it is not a virtual environment",
            "check the profile's venv / app-deps layer name",
        )
    return dict(data["found"])


def _sbom_components(image, path: str) -> dict[str, str]:
    text = image.read_file(path)
    assert text is not None, (
        f"no launch SBOM at {path} in {image.reference}; rule: the profile says the buildpack writes launch SBOMs"
        " ([sbom] launch = true), and the platform exports each launch layer's SBOM there"
    )
    document = json.loads(text)
    assert document.get("bomFormat") == "CycloneDX", f"{path} is not a CycloneDX document: {text[:300]}"
    components = document.get("components") or []
    return {
        normalize(str(item.get("name", ""))): str(item.get("version", ""))
        for item in components
        if item.get("type") == "library"
    }


def _assert_sbom_matches(image, profile: Profile, layer: str, what: str) -> None:
    layer_dir = f"/layers/{profile.layers_dir_name}/{layer}"
    installed = _venv_distributions(image, layer_dir)
    listed = _sbom_components(image, f"{SBOM_ROOT}/{profile.layers_dir_name}/{layer}/sbom.cdx.json")
    extra = sorted(f"{name}=={listed[name]}" for name in set(listed) - set(installed))
    missing = sorted(f"{name}=={installed[name]}" for name in set(installed) - set(listed))
    wrong = sorted(
        f"{name}: {listed[name]} (installed {installed[name]})"
        for name in set(listed) & set(installed)
        if listed[name] != installed[name]
    )
    assert not (extra or missing or wrong), (
        f"the launch SBOM of the {layer} layer ({what}) does not list exactly the installed distributions:"
        f" listed but not installed {extra or '-'} (a build-only tool such as pip/uv/poetry?), installed but not"
        f" listed {missing or '-'}, wrong version {wrong or '-'}"
    )


@pytest.fixture
def sbom_promised(profile: Profile) -> None:
    """Skip before any build when the profile promises no launch SBOMs."""
    need_launch_sbom(profile)


def test_launch_sbom_lists_venv_distributions(sbom_promised: None, build: Build) -> None:
    venv = need_role(build.profile, "app-deps")
    _assert_sbom_matches(build.image, build.profile, venv.name, f"pip app {build.app}")


def test_launch_sbom_lists_locked_venv_distributions(
    sbom_promised: None, pm: PackageManagerProfile, main_build: Build
) -> None:
    if pm.venv is None:
        pytest.skip(pm.gap("venv"))
    _assert_sbom_matches(main_build.image, main_build.profile, pm.venv.name, f"{pm.name} app {main_build.app}")


# Run in the image at launch (so LD_LIBRARY_PATH is the one processes get): every ELF file under
# /layers, and the `ldd` lines of those with a library that does not resolve.
LDD_SCRIPT = r"""
import json, os, shutil, subprocess
if shutil.which("ldd") is None:
    print(json.dumps({"ldd": None}))
    raise SystemExit(0)
checked, broken = 0, {}
for root, dirs, files in os.walk("/layers"):
    dirs.sort()
    for name in sorted(files):
        path = os.path.join(root, name)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as handle:
                if handle.read(4) != b"\x7fELF":
                    continue
        except OSError:
            continue
        checked += 1
        result = subprocess.run(["ldd", path], capture_output=True, text=True)
        missing = [line.strip() for line in result.stdout.splitlines() if "not found" in line]
        if missing:
            broken[path] = missing
print(json.dumps({"ldd": shutil.which("ldd"), "checked": checked, "broken": broken}))
"""


def test_native_libraries_resolve(build: Build) -> None:
    """Every ELF executable and shared object under /layers finds all its libraries at run time."""
    result = build.image.run(["python", "-c", LDD_SCRIPT], timeout=600)
    lines = result.stdout.strip().splitlines()
    assert result.exit_code == 0 and lines, f"the ldd scan failed in {build.image.reference}: {result.output[-800:]}"
    data = json.loads(lines[-1])
    if data["ldd"] is None:
        raise HarnessError(
            f"the run image of {build.image.reference} has no ldd, so native libraries cannot be checked",
            "use a run image with libc-bin (ldd), as Debian and Ubuntu bases have",
        )
    assert data["checked"] > 0, f"found no ELF file under /layers in {build.image.reference} (not even python)"
    broken = data["broken"]
    shown = "; ".join(f"{path}: {', '.join(lines[:3])}" for path, lines in sorted(broken.items())[:10])
    assert not broken, (
        f"{len(broken)} of {data['checked']} ELF files under /layers do not resolve all their libraries at run time"
        f" ({shown}); rule: a relocated runtime or a native extension must ship or find every library it links"
    )
