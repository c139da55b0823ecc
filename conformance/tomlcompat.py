"""TOML reading and writing: `tomllib` on 3.11+, `tomli` before; `tomli_w` to write."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from conformance.errors import ConformanceError

TOMLDecodeError = tomllib.TOMLDecodeError


def load_toml(path: Path, *, what: str = "TOML file") -> dict[str, Any]:
    """Parse `path`, turning a syntax error into a message that names the file and the line."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except TOMLDecodeError as exc:
        raise ConformanceError(
            f"malformed {what} {path}: {exc}",
            "fix the TOML syntax at the position shown (https://toml.io/en/v1.0.0)",
        ) from None
    except OSError as exc:
        raise ConformanceError(f"cannot read {what} {path}: {exc.strerror}") from None


def dump_toml(data: dict[str, Any], path: Path) -> None:
    path.write_text(tomli_w.dumps(data))


def dumps_toml(data: dict[str, Any]) -> str:
    return tomli_w.dumps(data)
