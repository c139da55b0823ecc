"""The name rules of platform/spec.py, one edge case per line: what a `^...$` match, a missing length
check or a missing reserved name would let through."""

from __future__ import annotations

import re

import pytest

from conformance import engine
from conformance.errors import ConformanceError, PlatformError
from conformance.platform import spec
from conformance.platform.buildpack import Buildpack, BuildpackRegistry, load_buildpack

GOOD_IDS = ["example/python", "heroku/python", "io.buildpacks.ruby", "bpconform_python", "a", "a-b/c.d_e", "-rf"]
BAD_IDS = [
    ("", "non-empty"),
    ("example/python\n", "may only contain"),
    ("\nexample/python", "may only contain"),
    ("exam ple", "may only contain"),
    ("exämple/python", "may only contain"),
    ("example/$(id)", "may only contain"),
    ("app", "reserved"),
    ("config", "reserved"),
    ("sbom", "reserved"),
    ("generated", "reserved"),
    (".", "path step"),
    ("..", "path step"),
    ("a/../b", "path step"),
    ("a/./b", "path step"),
    ("x" * 121, "at most 120"),
]


@pytest.mark.parametrize("bp_id", GOOD_IDS)
def test_good_buildpack_ids_pass(bp_id: str) -> None:
    assert spec.buildpack_id_problem(bp_id) is None
    assert spec.check_buildpack_id(bp_id, "buildpack.toml") == bp_id


@pytest.mark.parametrize(("bp_id", "why"), BAD_IDS, ids=[repr(b)[:30] for b, _ in BAD_IDS])
def test_bad_buildpack_ids_are_refused_with_the_rule(bp_id: str, why: str) -> None:
    with pytest.raises(PlatformError) as refused:
        spec.check_buildpack_id(bp_id, "/bp/buildpack.toml")
    assert why in refused.value.message
    assert repr(bp_id) in refused.value.message and "/bp/buildpack.toml" in refused.value.message
    assert refused.value.hint


def test_the_longest_id_is_the_host_limit_and_one_more_is_refused() -> None:
    assert spec.buildpack_id_problem("x" * spec.MAX_NAME_BYTES) is None
    assert spec.buildpack_id_problem("x" * (spec.MAX_NAME_BYTES + 1)) is not None


@pytest.mark.parametrize("version", ["1", "0.0.1", "1.2.3", "1.2.3-rc.1+build.5", "2024_01", "v1"])
def test_good_versions_pass(version: str) -> None:
    assert spec.buildpack_version_problem(version) is None


@pytest.mark.parametrize(
    "version",
    ["", "../../../../usr/bin", "..", ".1", "1/2", "1.0\n", " 1.0", "1.0 ", "1 0", "\uff11.0", "-1", "1" * 65],
)
def test_bad_versions_are_refused(version: str) -> None:
    with pytest.raises(PlatformError, match="invalid buildpack version"):
        spec.check_buildpack_version(version, "buildpack.toml")


@pytest.mark.parametrize("name", ["python", "pip-cache", "venv", "tool.ext", "éléphant", "with space", "x" * 120])
def test_good_layer_names_pass(name: str) -> None:
    assert spec.layer_name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "non-empty"),
        (".", "path steps"),
        ("..", "path steps"),
        ("a/b", "one file name"),
        ("a\nb", "control characters"),
        ("venv\n", "control characters"),
        ("a\x00b", "control characters"),
        ("tab\t", "control characters"),
        ("build", "reserved"),
        ("launch", "reserved"),
        ("store", "reserved"),
        ("x" * 251, "at most 250 bytes"),
        ("é" * 126, "at most 250 bytes"),  # 252 bytes in UTF-8: the limit is bytes, not characters
    ],
)
def test_bad_layer_names_are_refused(name: str, why: str) -> None:
    with pytest.raises(PlatformError) as refused:
        spec.check_layer_name(name, "example/python")
    assert why in refused.value.message and "example/python" in refused.value.message


@pytest.mark.parametrize("process_type", ["web", "worker-1", "my+proc", "a.b_c", "with space", "UPPER"])
def test_process_types_follow_the_lifecycle_which_allows_more_than_the_spec(process_type: str) -> None:
    """layers/launcher.go validateProcessType only forbids `/><:|&\\`."""
    assert spec.process_type_problem(process_type) is None


@pytest.mark.parametrize("process_type", ["", ".", "..", "a/b", "a>b", "a<b", "a:b", "a|b", "a&b", "a\\b", "web\n"])
def test_process_types_the_lifecycle_forbids_are_refused(process_type: str) -> None:
    with pytest.raises(PlatformError, match="invalid process type"):
        spec.check_process_type(process_type, "launch.toml")


