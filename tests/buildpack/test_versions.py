from __future__ import annotations

import pytest
from bpconform_python.output import BuildpackError
from bpconform_python.versions import Version, parse_request, read_version_file, resolve

AVAILABLE = [Version(3, 11, 2), Version(3, 13, 1), Version(3, 13, 5)]
WHERE = "debian 12 (amd64)"


def request(text: str):
    return read_version_file(text, AVAILABLE, WHERE)


def test_minor_line_resolves_to_newest_patch() -> None:
    assert resolve(request("3.13\n"), AVAILABLE, WHERE) == Version(3, 13, 5)


def test_exact_version_is_kept() -> None:
    assert resolve(request("3.13.1"), AVAILABLE, WHERE) == Version(3, 13, 1)


def test_comments_and_blank_lines_are_ignored() -> None:
    text = "\ufeff# pinned for prod\r\n\n   3.11  # bookworm's python\n\n"
    assert resolve(request(text), AVAILABLE, WHERE) == Version(3, 11, 2)


def test_default_uses_buildpack_value() -> None:
    default = parse_request("3.13", "buildpack.toml (default-python-version)", AVAILABLE, WHERE)
    assert resolve(default, AVAILABLE, WHERE) == Version(3, 13, 5)


@pytest.mark.parametrize("bad", ["python-3.13", "3", "3.x", "system", "3.13.5rc1", "v3.13"])
def test_invalid_value_is_quoted_with_the_file_and_supported_versions(bad: str) -> None:
    with pytest.raises(BuildpackError) as caught:
        request(bad)
    assert caught.value.title == "Invalid Python version in .python-version"
    assert f"'{bad}'" in caught.value.detail
    assert ".python-version" in caught.value.detail
    assert "Supported Python versions for debian 12 (amd64): 3.11, 3.13." in caught.value.detail


def test_unsupported_minor_line() -> None:
    with pytest.raises(BuildpackError) as caught:
        resolve(request("3.9"), AVAILABLE, WHERE)
    assert caught.value.title == "Unsupported Python version"
    assert caught.value.detail == (
        "The Python version '3.9' in .python-version is not supported.\n"
        "Supported Python versions for debian 12 (amd64): 3.11, 3.13."
    )


def test_unavailable_patch_lists_that_line_and_suggests_minor() -> None:
    with pytest.raises(BuildpackError) as caught:
        resolve(request("3.13.2"), AVAILABLE, WHERE)
    detail = caught.value.detail
    assert "'3.13.2' in .python-version is not available for debian 12 (amd64)" in detail
    assert "Available 3.13 versions: 3.13.1, 3.13.5" in detail
    assert "Write '3.13'" in detail


def test_more_than_one_version_is_an_error() -> None:
    with pytest.raises(BuildpackError) as caught:
        request("3.11\n3.13\n")
    assert "more than one version ('3.11', '3.13')" in caught.value.detail


def test_empty_file_is_an_error() -> None:
    with pytest.raises(BuildpackError) as caught:
        request("# nothing\n\n")
    assert "contains no version" in caught.value.detail


def test_no_runtime_for_target_says_so() -> None:
    with pytest.raises(BuildpackError) as caught:
        resolve(read_version_file("3.13", [], WHERE), [], WHERE)
    assert "none (the runtime manifest has no runtime for this target)" in caught.value.detail


def test_default_not_in_manifest_names_buildpack_toml() -> None:
    default = parse_request("3.14", "buildpack.toml (default-python-version)", AVAILABLE, WHERE)
    with pytest.raises(BuildpackError) as caught:
        resolve(default, AVAILABLE, WHERE)
    assert caught.value.title == "No runtime for the default Python version"
    assert caught.value.detail == (
        "The default Python version '3.14' (from buildpack.toml (default-python-version)) has no runtime for "
        "debian 12 (amd64) in the runtime manifest. Add a .python-version file naming a supported version.\n"
        "Supported Python versions for debian 12 (amd64): 3.11, 3.13."
    )
