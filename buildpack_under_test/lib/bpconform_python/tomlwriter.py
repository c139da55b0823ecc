"""A tiny TOML writer: the build image has tomllib (reading) but no tomli_w (writing).

Supports what the buildpack writes: strings, bools, ints, lists of scalars, tables and arrays of
tables (layer `<name>.toml`, the build plan, launch.toml).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _string(value: str) -> str:
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(item) for item in value) + "]"
    raise TypeError(f"cannot write a {type(value).__name__} to TOML")


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(_is_table(item) for item in value)


def _write_table(lines: list[str], table: Mapping[str, Any], path: list[str]) -> None:
    for key, value in table.items():
        if not _is_table(value) and not _is_table_array(value):
            lines.append(f"{_key(key)} = {_scalar(value)}")
    for key, value in table.items():
        sub_path = [*path, _key(key)]
        if _is_table(value):
            lines.append("")
            lines.append(f"[{'.'.join(sub_path)}]")
            _write_table(lines, value, sub_path)
        elif _is_table_array(value):
            for item in value:
                lines.append("")
                lines.append(f"[[{'.'.join(sub_path)}]]")
                _write_table(lines, item, sub_path)


def dumps(document: Mapping[str, Any]) -> str:
    lines: list[str] = []
    _write_table(lines, document, [])
    text = "\n".join(lines).lstrip("\n")
    return text + "\n" if text else ""
