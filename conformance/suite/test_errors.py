"""Errors end in clear messages: non-Python apps fail detection, bad input fails the build clearly."""

from __future__ import annotations

from conformance.assertions import assert_message, assert_no_traceback

NO_GROUP_PASSED = 20
BUILDPACK_FAILED = 51


def test_detect_fails_cleanly(build_failure, profile) -> None:
    failure = build_failure(profile.require_app("not-python"))
    assert failure.exit_code == NO_GROUP_PASSED, f"expected detection to fail (exit 20), got {failure.exit_code}"
    assert_message(profile.message("detect-fail"), failure.message + failure.output, what="detect failure message")


def test_invalid_version_fails_with_message(build_failure, profile) -> None:
    app = profile.require_app("invalid-version")
    value = (app / profile.version_file).read_text().strip()
    failure = build_failure(app)
    assert failure.exit_code == BUILDPACK_FAILED, f"expected a build failure (exit 51), got {failure.exit_code}"
    pattern = profile.message("invalid-version", value=value, file=profile.version_file)
    assert_message(pattern, failure.output, what="invalid Python version message")
    assert_no_traceback(failure.output, what="invalid Python version")


def test_missing_dependency_fails_with_message(build_failure, profile) -> None:
    failure = build_failure(profile.require_app("missing-dependency"))
    assert failure.exit_code == BUILDPACK_FAILED, f"expected a build failure (exit 51), got {failure.exit_code}"
    assert_message(profile.message("missing-dependency"), failure.output, what="missing dependency message")
    assert_no_traceback(failure.output, what="missing dependency")
