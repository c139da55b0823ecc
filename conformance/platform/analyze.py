"""Analyze: what the build starts from, before any buildpack runs.

Like the lifecycle's analyzer (phase/analyzer.go), this fails early, with exit 32, when the run
image is missing, and reads the previous image of the same name: its `io.buildpacks.lifecycle.metadata`
label tells restore which layers each buildpack had (and their metadata and digests) and what each
buildpack's `store.toml` held.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from conformance.errors import PlatformError
from conformance.platform import spec
from conformance.platform.layers import StoreToml
from conformance.platform.oci import BaseImage, check_build_target


@dataclass(frozen=True)
class PreviousBuildpack:
    """One buildpack's part of the previous image's lifecycle metadata."""

    layers: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {sha, data, build, launch, cache}
    store: StoreToml | None = None  # its store.toml, when the label has one


@dataclass(frozen=True)
class Analysis:
    run_image: BaseImage
    previous: BaseImage | None  # the last build of the same image name, if any
    previous_buildpacks: dict[str, PreviousBuildpack]  # buildpack id -> its layers and store
    previous_sbom: str | None = None  # the diffID of the previous image's launch SBOM layer (label `sbom`)

    def previous_layers(self, buildpack_id: str) -> dict[str, dict[str, Any]]:
        return self.previous_buildpacks.get(buildpack_id, PreviousBuildpack()).layers


def analyze(image: str, run_image: str, build_image: str) -> Analysis:
    spec.check_image_reference(image, "image")
    check_build_target(image, run_image, build_image)
    try:
        run = BaseImage.inspect(run_image)
    except PlatformError as exc:
        raise PlatformError(exc.message, exc.hint, spec.ExitCode.ANALYZE_ERROR) from None
    previous = previous_image(image)
    return Analysis(run, previous, previous_buildpacks(previous), previous_sbom_sha(previous))


def previous_sbom_sha(previous: BaseImage | None) -> str | None:
    """`sbom.sha` of the previous image's lifecycle label: its launch SBOM layer, which the analyzer
    restores (phase/analyzer.go:68-72, `bomSHA`); None when absent or malformed."""
    if previous is None:
        return None
    try:
        metadata = json.loads(previous.labels[spec.LIFECYCLE_METADATA_LABEL])
    except (KeyError, json.JSONDecodeError):
        return None
    sbom = metadata.get("sbom") if isinstance(metadata, dict) else None
    sha = sbom.get("sha") if isinstance(sbom, dict) else None
    return sha if isinstance(sha, str) and sha else None


def previous_image(reference: str) -> BaseImage | None:
    try:
        image = BaseImage.inspect(reference)
    except PlatformError:
        return None
    return image if spec.LIFECYCLE_METADATA_LABEL in image.labels else None


def previous_buildpacks(previous: BaseImage | None) -> dict[str, PreviousBuildpack]:
    """The previous image's label read as data; anything malformed counts as no previous build."""
    if previous is None:
        return {}
    try:
        metadata = json.loads(previous.labels[spec.LIFECYCLE_METADATA_LABEL])
    except (KeyError, json.JSONDecodeError):
        return {}
    result: dict[str, PreviousBuildpack] = {}
    for bp in metadata.get("buildpacks") or []:
        if not isinstance(bp, dict) or not isinstance(bp.get("key"), str):
            continue
        layers = bp.get("layers") if isinstance(bp.get("layers"), dict) else {}
        result[bp["key"]] = PreviousBuildpack(
            {name: dict(record) for name, record in layers.items() if isinstance(record, dict)},
            StoreToml.from_label(bp.get("store")),
        )
    return result
