"""Detection and build plan resolution (regression: these match the lifecycle today).

Mirrors `phase/detector_test.go` ("returns a build plan with matched dependencies", "falls back to
alternate build plans", "fails if all requires are not provided first", "fails if all provides
are not required after", "passes through the CNB_TARGET_* env vars") and
`buildpack/detect_test.go` (detect inputs: argv, env, working directory).
"""

from __future__ import annotations

import base64

import pytest

from conformance.engine import ensure_engine
from conformance.tomlcompat import tomllib

from .conftest import Built, Fidelity, make_buildpack, record, write_app

pytestmark = pytest.mark.docker

PROVIDER_DETECT = r"""
cat > "$2" <<'TOML'
[[provides]]
name = "dep2-missing"

[[or]]
[[or.provides]]
name = "dep1-present"
TOML
"""

REQUIRER_DETECT = r"""
cat > "$2" <<'TOML'
[[requires]]
name = "dep3-missing"

[[or]]
[[or.requires]]
name = "dep1-present"
[or.requires.metadata]
version = "1.2.3"
TOML
"""

RECORD_PLAN = r"""
echo "@@plan=$(base64 -w0 "$3")"
echo "@@argv-plan-is-env=$([ "$3" = "$CNB_BP_PLAN_PATH" ] && echo yes || echo no)"
echo "@@build-cwd=$(pwd)"
echo "@@target=${CNB_TARGET_OS-unset}/${CNB_TARGET_ARCH-unset}/${CNB_TARGET_DISTRO_NAME-unset}/\
${CNB_TARGET_DISTRO_VERSION-unset}"
"""


@pytest.fixture(scope="module")
def resolved(fidelity: Fidelity, tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("detect")
    provider = make_buildpack(root, "fixture/provider", RECORD_PLAN, detect=PROVIDER_DETECT)
    requirer = make_buildpack(root, "fixture/requirer", RECORD_PLAN.replace("@@", "@@req-"), detect=REQUIRER_DETECT)
    return fidelity.build(write_app(root / "app"), [provider, requirer])


def plan(built: Built, prefix: str = "") -> dict:
    value = record(built.output, f"{prefix}plan")
    assert value is not None, f"no {prefix}plan record in the build output"
    return tomllib.loads(base64.b64decode(value).decode())


def test_alternate_plan_matched_and_given_to_provider(resolved: Built) -> None:
    """phase/detector_test.go "falls back to alternate build plans" and "returns a build plan with
    matched dependencies": the [[or]] alternatives match, the provider's build plan holds the
    requirement with the requirer's metadata."""
    assert plan(resolved)["entries"] == [{"name": "dep1-present", "metadata": {"version": "1.2.3"}}]


def test_requirer_only_gets_no_entries(resolved: Built) -> None:
    """platform/files/plan.go `Find`: a buildpack gets the entries it *provides* (the requirer's
    plan is empty)."""
    assert plan(resolved, "req-").get("entries", []) == []


def test_build_inputs(resolved: Built) -> None:
    """buildpack/build_test.go "sets CNB_ vars": argv $3 is CNB_BP_PLAN_PATH; cwd is the app dir;
    phase/detector_test.go "passes through the CNB_TARGET_* env vars" (the run image's target)."""
    assert record(resolved.output, "argv-plan-is-env") == "yes"
    assert record(resolved.output, "build-cwd") == "/workspace"
    assert record(resolved.output, "target") == run_image_target(resolved)


def run_image_target(built: Built) -> str:
    """os/arch/distro name/distro version of the run image (platform/target_data.go: the target env
    comes from the run image's os/arch and its `io.buildpacks.base.distro.*` labels)."""
    attrs = ensure_engine().images.get(built.image.lifecycle_metadata["runImage"]["image"]).attrs
    labels = attrs["Config"].get("Labels") or {}
    distro = (
        labels.get("io.buildpacks.base.distro.name", "unset"),
        labels.get("io.buildpacks.base.distro.version", "unset"),
    )
    return "/".join((attrs["Os"], attrs["Architecture"], *distro))


REQUIRES = 'printf "[[requires]]\\nname = \\"%s\\"\\n" > "$2"'
PROVIDES = 'printf "[[provides]]\\nname = \\"%s\\"\\n" > "$2"'


@pytest.mark.parametrize(
    ("detect_a", "detect_b"),
    [
        pytest.param(
            'printf "[[requires]]\\nname = \\"nobody-provides\\"\\n" > "$2"', "exit 0", id="requires-not-provided"
        ),
        pytest.param(
            'printf "[[provides]]\\nname = \\"nobody-requires\\"\\n" > "$2"', "exit 0", id="provides-not-required"
        ),
        pytest.param("exit 0", 'printf "[[provides]]\\nname = \\"late\\"\\n" > "$2"', id="provides-not-required-last"),
    ],
)
def test_unresolved_plan_fails_detection(fidelity: Fidelity, tmp_path_factory, detect_a: str, detect_b: str) -> None:
    """phase/detector_test.go "fails if all requires are not provided first" / "fails if all
    provides are not required after": no group passes -> exit 20 (platform/exit.go FailedDetect)."""
    root = tmp_path_factory.mktemp("unresolved")
    a = make_buildpack(root, "fixture/a", detect=detect_a)
    b = make_buildpack(root, "fixture/b", detect=detect_b)
    failure = fidelity.fail(write_app(root / "app"), [a, b])
    assert failure.exit_code == 20, f"expected exit 20 (no group passed), got {failure.exit_code}: {failure.message}"
