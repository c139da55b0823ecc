"""Assertions with failure messages that name the layer, the expected and actual value, and the rule.

A failing conformance check is read by a buildpack maintainer who did not write the suite, so
each message says what was checked, what was found, and why it matters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

from conformance.profile import LayerRole

FLAG_ORDER = ("build", "launch", "cache")


def describe_types(types: Mapping[str, bool]) -> str:
    on = [flag for flag in FLAG_ORDER if types.get(flag)]
    return "+".join(on) if on else "no types"


def assert_layer_types(role: LayerRole, actual: Mapping[str, Any] | None) -> None:
    """`actual` is the parsed `<layer>.toml`; its `[types]` must match the profile exactly."""
    assert actual is not None, (
        f"{role.name} layer ({role.role}) was not created: no {role.name}.toml was seen by a later buildpack;"
        f" the profile expects {describe_types(role.types)}"
    )
    types = actual.get("types") or {}
    wrong = [
        f"{flag}={bool(types.get(flag))} (expected {expected})"
        for flag, expected in role.types.items()
        if bool(types.get(flag)) != expected
    ]
    assert not wrong, (
        f"{role.name} layer ({role.role}) has the wrong types: {', '.join(wrong)}; rule: {role.name} layer must be"
        f" {describe_types(role.types)}" + _type_rule_hint(role, types)
    )


def _type_rule_hint(role: LayerRole, types: Mapping[str, Any]) -> str:
    if types.get("launch") and not role.launch:
        return f" ({role.name} layer must not be launch=true: it would ship in the run image)"
    if types.get("cache") and not role.cache:
        return f" ({role.name} layer must not be cache=true: a cached copy would keep removed packages)"
    return ""


def assert_layer_toml_valid(name: str, parsed: Mapping[str, Any]) -> None:
    """Only `[types]` and `[metadata]` are allowed at the top of a `<layer>.toml` (Buildpack API >= 0.6)."""
    extra = sorted(set(parsed) - {"types", "metadata"})
    assert not extra, f"{name}.toml has keys outside [types]/[metadata]: {extra}; rule: flags belong under [types]"
    types = parsed.get("types") or {}
    unknown = sorted(set(types) - set(FLAG_ORDER))
    assert not unknown, f"{name}.toml [types] has unknown keys {unknown}; allowed: build, launch, cache"
    bad = {key: value for key, value in types.items() if not isinstance(value, bool)}
    assert not bad, f"{name}.toml [types] values must be booleans, got {bad}"


def assert_path_order(path: str, first: str, second: str, *, where: str) -> None:
    """`first` must appear on PATH, and before `second`."""
    entries = path.split(":")
    assert first in entries, f"{where}: {first} is not on PATH; PATH={path}"
    assert second in entries, f"{where}: {second} is not on PATH; PATH={path}"
    assert entries.index(first) < entries.index(second), (
        f"{where}: {first} must come before {second} on PATH (the app's venv must shadow the runtime), but PATH is"
        f" {path}"
    )


def assert_under(path: str | None, directory: str, *, what: str) -> None:
    assert path, f"{what}: nothing found (expected a path under {directory})"
    assert path == directory or path.startswith(directory.rstrip("/") + "/"), f"{what}: {path} is not under {directory}"


def assert_message(pattern: re.Pattern[str], output: str, *, what: str) -> None:
    assert pattern.search(output), (
        f"{what}: the build output has no line matching /{pattern.pattern}/; last lines:\n" + _tail(output)
    )


def assert_no_traceback(output: str, *, what: str) -> None:
    assert "Traceback (most recent call last)" not in output, (
        f"{what}: the build printed a Python traceback instead of a clear error:\n" + _tail(output)
    )


class _Result(Protocol):
    exit_code: int
    output: str
    stdout: str


class _Image(Protocol):
    reference: str

    def run(self, command: list[str], **kwargs: Any) -> _Result: ...


# What "this program is not there" looks like, per shell and interpreter: dash (`sh: 1: pip: not
# found`), bash (`pip: command not found`), busybox/exec (`No such file or directory`) and Python
# (`No module named pip`). A non-zero exit without one of these is some other failure.
NOT_FOUND = re.compile(r"\bnot found\b|command not found|No such file or directory|No module named '?[\w.]+'?")


def assert_image_starts(image: _Image, *, what: str) -> None:
    """The positive control of a negative check: `python -c 'print(1)'` works in the same image, so a
    command failing there fails for its own reason, not because nothing in the image can start."""
    result = image.run(["python", "-c", "print(1)"])
    assert result.exit_code == 0 and result.stdout.strip().splitlines()[-1:] == ["1"], (
        f"{what}: the negative check proves nothing: `python -c 'print(1)'` does not work in the image either"
        f" (exit {result.exit_code}, {image.reference}); output:\n{_tail(result.output)}"
    )


def assert_not_found(result: _Result, command: str, *, what: str, rule: str) -> None:
    """`command` must fail *because what it runs is absent* (see NOT_FOUND), not for any reason."""
    assert result.exit_code != 0, f"{what}: `{command}` works, but {rule}; output: {_tail(result.output)}"
    assert NOT_FOUND.search(result.output), (
        f"{what}: `{command}` failed (exit {result.exit_code}) but not because it is absent (expected 'not found'"
        f" or 'No module named ...'); rule: {rule}; output:\n{_tail(result.output)}"
    )


def assert_absent_in_image(image: _Image, path: str, *, rule: str) -> None:
    """`path` does not exist in the image, shown positively: a shell in the image prints `absent`
    (a container that cannot start, or `test` failing for another reason, prints nothing)."""
    script = 'if [ -e "$1" ] || [ -L "$1" ]; then echo present; else echo absent; fi'
    result = image.run(["sh", "-c", script, "sh", path], via_launcher=False)
    answer = result.stdout.strip().splitlines()[-1:] if result.exit_code == 0 else []
    assert answer in (["absent"], ["present"]), (
        f"could not tell whether {path} exists in {image.reference}: the shell exited {result.exit_code}"
        f" with {_tail(result.output)}"
    )
    assert answer == ["absent"], f"{path} exists in the run image {image.reference}; rule: {rule}"


def key_lines(output: str, limit: int = 5) -> str:
    """The lines that say what went wrong (pip's `ERROR:` lines, exceptions), else the last lines."""
    picked = [line for line in output.splitlines() if re.search(r"\bERROR\b|Error:|denied", line)]
    return "\n".join("    " + line for line in picked[:limit]) if picked else _tail(output)


def _tail(output: str, lines: int = 15) -> str:
    return "\n".join("    " + line for line in output.splitlines()[-lines:])
