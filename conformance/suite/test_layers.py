"""Layer flags and metadata: each layer declares exactly the types the profile promises."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.assertions import assert_absent_in_image, assert_layer_toml_valid, assert_layer_types
from conformance.fixtures import Build
from conformance.suite.requirements import need_role
from conformance.suite.requirements import probe as probe

ROLES = ("runtime", "package-manager", "package-cache", "app-deps")


@pytest.mark.parametrize("role", ROLES)
def test_layer_types(build: Build, role: str, probe: dict[str, Any]) -> None:
    spec = need_role(build.profile, role)
    assert_layer_types(spec, build.layer_toml(role))


def test_layer_tomls_valid(build: Build, probe: dict[str, Any]) -> None:
    from conformance.tomlcompat import tomllib

    tomls = probe["layer_tomls"].get(build.profile.layers_dir_name, {})
    assert tomls, f"no <layer>.toml of {build.profile.buildpack_id} was visible to a later buildpack"
    for name, text in tomls.items():
        if name in ("launch", "build", "store"):
            continue
        assert_layer_toml_valid(name, tomllib.loads(text))


@pytest.mark.parametrize("role", ROLES)
def test_layer_in_image(build: Build, role: str) -> None:
    """Launch layers are in the image with their types; the others are neither listed nor on disk."""
    spec = need_role(build.profile, role)
    listed = build.layer(role)
    path = f"/layers/{build.profile.layers_dir_name}/{spec.name}"
    if spec.launch:
        on_disk = build.image.path_exists(path)
        assert listed is not None, f"{spec.name} layer must be in the image (launch=true) but the image lacks it"
        assert listed.types == spec.types, (
            f"{spec.name} layer is recorded in the image as {listed.types}, expected {spec.types}"
        )
        assert on_disk, f"{spec.name} layer is listed in the image metadata but its directory is missing"
    else:
        assert listed is None, f"{spec.name} layer must not be in the image (launch=false), but it is: {listed}"
        assert_absent_in_image(
            build.image, path, rule=f"{spec.name} layer must not be launch=true (it would ship in the run image)"
        )
