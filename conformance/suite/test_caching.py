"""Caching: what is reused, what is invalidated and why, and that the venv never goes stale."""

from __future__ import annotations

import shutil
from pathlib import Path

from conformance.assertions import assert_image_starts, assert_message, assert_not_found
from conformance.fixtures import Build
from conformance.suite.requirements import (
    HarnessError,
    need_app,
    need_message,
    need_pip_versions,
    need_python_alternative,
    need_role,
)


def _set_python_version(app: Path, version_file: str, version: str) -> None:
    (app / version_file).write_text(f"{version}\n")


def _python_version(build: Build) -> str:
    """The full runtime version the image's `python` reports."""
    result = build.image.run(["python", "-c", "import platform; print(platform.python_version())"])
    assert result.exit_code == 0, f"`python` does not run in {build.image.reference}: {result.output[-500:]}"
    return result.output.strip().splitlines()[-1]


def test_rebuild_reuses_cached_layers(build_app, rebuild, app_copy, profile) -> None:
    runtime = need_role(profile, "runtime")
    need_message(profile, "runtime-reused")
    first = build_app(app_copy(need_app(profile, "default")))
    second = rebuild(first)
    before, after = first.layer("runtime"), second.layer("runtime")
    assert before is not None and after is not None, f"{runtime.name} layer missing from the image"
    assert before.sha == after.sha, (
        f"{runtime.name} layer digest changed on a rebuild with no change: {before.sha} -> {after.sha}"
    )
    assert_message(
        need_message(profile, "runtime-reused", version=_python_version(second)),
        second.output,
        what=f"rebuild: {runtime.name} layer reuse message",
    )
    reused = profile.message("package-manager-reused")
    if profile.role("package-manager") is not None and reused is not None:
        assert_message(reused, second.output, what="rebuild: package-manager layer reuse message")


def test_python_version_change_invalidates_runtime(build_app, rebuild, app_copy, profile) -> None:
    alternative = need_python_alternative(profile)
    runtime = need_role(profile, "runtime")
    need_message(profile, "runtime-invalidated")
    app = app_copy(need_app(profile, "default"))
    _set_python_version(app, profile.version_file, alternative)
    first = build_app(app)
    old = _python_version(first)
    _set_python_version(app, profile.version_file, profile.python_default)
    second = rebuild(first, app)
    new = _python_version(second)
    assert old != new, f"changing {profile.version_file} from {alternative} to {profile.python_default} kept {old}"
    assert first.layer("runtime").sha != second.layer("runtime").sha, (
        f"the {runtime.name} layer kept its digest across Python {old} -> {new}"
    )
    assert_message(
        need_message(profile, "runtime-invalidated", old=old, new=new),
        second.output,
        what="Python version change: invalidation message",
    )


def test_pip_version_change_invalidates_only_pip(build_app, rebuild, app_copy, buildpack_copy, profile) -> None:
    current, other = need_pip_versions(profile)
    runtime = need_role(profile, "runtime")
    invalidated = need_message(profile, "package-manager-invalidated", old=other, new=current)
    reused = need_message(profile, "runtime-reused")
    candidate = buildpack_copy()
    older = candidate.parent / "older-buildpack"
    shutil.copytree(candidate, older)
    profile.set_pip_version(older, other)
    app = app_copy(need_app(profile, "default"))
    first = build_app(app, buildpacks=[older])
    second = rebuild(first, app, buildpacks=[candidate])
    assert_message(invalidated, second.output, what="pip version change: invalidation message")
    assert first.layer("runtime").sha == second.layer("runtime").sha, (
        f"the {runtime.name} layer changed when only the pip version changed; rule: the runtime layer's cache key"
        " must not include the pip version"
    )
    assert_message(reused, second.output, what="pip version change: runtime reuse")


def test_venv_never_keeps_removed_dependency(build_app, rebuild, app_copy, profile) -> None:
    app = app_copy(need_app(profile, "default"))
    requirements = (app / "requirements.txt").read_text().splitlines()
    if len(requirements) < 2:
        raise HarnessError(
            f"the default app {app.name} lists {len(requirements)} requirement(s); this check removes the last of two",
            f"give the profile's default app at least two lines in requirements.txt ({profile.path})",
        )
    removed = requirements[-1].split("==")[0].strip().lower().replace("-", "_")
    first = build_app(app)
    imported = first.image.run(["python", "-c", f"import {removed}"])
    assert imported.exit_code == 0, f"`import {removed}` fails before it was removed: {imported.output[-500:]}"
    (app / "requirements.txt").write_text("\n".join(requirements[:-1]) + "\n")
    second = rebuild(first, app)
    assert_image_starts(second.image, what=f"`import {removed}` after removing it")
    result = second.image.run(["python", "-c", f"import {removed}"])
    assert_not_found(
        result,
        f"python -c 'import {removed}'",
        what=f"after removing {removed} from requirements.txt and rebuilding",
        rule="the app-deps layer must be rebuilt every time, never restored from cache",
    )
