"""CycloneDX SBOMs for the `python` and `venv` layers (`<layers>/<layer>.sbom.cdx.json`).

The CNB spec lets a buildpack describe a layer's contents in `<layer>.sbom.<ext>` next to
`<layer>.toml`, in a format declared by `sbom-formats` in buildpack.toml; `cdx.json` is
`application/vnd.cyclonedx+json`. The venv's SBOM is read from the installed distributions'
`.dist-info/METADATA`, i.e. what is really in the layer, not what a lock file says should be.
The documents carry no timestamp or serial number, so the same layer gives the same bytes.
"""

from __future__ import annotations

import json
import re
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

SBOM_EXTENSION = "sbom.cdx.json"
MEDIA_TYPE = "application/vnd.cyclonedx+json"
SPEC_VERSION = "1.5"


def normalize_name(name: str) -> str:
    """PEP 503 normalisation, as purls for PyPI packages use it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pypi_component(name: str, version: str) -> dict[str, Any]:
    normalized = normalize_name(name)
    return {
        "type": "library",
        "bom-ref": f"pkg:pypi/{normalized}@{version}",
        "name": name,
        "version": version,
        "purl": f"pkg:pypi/{normalized}@{version}",
    }


def python_component(version: str) -> dict[str, Any]:
    return {
        "type": "application",
        "bom-ref": f"pkg:generic/cpython@{version}",
        "name": "cpython",
        "version": version,
        "purl": f"pkg:generic/cpython@{version}",
    }


def document(components: list[dict[str, Any]]) -> dict[str, Any]:
    return {"bomFormat": "CycloneDX", "specVersion": SPEC_VERSION, "version": 1, "components": components}


def installed_distributions(venv_dir: Path) -> list[tuple[str, str]]:
    """(Name, Version) of every `*.dist-info` in the venv's site-packages, sorted by normalised name."""
    found: dict[str, tuple[str, str]] = {}
    for metadata in sorted(venv_dir.glob("lib/python3.*/site-packages/*.dist-info/METADATA")):
        headers = HeaderParser().parsestr(metadata.read_text(encoding="utf-8", errors="replace"))
        name, version = headers.get("Name"), headers.get("Version")
        if name and version:
            found[normalize_name(name)] = (name.strip(), version.strip())
    return [found[key] for key in sorted(found)]


def venv_sbom(venv_dir: Path) -> dict[str, Any]:
    return document([pypi_component(name, version) for name, version in installed_distributions(venv_dir)])


def python_sbom(version: str) -> dict[str, Any]:
    return document([python_component(version)])


def sbom_path(layers_dir: Path, layer: str) -> Path:
    return layers_dir / f"{layer}.{SBOM_EXTENSION}"


def write_sbom(layers_dir: Path, layer: str, bom: dict[str, Any]) -> Path:
    path = sbom_path(layers_dir, layer)
    path.write_text(json.dumps(bom, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
