"""Exit codes and messages of failed builds, as the lifecycle gives them (issue 13 item 3).

Each case is one real build of a tiny POSIX-sh buildpack written here, next to the code it must
give (platform/exit.go, cmd/exit.go, cmd/apis.go, cmd/lifecycle/builder.go:99-106). Messages name
files as the buildpack sees them (`/layers/<bp>/...`, `/cnb/buildpacks/...`), never a host path of
the build's work dir (which is gone when the build ends).
"""

from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.errors import PlatformError
from conformance.paths import work_root
from conformance.platform.creator import create

pytestmark = pytest.mark.docker

BP_ID = "fixture/exit"
BP_LAYERS = "/layers/fixture_exit"
BP_DIR = "/cnb/buildpacks/fixture_exit/0.0.1"

PROVIDES = """cat > "$2" <<'TOML'
[[provides]]
name = "some-dep"
[[requires]]
name = "some-dep"
TOML
"""


@dataclass(frozen=True)
class Case:
    build: str = "exit 0"
    detect: str = "exit 0"
    api: str = "0.10"
    detect_mode: int = 0o755
    build_mode: int | None = 0o755  # None: no bin/build at all


def make_buildpack(root: Path, case: Case) -> Path:
    bp = root / "bp"
    (bp / "bin").mkdir(parents=True)
    (bp / "buildpack.toml").write_text(
        f'api = "{case.api}"\n[buildpack]\nid = "{BP_ID}"\nversion = "0.0.1"\nname = "exit codes"\n'
        '[[targets]]\nos = "linux"\n'
    )
    for name, body, mode in (("detect", case.detect, case.detect_mode), ("build", case.build, case.build_mode)):
        if mode is None:
            continue
        path = bp / "bin" / name
        path.write_text("#!/bin/sh\nset -eu\n" + textwrap.dedent(body).strip("\n") + "\n")
        path.chmod(mode)
    return bp


LAUNCH = "cat > \"$1/launch.toml\" <<'TOML'\n{}\nTOML\n"
TWO_DEFAULTS = '[[processes]]\ntype = "a"\ncommand = ["true"]\ndefault = true\n' + (
    '[[processes]]\ntype = "b"\ncommand = ["true"]\ndefault = true'
)

# id: (the buildpack, the lifecycle's exit code, text the message must hold)
CASES: dict[str, tuple[Case, int, str]] = {
    "build-exits-7": (Case(build="exit 7"), 51, "bin/build exited with 7"),
    "no-bin-build": (Case(build_mode=None), 51, f"{BP_DIR}/bin/build does not exist"),
    "bin-build-not-executable": (Case(build_mode=0o644), 51, f"{BP_DIR}/bin/build is not executable"),
    "launch-toml-does-not-decode": (
        Case(build=LAUNCH.format("[[processes]\ntype = web")),
        52,
        f"malformed launch.toml {BP_LAYERS}/launch.toml",
    ),
    "layer-flags-outside-types": (
        Case(build='mkdir "$1/bad"\nprintf \'launch = true\\n\' > "$1/bad.toml"'),
        52,
        f"{BP_LAYERS}/bad.toml: launch must be in the [types] table",
    ),
    "layer-toml-does-not-decode": (
        Case(build="printf '[types\\n' > \"$1/bad.toml\""),
        52,
        f"{BP_LAYERS}/bad.toml",
    ),
    "two-default-processes": (
        Case(build=LAUNCH.format(TWO_DEFAULTS)),
        52,
        f"{BP_LAYERS}/launch.toml: several processes are marked default",
    ),
    "unmet-not-in-plan": (
        Case(detect=PROVIDES, build='printf \'[[unmet]]\\nname = "other"\\n\' > "$1/build.toml"'),
        52,
        f"{BP_LAYERS}/build.toml: unmet name 'other' is not in the buildpack plan",
    ),
    "unmet-without-name": (
        Case(detect=PROVIDES, build="printf '[[unmet]]\\n' > \"$1/build.toml\""),
        52,
        f"{BP_LAYERS}/build.toml: unmet[0] has no name",
    ),
    "buildpack-api-1": (Case(api="1"), 12, "Buildpack API 1 is not supported"),  # "1" is 1.0 (api/version.go:11)
    "buildpack-api-0.1": (Case(api="0.1"), 12, "Buildpack API 0.1 is not supported"),
    "detect-not-executable": (Case(detect_mode=0o644), 21, f"{BP_DIR}/bin/detect is not executable (mode 0644)"),
    "detect-exits-3": (Case(detect="exit 3"), 21, "error (exit 3)"),
    "detect-opts-out": (Case(detect="exit 100"), 20, "fail (exit 100)"),
}


@pytest.mark.parametrize(("case", "code", "text"), list(CASES.values()), ids=list(CASES))
def test_exit_code_and_message(builder, app, tmp_path: Path, case: Case, code: int, text: str) -> None:
    bp = make_buildpack(tmp_path, case)
    with pytest.raises(PlatformError) as failed:
        builder.build(app(), [str(bp)])
    error = failed.value
    assert error.exit_code == code, f"expected exit {code} (the lifecycle's), got {error.exit_code}: {error}"
    assert text in error.message, f"expected {text!r} in the message: {error.message}"
    shown = f"{error.message}\n{error.hint}"
    for host_root in (str(work_root()), "/dev/shm"):
        assert host_root not in shown, f"the message names the host path {host_root}: {shown}"


def test_missing_run_image_is_an_analyze_error(builder, app, tmp_path: Path) -> None:
    """cmd/lifecycle/creator.go:135-141: the analyzer cannot find the run image -> AnalyzeError, 32
    (before any buildpack runs: nothing of the build happened)."""
    bp = make_buildpack(tmp_path, Case(detect="echo detect-ran"))
    request = builder.request(app(), [str(bp)])
    request = dataclasses.replace(request, run_image="bpconform-platform-it/no-such-run-image:missing")
    with pytest.raises(PlatformError) as failed:
        create(request)
    assert failed.value.exit_code == 32, f"expected exit 32, got {failed.value.exit_code}: {failed.value}"
    assert "bpconform-platform-it/no-such-run-image:missing" in failed.value.message
    assert "===> DETECT" not in failed.value.build_output