@pytest.mark.parametrize(
    "reference",
    [
        "my-app",
        "my-app:1.0",
        "bpconform/run:bookworm",
        "registry.example.com:5000/team/app:v1",
        "localhost/app",
        "Example.com/app",
        "a__b",
        "a--b",
        "app:" + "t" * 128,
    ],
)
def test_valid_image_references_pass(reference: str) -> None:
    assert spec.image_reference_problem(reference) is None


@pytest.mark.parametrize(
    "reference",
    [
        "",
        "MyApp",
        "my app",
        "my-app:",
        "-app",
        "app-",
        "a...b",
        "app:" + "t" * 129,
        "app:-tag",
        "app\n",
        "ápp",
        "x" * 256,
    ],
)
def test_invalid_image_references_are_refused(reference: str) -> None:
    with pytest.raises(PlatformError, match="is not a valid image name"):
        spec.check_image_reference(reference)


def test_a_digest_is_a_valid_reference_but_not_a_build_target() -> None:
    reference = "app@sha256:" + "a" * 64
    assert spec.image_reference_problem(reference) is None
    assert spec.check_image_reference(reference, target=False) == reference
    with pytest.raises(PlatformError, match="digest"):
        spec.check_image_reference(reference)


def _descriptor(tmp_path, bp_id: str, version: str = "1.0.0"):
    bp = tmp_path / "bp"
    (bp / "bin").mkdir(parents=True)
    for name in ("detect", "build"):
        (bp / "bin" / name).write_text("#!/bin/sh\n")
        (bp / "bin" / name).chmod(0o755)
    (bp / "buildpack.toml").write_text(f'api = "0.10"\n[buildpack]\nid = "{bp_id}"\nversion = "{version}"\n')
    return bp


def test_load_buildpack_refuses_an_id_with_a_trailing_newline_escape(tmp_path) -> None:
    with pytest.raises(PlatformError, match=r"invalid buildpack id 'example/python\\n'"):
        load_buildpack(_descriptor(tmp_path, "example/python\\n"))


def test_load_buildpack_refuses_a_version_that_is_a_path(tmp_path) -> None:
    with pytest.raises(PlatformError, match=re.escape("invalid buildpack version '../../../../usr/bin'")):
        load_buildpack(_descriptor(tmp_path, "example/python", "../../../../usr/bin"))


def test_ids_that_escape_to_the_same_layers_dir_cannot_be_built_together(tmp_path) -> None:
    def bp(bp_id: str) -> Buildpack:
        return Buildpack(tmp_path / bp_id.replace("/", "-"), "0.10", bp_id, "1", "", False, (), (), None)

    with pytest.raises(PlatformError, match="would share the layers directory a_b"):
        BuildpackRegistry([bp("a/b"), bp("a_b")])


@pytest.mark.parametrize(("text", "size"), [("256m", 256 * 1024**2), ("8g", 8 * 1024**3), ("1.5GiB", 3 * 1024**3 // 2)])
def test_memory_sizes_parse_in_binary_units(text: str, size: int) -> None:
    assert engine.parse_memory(text) == size


@pytest.mark.parametrize("text", ["", "lots", "8x", "-1g", "1m"])
def test_bad_memory_sizes_are_refused(text: str) -> None:
    with pytest.raises(ConformanceError):
        engine.parse_memory(text)


def test_limits_come_from_the_environment_with_the_defaults_otherwise(monkeypatch) -> None:
    monkeypatch.delenv(engine.MEMORY_ENV, raising=False)
    monkeypatch.delenv(engine.PIDS_ENV, raising=False)
    assert engine.ContainerLimits.from_env() == engine.ContainerLimits(8 * 1024**3, 4096)
    monkeypatch.setenv(engine.MEMORY_ENV, "1g")
    monkeypatch.setenv(engine.PIDS_ENV, "100")
    limits = engine.ContainerLimits.from_env()
    assert (limits.memory, limits.pids) == (1024**3, 100)
    options = limits.create_options(["CHOWN"])
    assert options["memswap_limit"] == options["mem_limit"] == 1024**3  # no swap beyond the limit
    assert options["security_opt"] == ["no-new-privileges:true"]
    assert (options["cap_drop"], options["cap_add"]) == (["ALL"], ["CHOWN"])
    monkeypatch.setenv(engine.PIDS_ENV, "many")
    with pytest.raises(ConformanceError, match="BPCONFORM_BUILD_PIDS"):
        engine.ContainerLimits.from_env()


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), float("-inf"), "soon"])
def test_timeouts_must_be_positive_and_finite(timeout) -> None:
    with pytest.raises(ConformanceError, match="timeout"):
        engine.check_timeout(timeout)


def test_a_positive_timeout_is_kept() -> None:
    assert engine.check_timeout(0.5) == 0.5
