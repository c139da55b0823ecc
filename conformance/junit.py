"""JUnit XML for CI: pytest's file, made to name what was tested.

pytest names a test's class after its file's path from the rootdir, so an installed suite shows up
as `venv.lib.python3.11.site-packages.conformance.suite.test_layers`; CI dashboards group by that.
After a run the classnames are rewritten to `conformance.suite.<module>` and each test suite gets
properties naming the buildpack (id, version), the profile, the stack and the platform.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

SUITE_PACKAGE = "conformance.suite"


def suite_classname(classname: str) -> str:
    """`conformance.suite.test_x[.Class]` for what pytest wrote: `<path>.conformance.suite.test_x`
    (the suite under a rootdir above it) or `test_x` (rootdir inside the installed suite)."""
    marker = f"{SUITE_PACKAGE}."
    if classname.startswith(marker):
        return classname
    index = classname.find(f".{marker}")
    if index >= 0:
        return classname[index + 1 :]
    parts = classname.split(".")
    modules = [i for i, part in enumerate(parts) if part.startswith("test_")]
    return marker + ".".join(parts[modules[0] :]) if modules else classname


def finish(path: Path, properties: Mapping[str, str]) -> bool:
    """Rewrite `path` in place (atomically); False when pytest wrote no file (e.g. it was stopped)."""
    if not path.is_file():
        return False
    try:
        tree = ET.parse(path)
    except ET.ParseError:
        return False
    root = tree.getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for suite in suites:
        for case in suite.iter("testcase"):
            if case.get("classname"):
                case.set("classname", suite_classname(case.get("classname", "")))
        existing = suite.find("properties")
        if existing is None:
            existing = ET.Element("properties")
            suite.insert(0, existing)
        for name, value in properties.items():
            ET.SubElement(existing, "property", {"name": name, "value": value})
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tree.write(temporary, encoding="utf-8", xml_declaration=True)
    os.replace(temporary, path)
    return True
