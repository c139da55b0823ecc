"""The probe buildpack's record: where it is in an image and when it can be trusted.

The probe (conformance/suite/probe) runs after the buildpacks under test and writes what a later
buildpack saw. A record that is missing, unreadable, of another format, incomplete, not isolated
or showing that the probe changed what it observes means the observation did not happen: no check
may pass or fail on it, so each case is a `MissingInput` or `HarnessError` (an ERROR of the check).
"""

from __future__ import annotations

import json
from typing import Any

from conformance.errors import HarnessError, MissingInput

PROBE_RECORD = "/layers/bpconform_probe/record/record.json"
PROBE_FORMAT = 2  # bumped when the probe's record changes shape; an older record is an error


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
