"""Caching: what is reused, what is invalidated and why, and that the venv never goes stale."""

from __future__ import annotations

from pathlib import Path

from conformance.assertions import assert_message
from conformance.fixtures import Build


def _set_python_version(app: Path, version_file: str, version: str) -> None:
    (app / version_file).write_text(f"{version}\n")


def _python_version(build: Build) -> str:
    """The full runtime version the build reported in the runtime layer's metadata or PATH probe."""
    result = build.image.run(["python", "-c", "import platform; print(platform.python_version())"])
    return result.output.strip().splitlines()[-1]


def test_rebuild_reuses_cached_layers(build_app, rebuild, app_copy, profile) -> None:
    first = build_app(app_copy(profile.apps["default"]))
    second = rebuild(first)
    runtime = profile.require_role("runtime")
    before, after = first.layer("runtime"), second.layer("runtime")
    assert before is not None and after is not None, f"{runtime.name} layer missing from the image"
    assert before.sha == after.sha, (
        f"{runtime.name} layer digest changed on a rebuild with no change: {before.sha} -> {after.sha}"
    )
    assert_message(
        profile.message("runtime-reused", version=_python_version(second)),
        second.output,
        what=f"rebuild: {runtime.name} layer reuse message",
    )
    if profile.role("package-manager") is not None and "package-manager-reused" in profile.messages:
        assert_message(
            profile.message("package-manager-reused"),
            second.output,
            what="rebuild: package-manager layer reuse message",
        )


def test_python_version_change_invalidates_runtime(build_app, rebuild, app_copy, profile) -> None:
    alternative = profile.require_python_alternative()
    app = app_copy(profile.apps["default"])
    _set_python_version(app, profile.version_file, alternative)
    first = build_app(app)
    old = _python_version(first)
    _set_python_version(app, profile.version_file, profile.python_default)
    second = rebuild(first, app)
    new = _python_version(second)
    assert old != new, f"changing {profile.version_file} from {alternative} to {profile.python_default} kept {old}"
    assert first.layer("runtime").sha != second.layer("runtime").sha, "runtime layer kept its digest across versions"
    assert_message(
        profile.message("runtime-invalidated", old=old, new=new),
        second.output,
        what="Python version change: invalidation message",
    )


def test_pip_version_change_invalidates_only_pip(build_app, rebuild, app_copy, buildpack_copy, profile) -> None:
    current, other = profile.require_pip_versions()
    candidate = buildpack_copy()
    older = candidate.parent / "older-buildpack"
    import shutil

    shutil.copytree(candidate, older)
    profile.set_pip_version(older, other)
    app = app_copy(profile.apps["default"])
    first = build_app(app, buildpacks=[older])
    second = rebuild(first, app, buildpacks=[candidate])
    assert_message(
        profile.message("package-manager-invalidated", old=other, new=current),
        second.output,
        what="pip version change: invalidation message",
    )
    assert first.layer("runtime").sha == second.layer("runtime").sha, (
        "the runtime layer changed when only the pip version changed; rule: the runtime layer's cache key must"
        " not include the pip version"
    )
    assert_message(profile.message("runtime-reused"), second.output, what="pip version change: runtime reuse")


def test_venv_never_keeps_removed_dependency(build_app, rebuild, app_copy, profile) -> None:
    app = app_copy(profile.apps["default"])
    requirements = (app / "requirements.txt").read_text().splitlines()
    assert len(requirements) >= 2, "the default app needs two requirements for this check"
    removed = requirements[-1].split("==")[0].strip().lower().replace("-", "_")
    first = build_app(app)
    assert first.image.run(["python", "-c", f"import {removed}"]).exit_code == 0
    (app / "requirements.txt").write_text("\n".join(requirements[:-1]) + "\n")
    second = rebuild(first, app)
    result = second.image.run(["python", "-c", f"import {removed}"])
    assert result.exit_code != 0, (
        f"{removed} was removed from requirements.txt but still imports after a rebuild: the app-deps layer"
        " must be rebuilt every time, never restored from cache"
    )
