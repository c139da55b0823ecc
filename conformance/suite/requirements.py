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

import re
from typing import Any

import pytest

from conformance.errors import HarnessError, MissingInput  # the report counts both as ERRORs
from conformance.probe_record import PROBE_RECORD, probe_record
from conformance.profile import LayerRole, PackageManagerProfile, Profile


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


def need_package_manager(profile: Profile, name: str) -> PackageManagerProfile:
    """The profile's `[package-managers.<name>]` table; skip, naming the key, when there is none."""
    found = profile.package_manager(name)
    if found is None:
        pytest.skip(f"profile {profile.name} has no package-managers.{name} (the buildpack does not promise {name})")
    return found


def need_manager_app(manager: PackageManagerProfile, purpose: str) -> str:
    name = manager.app(purpose)
    if not name:
        pytest.skip(manager.gap(f"apps.{purpose}"))
    return name


def need_manager_message(manager: PackageManagerProfile, key: str, **values: object) -> re.Pattern[str]:
    pattern = manager.message(key, **values)
    if pattern is None:
        pytest.skip(manager.gap(f"messages.{key}"))
    return pattern


def need_launch_sbom(profile: Profile) -> None:
    """Skip unless the profile says the buildpack writes launch SBOMs (`[sbom] launch = true`)."""
    if profile.sbom_launch is None:
        pytest.skip(f"profile {profile.name} has no sbom.launch (whether the buildpack writes launch SBOMs)")
    if not profile.sbom_launch:
        pytest.skip(f"profile {profile.name}: sbom.launch = false (the buildpack writes no launch SBOMs)")


@pytest.fixture
def probe(build: Any) -> dict[str, Any]:
    """The probe record of the shared `build`, checked at fixture setup: a missing record is an
    ERROR of the check (pytest reports a failing fixture as an error), not the buildpack's FAIL."""
    return build.probe


__all__ = [
    "PROBE_RECORD",
    "HarnessError",
    "MissingInput",
    "need_app",
    "need_launch_sbom",
    "need_manager_app",
    "need_manager_message",
    "need_message",
    "need_package_manager",
    "need_pip_versions",
    "need_python_alternative",
    "need_role",
    "probe",
    "probe_record",
]
