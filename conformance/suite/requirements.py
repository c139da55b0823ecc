"""What a check needs from the profile and the build, and what happens when it is not there.

The profile is data (`conformance.profile`); this module is where the suite decides:

- something the profile does not define (a layer role, a message, an alternative Python, a pip
  bump) -> the check is **skipped**, with a reason naming the profile: the profile cannot express it;
- something the profile names that is not there (a sample app directory), or a probe record that
  is missing -> `MissingInput`; a probe record that is incomplete, not isolated or shows the probe
  changed a layer -> `HarnessError`. Both are raised from a fixture or before any assertion and
  count as an ERROR, never a skip and never a failure blamed on the buildpack.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from conformance.errors import ConformanceError
from conformance.profile import LayerRole, Profile

try:  # the run's report counts both as ERRORs (a ConformanceError raised in a check is never a FAIL)
    from conformance.errors import HarnessError, MissingInput  # type: ignore[attr-defined]
except ImportError:  # before conformance.errors defines them: the same meaning, defined here

    class MissingInput(ConformanceError):  # type: ignore[no-redef]
        """An input a check needs is not there (e.g. the probe's record): the check could not run."""

    class HarnessError(ConformanceError):  # type: ignore[no-redef]
        """The harness itself went wrong (e.g. the probe did not run isolated): an ERROR, not a FAIL."""


PROBE_RECORD = "/layers/bpconform_probe/record/record.json"
PROBE_FORMAT = 2  # bumped when the probe's record changes shape; an older record is an error


def need_role(profile: Profile, role: str) -> LayerRole:
    found = profile.role(role)
    if found is None:
        pytest.skip(f"profile {profile.name} has no {role} layer")
    return found


def need_message(profile: Profile, key: str, **values: object) -> re.Pattern[str]:
    pattern = profile.message(key, **values)
    if pattern is None:
        pytest.skip(f"profile {profile.name} has no {key} message")
    return pattern


def need_python_alternative(profile: Profile) -> str:
    if profile.python_alternative is None:
        pytest.skip(f"profile {profile.name} names no alternative Python version")
    return profile.python_alternative


def need_pip_versions(profile: Profile) -> tuple[str, str]:
    gap = profile.pip_bump_gap()
    versions = profile.pip_versions()
    if gap is not None or versions is None:
        pytest.skip(gap or f"profile {profile.name} names no pip versions")
    return versions


def need_app(profile: Profile, purpose: str) -> str:
    """The name of the profile's app for `purpose` (skip when it names none). Resolve it with the
    `app_dir` fixture, which raises an error when the named directory does not exist."""
    name = profile.app(purpose)
    if not name:
        pytest.skip(f"profile {profile.name} has no {purpose} app")
    return name


def probe_record(build: Any) -> dict[str, Any]:
    """The probe's record from `build`'s image, or a HarnessError saying why there is none.

    The probe runs after the buildpack under test in every suite build; a record that is missing,
    unreadable, from another probe version or not marked complete means the observation did not
    happen, so no check may pass or fail on it."""
    text = build.image.read_file(PROBE_RECORD)
    if text is None:
        raise MissingInput(
            f"the probe's record {PROBE_RECORD} is missing from {build.image.reference} (app {build.app})",
            "the probe buildpack (conformance/suite/probe) did not run after the buildpack under test: check"
            " that the build's group ends with bpconform/probe and that its output shows `probe: recorded`",
        )
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise HarnessError(f"the probe's record in {build.image.reference} is not JSON: {exc}") from None
    if not isinstance(record, dict) or record.get("format") != PROBE_FORMAT or record.get("complete") is not True:
        raise HarnessError(
            f"the probe's record in {build.image.reference} is incomplete or of another format"
            f" (format {record.get('format') if isinstance(record, dict) else None!r}, expected {PROBE_FORMAT})",
            "the probe crashed part-way or an old probe ran; see its `probe:` lines in the build output",
        )
    if record.get("isolated") is not True:
        raise HarnessError(
            f"the probe in {build.image.reference} did not run isolated (python3 -IS), so user or buildpack"
            " variables could have changed what it observed",
            "run the probe from conformance/suite/probe unmodified",
        )
    if record.get("earlier_layers_untouched") is not True:
        raise HarnessError(
            f"the probe changed the layers it observes in {build.image.reference}:"
            f" {record.get('earlier_layers_changed')}",
            "this is a bug in the probe (conformance/suite/probe/bin/build): it must only read earlier layers",
        )
    return record


@pytest.fixture
def probe(build: Any) -> dict[str, Any]:
    """The probe record of the shared `build`, checked at fixture setup: a missing record is an
    ERROR of the check (pytest reports a failing fixture as an error), not the buildpack's FAIL."""
    record = probe_record(build)
    build.__dict__["probe"] = record  # what Build.probe (a cached_property) would read, checked
    return record


__all__ = [
    "PROBE_RECORD",
    "HarnessError",
    "MissingInput",
    "need_app",
    "need_message",
    "need_pip_versions",
    "need_python_alternative",
    "need_role",
    "probe",
    "probe_record",
]
