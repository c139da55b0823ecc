from __future__ import annotations

import tomllib
from bpconform_python.build import pip_layer_metadata, python_layer_metadata
from bpconform_python.context import Target
from bpconform_python.layers import (
    UNREADABLE,
    LayerTypes,
    Subject,
    decide_cache,
    fresh_layer_dir,
    read_restored_metadata,
    write_layer_toml,
)
from bpconform_python.versions import Version

BOOKWORM = Target("linux", "amd64", "debian", "12")
TRIXIE = Target("linux", "amd64", "debian", "13")
PY311, PY313 = Version(3, 11, 2), Version(3, 13, 5)
PYTHON = Subject("Python", "python-version")
PIP = Subject("pip", "pip-version")


def test_no_previous_layer_installs_fresh() -> None:
    decision = decide_cache(PYTHON, None, python_layer_metadata(PY313, BOOKWORM, "a" * 64), contents_present=False)
    assert not decision.reuse
    assert decision.message == "No cached Python found; installing Python 3.13.5"


def test_equal_inputs_reuse() -> None:
    meta = python_layer_metadata(PY313, BOOKWORM, "a" * 64)
    decision = decide_cache(PYTHON, dict(meta), meta, contents_present=True)
    assert decision.reuse
    assert decision.message == "Using cached Python 3.13.5"


def test_python_version_change_is_named_exactly() -> None:
    before = python_layer_metadata(PY311, BOOKWORM, "a" * 64)
    now = python_layer_metadata(PY313, BOOKWORM, "b" * 64)
    decision = decide_cache(PYTHON, before, now, contents_present=True)
    assert not decision.reuse
    # the archive's hash changes with the version; naming it too would only be noise
    assert decision.message == (
        "Discarding cached Python 3.11.2 since: The Python version has changed from 3.11.2 to 3.13.5"
    )


def test_rebuilt_archive_of_the_same_version_is_named() -> None:
    before = python_layer_metadata(PY313, BOOKWORM, "a" * 64)
    now = python_layer_metadata(PY313, BOOKWORM, "b" * 64)
    decision = decide_cache(PYTHON, before, now, contents_present=True)
    assert decision.reasons == (f"The Python runtime archive (sha256) has changed from {'a' * 64} to {'b' * 64}",)


def test_several_changes_share_one_line() -> None:
    before = python_layer_metadata(PY311, BOOKWORM, "a" * 64)
    decision = decide_cache(PYTHON, before, python_layer_metadata(PY313, TRIXIE, "b" * 64), contents_present=True)
    assert decision.message == (
        "Discarding cached Python 3.11.2 since: The Python version has changed from 3.11.2 to 3.13.5; "
        "The OS distribution version has changed from 12 to 13"
    )


def test_distro_change_discards_python() -> None:
    meta = python_layer_metadata(PY313, BOOKWORM, "a" * 64)
    decision = decide_cache(PYTHON, meta, python_layer_metadata(PY313, TRIXIE, "a" * 64), contents_present=True)
    assert decision.reasons == ("The OS distribution version has changed from 12 to 13",)


def test_pip_version_change_rebuilds_only_the_pip_layer() -> None:
    python_before = python_layer_metadata(PY313, BOOKWORM, "a" * 64)
    python_now = python_layer_metadata(PY313, BOOKWORM, "a" * 64)
    assert "pip-version" not in python_now
    assert decide_cache(PYTHON, python_before, python_now, contents_present=True).reuse
    pip = decide_cache(
        PIP,
        pip_layer_metadata("25.2", PY313, BOOKWORM),
        pip_layer_metadata("25.3", PY313, BOOKWORM),
        contents_present=True,
    )
    assert not pip.reuse
    assert pip.message == "Discarding cached pip 25.2 since: The pip version has changed from 25.2 to 25.3"


def test_python_version_change_also_discards_pip() -> None:
    pip = decide_cache(
        PIP,
        pip_layer_metadata("25.3", PY311, BOOKWORM),
        pip_layer_metadata("25.3", PY313, BOOKWORM),
        contents_present=True,
    )
    assert pip.message == "Discarding cached pip 25.3 since: The Python version has changed from 3.11.2 to 3.13.5"


def test_metadata_restored_without_files_is_discarded() -> None:
    meta = pip_layer_metadata("25.3", PY313, BOOKWORM)
    decision = decide_cache(PIP, meta, meta, contents_present=False)
    assert not decision.reuse
    assert decision.message == "Discarding cached pip 25.3 since: its files were not restored from the build cache"


def test_unreadable_metadata_is_discarded() -> None:
    decision = decide_cache(PIP, UNREADABLE, pip_layer_metadata("25.3", PY313, BOOKWORM), contents_present=True)
    assert decision.message == "Discarding cached pip since: its layer metadata could not be read"


def test_missing_key_in_old_metadata_counts_as_change() -> None:
    now = pip_layer_metadata("25.3", PY313, BOOKWORM)
    before = {k: v for k, v in now.items() if k != "layer-format"}
    decision = decide_cache(PIP, before, now, contents_present=True)
    assert decision.reasons == ("The buildpack's layer format has changed from (not recorded) to 1",)


def test_pip_cache_wording() -> None:
    subject = Subject("pip cache", fresh_action="starting an empty")
    assert decide_cache(subject, None, {"a": "1"}, contents_present=False).message == (
        "No cached pip cache found; starting an empty pip cache"
    )
    assert decide_cache(subject, {"a": "1"}, {"a": "1"}, contents_present=True).message == "Using cached pip cache"


def test_layer_toml_round_trip_and_restore_reads_only_metadata(tmp_path) -> None:
    meta = pip_layer_metadata("25.3", PY313, BOOKWORM)
    write_layer_toml(tmp_path, "pip", LayerTypes(build=True, cache=True), meta)
    data = tomllib.loads((tmp_path / "pip.toml").read_text())
    assert data["types"] == {"build": True, "launch": False, "cache": True}
    assert data["metadata"] == meta
    assert read_restored_metadata(tmp_path, "pip") == meta
    (tmp_path / "pip.toml").write_text("[metadata\nbroken")
    assert read_restored_metadata(tmp_path, "pip") is UNREADABLE
    assert read_restored_metadata(tmp_path, "absent") is None


def test_fresh_layer_dir_removes_old_contents_and_toml(tmp_path) -> None:
    (tmp_path / "venv" / "lib").mkdir(parents=True)
    (tmp_path / "venv" / "lib" / "stale.py").write_text("")
    (tmp_path / "venv.toml").write_text("[metadata]\n")
    path = fresh_layer_dir(tmp_path, "venv")
    assert path.is_dir() and not any(path.iterdir())
    assert not (tmp_path / "venv.toml").exists()
