"""Errors end in clear messages: non-Python apps fail detection, bad input fails the build clearly."""

from __future__ import annotations

from conformance.assertions import assert_message, assert_no_traceback
from conformance.suite.requirements import need_app, need_message

NO_GROUP_PASSED = 20
BUILDPACK_FAILED = 51


def test_detect_fails_cleanly(build_failure, app_dir, profile) -> None:
    pattern = need_message(profile, "detect-fail")
    failure = build_failure(app_dir(need_app(profile, "not-python")))
    assert failure.exit_code == NO_GROUP_PASSED, f"expected detection to fail (exit 20), got {failure.exit_code}"
    assert_message(pattern, failure.message + failure.output, what="detect failure message")


def test_invalid_version_fails_with_message(build_failure, app_dir, profile) -> None:
    app = app_dir(need_app(profile, "invalid-version"))
    value = (app / profile.version_file).read_text().strip()
    pattern = need_message(profile, "invalid-version", value=value, file=profile.version_file)
    failure = build_failure(app)
    assert failure.exit_code == BUILDPACK_FAILED, f"expected a build failure (exit 51), got {failure.exit_code}"
    assert_message(pattern, failure.output, what="invalid Python version message")
    assert_no_traceback(failure.output, what="invalid Python version")


def test_missing_dependency_fails_with_message(build_failure, app_dir, profile) -> None:
    pattern = need_message(profile, "missing-dependency")
    failure = build_failure(app_dir(need_app(profile, "missing-dependency")))
    assert failure.exit_code == BUILDPACK_FAILED, f"expected a build failure (exit 51), got {failure.exit_code}"
    assert_message(pattern, failure.output, what="missing dependency message")
    assert_no_traceback(failure.output, what="missing dependency")
