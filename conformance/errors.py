"""Errors the harness reports to people, as opposed to bugs.

Every failure a user can cause or fix (no Docker engine, a broken buildpack, malformed TOML)
is a `ConformanceError` carrying a *hint*: what to do next. The CLI and the pytest plugin print
these as two short paragraphs instead of a traceback.
"""

from __future__ import annotations


class ConformanceError(Exception):
    """A problem the user can act on; `hint` says how."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  -> {self.hint}" if self.hint else self.message


class EngineError(ConformanceError):
    """The Docker engine is missing, unreachable or refused an operation."""


class StackError(ConformanceError):
    """A base image (build or run) could not be made or is missing."""


class RuntimeBuildError(ConformanceError):
    """A Python runtime archive could not be built, fetched or verified."""


class PlatformError(ConformanceError):
    """The embedded CNB platform failed; `exit_code` mirrors the lifecycle's, `build_output` is
    everything the build printed up to the failure (for callers that did not stream it)."""

    def __init__(self, message: str, hint: str = "", exit_code: int = 1) -> None:
        super().__init__(message, hint)
        self.exit_code = exit_code
        self.build_output = ""
