"""Errors the harness reports to people, as opposed to bugs.

Every failure a user can cause or fix (no Docker engine, a broken buildpack, malformed TOML)
is a `ConformanceError` carrying a *hint*: what to do next. The CLI and the pytest plugin print
these as two short paragraphs instead of a traceback.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterable, Iterator

USAGE_EXIT = 2
"""Every `bpconform` command's exit status for a usage error (argparse's own convention): the command
line, or a file or name it gives, is wrong, and nothing was built or run."""


class ConformanceError(Exception):
    """A problem the user can act on; `hint` says how."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  -> {self.hint}" if self.hint else self.message


class UsageError(ConformanceError):
    """The command line (or a file or name it gives) is wrong: exit 2, as argparse's own errors."""

    exit_code = USAGE_EXIT


@contextlib.contextmanager
def usage_errors(*, except_for: tuple[type[ConformanceError], ...] = ()) -> Iterator[None]:
    """Within: every `ConformanceError` but those `except_for` is a usage error (exit 2), message and hint
    unchanged. For the checks a command makes of its inputs before anything slow: the same
    `EngineError` that means "the engine is gone" elsewhere means "--timeout 0 is not a timeout" here;
    where the engine is asked (are these base images usable?), `except_for=(EngineError,)` keeps
    "the engine is gone" what it is."""
    try:
        yield
    except UsageError:
        raise
    except ConformanceError as exc:
        if isinstance(exc, except_for):
            raise
        raise UsageError(exc.message, exc.hint) from exc


def did_you_mean(value: str, known: Iterable[str], *, cutoff: float = 0.6) -> str:
    """` (did you mean 'x'?)` for the closest of `known` to a mistyped `value`, or "" when none is close."""
    close = difflib.get_close_matches(value, list(known), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


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


class MissingInput(ConformanceError):
    """An input a check needs is not there (a sample app, a snapshot, a stack, a runtime, the probe's
    record): the check could not run, so the report counts it as an ERROR with this hint, never as a
    skip, a pass or the buildpack's FAIL. Checks and fixtures raise it instead of `pytest.skip`."""

    exit_code = 2


class HarnessError(ConformanceError):
    """The harness itself went wrong (the engine went away, the probe crashed): an ERROR of the run,
    never the buildpack's FAIL."""

    exit_code = 2


class RunAborted(ConformanceError):
    """The run was stopped by a signal (SIGINT, SIGTERM): no verdict."""

    def __init__(self, signal_name: str, exit_code: int) -> None:
        super().__init__(
            f"the run was stopped by {signal_name}", "nothing was left behind; run it again to get a verdict"
        )
        self.signal_name = signal_name
        self.exit_code = exit_code
