"""Choosing the Python version: parsing `.python-version` and resolving it against the manifest."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bpconform_python.output import BuildpackError

VERSION_FILE = ".python-version"
_REQUEST = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _REQUEST.match(text.strip())
        if not match or match.group(3) is None:
            raise ValueError(f"not a full X.Y.Z version: {text!r}")
        return cls(int(match.group(1)), int(match.group(2)), int(match.group(3)))

    @property
    def minor_line(self) -> str:
        return f"{self.major}.{self.minor}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class RequestedVersion:
    """What the app (or the default) asks for: `3.X` (newest patch) or an exact `3.X.Y`."""

    major: int
    minor: int
    patch: int | None
    origin: str  # ".python-version" or "default"
    text: str

    def matches(self, version: Version) -> bool:
        same_line = (version.major, version.minor) == (self.major, self.minor)
        return same_line and (self.patch is None or version.patch == self.patch)

    @property
    def minor_line(self) -> str:
        return f"{self.major}.{self.minor}"


def supported_lines(available: Iterable[Version]) -> list[str]:
    return [f"{major}.{minor}" for major, minor in sorted({(v.major, v.minor) for v in available})]


def _supported_text(available: Iterable[Version], where: str) -> str:
    lines = supported_lines(available)
    listed = ", ".join(lines) if lines else "none (the runtime manifest has no runtime for this target)"
    return f"Supported Python versions for {where}: {listed}."


def read_version_file(text: str, available: Iterable[Version], where: str) -> RequestedVersion:
    """Parse `.python-version`: one `3.X` or `3.X.Y`; `#` comments and blank lines ignored."""
    values = [line.split("#", 1)[0].strip() for line in text.lstrip("\ufeff").splitlines()]
    values = [value for value in values if value]
    available = list(available)
    if not values:
        raise BuildpackError(
            "Invalid Python version in .python-version",
            f"The {VERSION_FILE} file contains no version. Write one version such as "
            f"'{_example(available)}' in it, or delete the file to use the default.\n"
            + _supported_text(available, where),
        )
    if len(values) > 1:
        listed = ", ".join(f"'{value}'" for value in values)
        raise BuildpackError(
            "Invalid Python version in .python-version",
            f"The {VERSION_FILE} file lists more than one version ({listed}); it must contain exactly one.\n"
            + _supported_text(available, where),
        )
    return parse_request(values[0], VERSION_FILE, available, where)


def _example(available: list[Version]) -> str:
    lines = supported_lines(available)
    return lines[-1] if lines else "3.13"


def parse_request(text: str, origin: str, available: Iterable[Version], where: str) -> RequestedVersion:
    available = list(available)
    match = _REQUEST.match(text)
    if not match:
        raise BuildpackError(
            f"Invalid Python version in {origin}",
            f"The Python version '{text}' in {origin} is not valid: write it as 3.X or 3.X.Y, "
            f"for example '{_example(available)}'.\n" + _supported_text(available, where),
        )
    patch = match.group(3)
    return RequestedVersion(
        int(match.group(1)), int(match.group(2)), int(patch) if patch is not None else None, origin, text
    )


def resolve(requested: RequestedVersion, available: Iterable[Version], where: str) -> Version:
    """The newest available version matching the request, or an error naming what is available."""
    available = sorted(set(available))
    matching = [version for version in available if requested.matches(version)]
    if matching:
        return matching[-1]
    source = f"in {requested.origin}" if requested.origin == VERSION_FILE else f"(the default, from {requested.origin})"
    same_line = [str(version) for version in available if version.minor_line == requested.minor_line]
    if requested.patch is not None and same_line:
        raise BuildpackError(
            "Unsupported Python version",
            f"The Python version '{requested.text}' {source} is not available for {where}. "
            f"Available {requested.minor_line} versions: {', '.join(same_line)}. Write '{requested.minor_line}' "
            f"to get the newest {requested.minor_line} release.\n" + _supported_text(available, where),
        )
    if requested.origin != VERSION_FILE:
        raise BuildpackError(
            "No runtime for the default Python version",
            f"The default Python version '{requested.text}' (from {requested.origin}) has no runtime for {where} "
            f"in the runtime manifest. Add a {VERSION_FILE} file naming a supported version.\n"
            + _supported_text(available, where),
        )
    raise BuildpackError(
        "Unsupported Python version",
        f"The Python version '{requested.text}' {source} is not supported.\n" + _supported_text(available, where),
    )


RUNTIME_TXT = "runtime.txt"
_RUNTIME_TXT_VALUE = re.compile(r"^python-(\d+\.\d+)(?:\.\d+)?$")


def refuse_runtime_txt(app_dir: Path) -> None:
    """`runtime.txt` is refused, not honoured: the buildpack has one place for the version.

    Silently ignoring it would build on another Python than the app asked for; honouring it next
    to `.python-version` would need precedence rules the user cannot see. The error says what to
    write in `.python-version` instead.
    """
    path = app_dir / RUNTIME_TXT
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    match = _RUNTIME_TXT_VALUE.match(text)
    suggestion = f"'{match.group(1)}'" if match else "a version such as '3.13'"
    raise BuildpackError(
        "runtime.txt is not supported",
        f"The app has a {RUNTIME_TXT} (containing {text[:60]!r}), which this buildpack does not read. "
        f"Delete {RUNTIME_TXT} and write {suggestion} in a {VERSION_FILE} file instead.",
    )
