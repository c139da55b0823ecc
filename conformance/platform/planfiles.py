"""Plan files in the plans dir (`/cnb-plans`), which buildpacks can write to: made and read safely.

A buildpack could plant a link at the path of the next buildpack's plan; the host then wrote the
plan through it, as root (any host file truncated). So a plan is created afresh: whatever is at its
path is unlinked and the file is made with O_CREAT|O_EXCL|O_NOFOLLOW beneath the plans dir. The
plan `bin/detect` wrote is read without following a link either: a link is an errored detect run.
"""

from __future__ import annotations

from pathlib import Path

from conformance.platform import safefs
from conformance.platform.detect import CODE_PASS, DetectRun
from conformance.tomlcompat import TOMLDecodeError, tomllib


def write_plan(plans_dir: Path, name: str, text: str, owner: tuple[int, int] | None = None) -> None:
    """Create `<plans_dir>/<name>` with `text`; `owner` (uid, gid) for a file the buildpack writes."""
    safefs.write_new_file(plans_dir, name, text.encode("utf-8"), mode=0o644, owner=owner)


def detect_run(exit_code: int, output: str, plans_dir: Path, name: str, shown: str) -> DetectRun:
    """What one `bin/detect` did, with the plan it wrote (as `DetectRun.from_plan_file`, read safely)."""
    if exit_code != CODE_PASS:
        return DetectRun(exit_code, output, None)
    try:
        data = safefs.read_file(plans_dir, name, shown=f"the build plan {shown}")
    except safefs.UnsafePath as exc:
        return DetectRun(-1, output, None, error=exc.message)
    if not data:
        return DetectRun(exit_code, output, None)
    try:
        return DetectRun(exit_code, output, tomllib.loads(data.decode("utf-8")))
    except (TOMLDecodeError, UnicodeDecodeError) as exc:
        return DetectRun(-1, output, None, error=f"malformed build plan {shown}: {exc}")
