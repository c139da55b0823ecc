"""Exit codes and error messages of failed builds (issue 13 item 3).

The lifecycle's codes (`platform/exit.go` defaultExitCodes): 12 incompatible Buildpack API, 20 no
group passed, 21 no group passed and a buildpack errored, 32 analyze error, 51 a buildpack's
`bin/build` failed, 52 any other build error (`cmd/lifecycle/builder.go`: only
`buildpack.ErrTypeBuildpack` maps to 51), 62 an export error (a process type the exporter refuses, a
`store.toml` that does not decode: the lifecycle reads it only at export). With pack, the lifecycle's
code is read from pack's `exit status N` line. Each case is one tiny build that fails.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from conformance.backends import EMBEDDED, EmbeddedBackend

from .conftest import Failure, Fidelity, make_buildpack, write_app

pytestmark = pytest.mark.docker


@dataclass(frozen=True)
class Case:
    build: str = "exit 0"
    detect: str = "exit 0"
    api: str = "0.12"
    executable: bool = True
    with_build: bool = True
    plan: bool = False  # the buildpack provides and requires `some-dep`, so `[[unmet]]` has an entry to name
    sbom_formats: tuple[str, ...] = ()


LAYER = 'mkdir -p "$1/bad"\n'

CASES: dict[str, tuple[Case, int, str]] = {
    # id: (what the buildpack does, the lifecycle's exit code, the lifecycle test it mirrors)
    "build-fails": (Case(build="exit 7"), 51, 'buildpack/build_test.go "errors when the command fails"'),
    "no-bin-build": (
        Case(with_build=False),
        51,
        "cmd/lifecycle/builder.go: exec of bin/build fails -> ErrTypeBuildpack",
    ),
    "invalid-launch-toml": (
        Case(build="printf '[[processes]\\ntype = web\\n' > \"$1/launch.toml\""),
        52,
        'buildpack/build_test.go "processes" (launch.toml that does not decode)',
    ),
    "flags-outside-types": (
        Case(build=LAYER + "printf 'launch = true\\n' > \"$1/bad.toml\""),
        52,
        'buildpack/build_test.go "errors when the launch, cache and build flags are in the top level"',
    ),
    "two-default-processes": (
        Case(
            build='printf \'[[processes]]\\ntype = "a"\\ncommand = ["true"]\\ndefault = true\\n'
            '[[processes]]\\ntype = "b"\\ncommand = ["true"]\\ndefault = true\\n\' > "$1/launch.toml"'
        ),
        52,
        'buildpack/build_test.go "there is more than one default=true process"'
        ' - "errors when the processes have different types"',
    ),
    "unmet-unknown-name": (
        Case(build='printf \'[[unmet]]\\nname = "unknown-dep"\\n\' > "$1/build.toml"', plan=True),
        52,
        'buildpack/build_test.go "there are invalid unmet entries" - "errors when name is invalid"',
    ),
    "unmet-without-name": (
        Case(build="printf '[[unmet]]\\n' > \"$1/build.toml\"", plan=True),
        52,
        'buildpack/build_test.go "there are invalid unmet entries" - "errors when name is missing"',
    ),
    "undeclared-sbom-format": (
        Case(build="printf '{}' > \"$1/launch.sbom.spdx.json\"", sbom_formats=("application/vnd.cyclonedx+json",)),
        52,
        'buildpack/build_test.go "SBOM files" - "errors if there are undeclared media types"',
    ),
    "process-type-forbidden-character": (
        Case(build='printf \'[[processes]]\\ntype = "a|b"\\ncommand = ["true"]\\n\' > "$1/launch.toml"'),
        62,
        'layers/launcher_test.go "process-type contains invalid character" - "returns an error" (an export error)',
    ),
    "malformed-store-toml": (
        Case(build="printf '[metadata\\nruns = 1\\n' > \"$1/store.toml\""),
        62,
        "buildpack/layers.go:56-62 (store.toml decoded in ReadLayersDir) from phase/exporter.go:367: an export error",
    ),
    "buildpack-api-0.1": (
        Case(api="0.1"),
        12,
        'acceptance/detector_test.go "the order.toml contains a buildpack using an unsupported api"',
    ),
    "buildpack-api-1.0": (Case(api="1.0"), 12, "api/apis.go: 1.0 is not among the supported Buildpack APIs"),
    "detect-not-executable": (
        Case(executable=False),
        21,
        'phase/detector_test.go "fails with specific error if any bp detect fails in an unexpected way"',
    ),
    "detect-errors": (Case(detect="exit 3"), 21, 'phase/detector_test.go "returns a buildpack error"'),
    "detect-opts-out": (
        Case(detect="exit 100"),
        20,
        'acceptance/detector_test.go "no buildpack group passed detection" - "errors and exits with the expected code"',
    ),
}

FAILS_TODAY = {}

PROVIDER = """
cat > "$2" <<'TOML'
[[provides]]
name = "some-dep"
[[requires]]
name = "some-dep"
TOML
"""


def params() -> list[object]:
    found = []
    for name, (case, code, mirrors) in CASES.items():
        marks = [pytest.mark.xfail(strict=True, reason=FAILS_TODAY[name])] if name in FAILS_TODAY else []
        found.append(pytest.param(case, code, mirrors, id=name, marks=marks))
    return found


@pytest.fixture(scope="module")
def failing_build(fidelity: Fidelity, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, Case], Failure]:
    root = tmp_path_factory.mktemp("exit-codes")
    app = write_app(root / "app")

    def fail(name: str, case: Case) -> Failure:
        bp = make_buildpack(
            root / name,
            "fixture/failing",
            case.build,
            detect=PROVIDER if case.plan else case.detect,
            api=case.api,
            executable=case.executable,
            with_build=case.with_build,
            sbom_formats=case.sbom_formats,
        )
        return fidelity.fail(app, [bp])

    return fail


@pytest.mark.parametrize(("case", "code", "mirrors"), params())
def test_exit_code(failing_build, request: pytest.FixtureRequest, case: Case, code: int, mirrors: str) -> None:
    """The failed build's exit code is the lifecycle's (each case's docstring is its `mirrors`)."""
    failure = failing_build(request.node.callspec.id, case)
    assert failure.exit_code == code, (
        f"{request.node.callspec.id} ({mirrors}): expected exit {code}, got {failure.exit_code}: {failure.message}"
    )


def test_messages_name_in_container_paths(failing_build, fidelity: Fidelity) -> None:
    """buildpack/build_test.go "errors when the launch, cache and build flags are in the top level":
    the lifecycle names the file as `/layers/<bp>/<layer>.toml` (its own view), never a host path."""
    case = CASES["flags-outside-types"][0]
    failure = failing_build("messages", case)
    host_roots = [str(fidelity.workdir), "/dev/shm", "/tmp/"]
    leaked = [root for root in host_roots if root in failure.text]
    assert not leaked, f"the error names host paths {leaked}: {failure.message}"
    assert "/layers/fixture_failing/bad.toml" in failure.text, failure.message


def test_a_malformed_store_toml_does_not_hide_a_later_failed_build(
    fidelity: Fidelity, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The lifecycle reads store.toml only at export (phase/exporter.go:367), so when a later buildpack's
    bin/build fails the build ends with that buildpack's 51, not with the earlier one's bad store.toml."""
    root = tmp_path_factory.mktemp("store-then-fail")
    first = make_buildpack(root, "fixture/store", "printf '[metadata\\n' > \"$1/store.toml\"")
    second = make_buildpack(root, "fixture/fails", "exit 7")
    failure = fidelity.fail(write_app(root / "app"), [first, second])
    assert failure.exit_code == 51, f"expected fixture/fails' exit 51, got {failure.exit_code}: {failure.message}"
    assert "fixture/fails" in failure.message, failure.message


def test_missing_run_image_is_an_analyze_error(fidelity: Fidelity, tmp_path_factory: pytest.TempPathFactory) -> None:
    """acceptance/analyzer_test.go (run image not found -> analyze error) and platform/exit.go
    `AnalyzeError: 32`. The run image comes from the stack, so only the embedded backend can be
    pointed at one that does not exist here (with pack it is the builder's)."""
    if fidelity.kind != EMBEDDED:
        pytest.skip("pointing pack at a missing run image needs --run-image, which BuildJob does not carry")
    root = tmp_path_factory.mktemp("missing-run")
    bp = make_buildpack(root, "fixture/ok")
    stack = dataclasses.replace(fidelity.provisions.stack, run_image="bpconform-fidelity/no-such-run-image:missing")
    backend = EmbeddedBackend(dataclasses.replace(fidelity.provisions, stack=stack), fidelity.workdir / "missing-run")
    failure = Fidelity(fidelity.kind, backend, fidelity.provisions, fidelity.workdir, "missing-run", fidelity.images)
    result = failure.fail(write_app(root / "app"), [bp])
    assert result.exit_code == 32, f"missing run image: expected exit 32, got {result.exit_code}: {result.message}"
