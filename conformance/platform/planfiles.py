"""Plan files in the plans dir (`/cnb-plans`), which buildpacks can write to: made and read safely.

A buildpack could plant a link at the path of the next buildpack's plan; the host then wrote the
plan through it, as root (any host file truncated). So a plan is created afresh: whatever is at its
path is unlinked and the file is made with O_CREAT|O_EXCL|O_NOFOLLOW beneath the plans dir. (The
plan `bin/detect` wrote is read without following a link either: `DetectRun.from_plan_file`.)
"""

from __future__ import annotations

from pathlib import Path

from conformance.platform import safefs


def write_plan(plans_dir: Path, name: str, text: str, owner: tuple[int, int] | None = None) -> None:
    """Create `<plans_dir>/<name>` with `text`; `owner` (uid, gid) for a file the buildpack writes."""
    safefs.write_new_file(plans_dir, name, text.encode("utf-8"), mode=0o644, owner=owner)
