"""Build log output and the one error type the user sees.

The build log is read by people fixing their app, so every failure the buildpack can foresee is a
`BuildpackError` with a title and a short explanation, never a traceback.
"""

from __future__ import annotations

import sys
from typing import TextIO


class BuildpackError(Exception):
    """A failure the user can fix; printed as a titled paragraph, exit code 1."""

    def __init__(self, title: str, detail: str) -> None:
        super().__init__(f"{title}: {detail}")
        self.title = title
        self.detail = detail


def format_error(title: str, detail: str) -> str:
    return f"\n[Error: {title}]\n{detail.rstrip()}\n"


def unexpected_error_message(exc: BaseException, buildpack: str) -> str:
    """One paragraph for a bug in the buildpack itself (the traceback only with BP_DEBUG=1)."""
    kind = type(exc).__name__
    text = str(exc).strip() or "(no message)"
    return format_error(
        "Internal buildpack error",
        f"The buildpack {buildpack} failed unexpectedly ({kind}: {text}). This is most likely a bug in the "
        "buildpack rather than in your app. Set BP_DEBUG=1 in the build environment to see a traceback, "
        "and include it when reporting the problem.",
    )


class Log:
    """Sections and lines on stdout; kept tiny so that tests can capture it with a StringIO."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout

    def section(self, title: str) -> None:
        self.stream.write(f"\n[{title}]\n")
        self.stream.flush()

    def line(self, text: str) -> None:
        self.stream.write(f"{text}\n")
        self.stream.flush()

    def error(self, title: str, detail: str) -> None:
        sys.stderr.write(format_error(title, detail))
        sys.stderr.flush()
