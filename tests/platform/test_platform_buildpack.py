from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conformance.errors import PlatformError
from conformance.platform.buildpack import (
    SUPPORTED_APIS,
    BuildpackRegistry,
    GroupEntry,
    Target,
    api_at_least,
    bin_problem,
    load_buildpack,
)

DESCRIPTOR = """
api = "0.10"
[buildpack]
id = "example/python"
version = "1.2.3"
name = "Example Python"
homepage = "https://example.com"
"""


def make_buildpack(root: Path, toml: str = DESCRIPTOR, bins: tuple[str, ...] = ("detect", "build"), mode=0o755) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "buildpack.toml").write_text(textwrap.dedent(toml))
    for name in bins:
        (root / "bin").mkdir(exist_ok=True)
        path = root / "bin" / name
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(mode)
    return root


def test_loads_a_component_buildpack(tmp_path):
    bp = load_buildpack(make_buildpack(tmp_path / "bp"))
    assert (bp.id, bp.version, bp.api, bp.name) == ("example/python", "1.2.3", "0.10", "Example Python")
    assert bp.homepage == "https://example.com"
    assert bp.escaped_id == "example_python"
    assert not bp.is_composite
    assert bp.clear_env is False
    # no [[targets]] and a bin/build: the lifecycle infers os = linux
    assert bp.targets == (Target(os="linux"),)
    assert bp.supports("linux", "amd64", "debian", "12")
    assert not bp.supports("windows", "amd64", "", "")


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('api = "0.10"\n[buildpack]\nversion = "1"\n', "id is missing"),
        ('api = "0.10"\n[buildpack]\nid = "a"\n', "version is missing"),
        ('[buildpack]\nid = "a"\nversion = "1"\n', "missing api"),
        ('api = "0.10"\n', "no [buildpack] table"),
        ('api = "0.10"\n[buildpack]\nid = "app"\nversion = "1"\n', "invalid buildpack id"),
        ('api = "0.10"\n[buildpack]\nid = "a b"\nversion = "1"\n', "invalid buildpack id"),
    ],
)
def test_rejects_incomplete_descriptors(tmp_path, toml, needle):
    with pytest.raises(PlatformError) as info:
        load_buildpack(make_buildpack(tmp_path / "bp", toml))
    assert needle in info.value.message


def test_unsupported_api_lists_the_supported_ones(tmp_path):
    toml = DESCRIPTOR.replace('"0.10"', '"0.6"')
    with pytest.raises(PlatformError) as info:
        load_buildpack(make_buildpack(tmp_path / "bp", toml))
    assert "0.6" in info.value.message
    assert info.value.exit_code == 12
    for api in SUPPORTED_APIS:
        assert api in info.value.hint


def test_missing_and_malformed_descriptor(tmp_path):
    with pytest.raises(PlatformError, match=r"no buildpack\.toml"):
        load_buildpack(tmp_path)
    make_buildpack(tmp_path / "bad", "api = \n")
    with pytest.raises(PlatformError, match="malformed"):
        load_buildpack(tmp_path / "bad")


def test_missing_or_not_executable_bins_load_and_are_named_when_they_fail(tmp_path):
    """The lifecycle does not check bin/detect and bin/build up front: it runs them, and one that
    cannot start is an error of that phase (21 at detect, 51 at build; see test_failures.py). So the
    buildpack loads, and `bin_problem` names the reason with the in-image path."""
    missing = load_buildpack(make_buildpack(tmp_path / "a", bins=("detect",)))
    assert bin_problem(missing, "detect") is None
    assert bin_problem(missing, "build") == "/cnb/buildpacks/example_python/1.2.3/bin/build does not exist"
    plain = load_buildpack(make_buildpack(tmp_path / "b", mode=0o644))
    bin_dir = "/cnb/buildpacks/example_python/1.2.3/bin"
    assert bin_problem(plain, "detect") == f"{bin_dir}/detect is not executable (mode 0644)"
    (tmp_path / "b" / "bin" / "build").unlink()
    (tmp_path / "b" / "bin" / "build").mkdir()
    assert bin_problem(plain, "build") == "/cnb/buildpacks/example_python/1.2.3/bin/build is not a regular file"


