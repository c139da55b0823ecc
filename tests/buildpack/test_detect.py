from __future__ import annotations

import pytest
from bpconform_python import detect


@pytest.mark.parametrize("name", [*detect.PYTHON_APP_FILES, "app.py", "manage.py"])
def test_each_marker_file_alone_passes(name: str) -> None:
    result = detect.detect_from_names([name, "README.md"])
    assert result.passed
    assert result.found == (name,)
    assert name in result.message


def test_reports_markers_in_a_stable_order() -> None:
    result = detect.detect_from_names(["zeta.py", "uv.lock", "requirements.txt", "alpha.py"])
    assert result.found == ("requirements.txt", "uv.lock", "alpha.py", "zeta.py")


def test_non_python_app_fails_listing_everything_looked_for() -> None:
    result = detect.detect_from_names(["package.json", "index.js", "python.txt"], "/workspace")
    assert not result.passed
    assert "/workspace" in result.message
    for name in detect.PYTHON_APP_FILES:
        assert name in result.message
    assert "*.py" in result.message


def test_only_files_at_the_root_count(tmp_path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("")
    (tmp_path / "requirements.txt").mkdir()  # a directory named like a marker is not a marker
    assert not detect.detect_from_names(detect.root_file_names(tmp_path)).passed


def test_plan_provides_and_requires_python() -> None:
    plan = detect.build_plan()
    assert plan["provides"] == [{"name": "python"}]
    assert [r["name"] for r in plan["requires"]] == ["python"]
