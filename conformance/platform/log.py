"""The build's log: streamed to the caller as it comes, and kept (capped) for the error report."""

from __future__ import annotations

import sys
from collections.abc import Callable

Output = Callable[[str], None]


class BuildLog:
    """Collects the build's output (the newest `CAP` characters) while streaming it to the caller."""

    CAP = 4 * 1024 * 1024

    def __init__(self, sink: Output | None) -> None:
        self._sink = sink if sink is not None else _write_stderr
        self._chunks: list[str] = []
        self._size = 0

    def __call__(self, text: str) -> None:
        self._sink(text)
        self._chunks.append(text)
        self._size += len(text)
        while self._size > self.CAP and len(self._chunks) > 1:
            self._size -= len(self._chunks.pop(0))

    def line(self, text: str) -> None:
        self(text + "\n")

    @property
    def text(self) -> str:
        return "".join(self._chunks)

    @classmethod
    def quiet(cls) -> BuildLog:
        """A log that only keeps (a detect run's output, shown only if detection fails)."""
        return cls(lambda text: None)


def _write_stderr(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()