@pytest.mark.parametrize("api", ["1", "0.1", "1.0", "0.13", "zero", None])
def test_unsupported_buildpack_api_is_the_lifecycles_exit_12(tmp_path, api):
    """cmd/apis.go:39-74 (VerifyBuildpackAPI): unparseable, missing or unsupported -> 12."""
    toml = DESCRIPTOR.replace('api = "0.10"', "" if api is None else f'api = "{api}"')
    with pytest.raises(PlatformError) as info:
        load_buildpack(make_buildpack(tmp_path / "bp", toml))
    assert info.value.exit_code == 12, info.value.message
    assert str(tmp_path / "bp" / "buildpack.toml") in info.value.message


COMPOSITE = """
api = "0.10"
[buildpack]
id = "example/meta"
version = "1.0.0"
[[order]]
[[order.group]]
id = "example/python"
version = "1.2.3"
[[order.group]]
id = "example/procfile"
optional = true
[[order]]
[[order.group]]
id = "example/other"
version = "2"
"""


def test_composite_buildpack_order(tmp_path):
    bp = load_buildpack(make_buildpack(tmp_path / "meta", COMPOSITE, bins=()))
    assert bp.is_composite
    assert bp.order == (
        (GroupEntry("example/python", "1.2.3"), GroupEntry("example/procfile", None, optional=True)),
        (GroupEntry("example/other", "2"),),
    )
    assert bp.targets == ()  # composites infer no target: they match anything
    assert bp.supports("linux", "arm64", "ubuntu", "24.04")


def test_composite_with_bins_is_rejected(tmp_path):
    with pytest.raises(PlatformError, match="composite"):
        load_buildpack(make_buildpack(tmp_path / "meta", COMPOSITE))


def test_targets_matching(tmp_path):
    toml = DESCRIPTOR + textwrap.dedent(
        """
        [[targets]]
        os = "linux"
        arch = "amd64"
        [[targets.distros]]
        name = "debian"
        version = "12"
        [[targets.distros]]
        name = "ubuntu"
        """
    )
    bp = load_buildpack(make_buildpack(tmp_path / "bp", toml))
    assert bp.targets == (Target("linux", "amd64", None, (("debian", "12"), ("ubuntu", None))),)
    assert bp.supports("linux", "amd64", "debian", "12")
    assert not bp.supports("linux", "amd64", "debian", "13")
    assert bp.supports("linux", "amd64", "ubuntu", "22.04")  # no version: any
    assert not bp.supports("linux", "arm64", "debian", "12")


def test_legacy_any_stack_matches_anything(tmp_path):
    bp = load_buildpack(make_buildpack(tmp_path / "bp", DESCRIPTOR + '[[stacks]]\nid = "*"\n'))
    assert bp.targets == (Target(),)
    assert bp.supports("freebsd", "riscv", "x", "y")


def test_clear_env_must_be_bool(tmp_path):
    toml = DESCRIPTOR.replace('name = "Example Python"', 'name = "x"\nclear-env = "yes"')
    with pytest.raises(PlatformError, match="clear-env"):
        load_buildpack(make_buildpack(tmp_path / "bp", toml))
    bp = load_buildpack(
        make_buildpack(tmp_path / "ok", DESCRIPTOR.replace('name = "Example Python"', "clear-env = true"))
    )
    assert bp.clear_env is True


def test_api_comparison_is_numeric():
    assert api_at_least("0.10", "0.9")
    assert not api_at_least("0.9", "0.10")


def test_registry_lookup(tmp_path):
    one = load_buildpack(make_buildpack(tmp_path / "one"))
    two = load_buildpack(make_buildpack(tmp_path / "two", DESCRIPTOR.replace("1.2.3", "2.0.0")))
    registry = BuildpackRegistry([one])
    assert registry.get("example/python") is one
    assert registry.get("example/python", "1.2.3") is one
    registry.add(two)
    assert registry.get("example/python", "2.0.0") is two
    with pytest.raises(PlatformError, match="several versions"):
        registry.get("example/python")
    with pytest.raises(PlatformError, match=r"not available \(have: 1.2.3, 2.0.0\)"):
        registry.get("example/python", "9")
    with pytest.raises(PlatformError) as info:
        registry.get("nope/nope")
    assert "example/python@1.2.3" in info.value.hint
    dup = load_buildpack(make_buildpack(tmp_path / "dup"))
    with pytest.raises(PlatformError, match="two buildpacks claim"):
        registry.add(dup)
