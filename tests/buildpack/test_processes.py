from __future__ import annotations

import pytest
import tomllib
from bpconform_python.output import BuildpackError
from bpconform_python.processes import Process, launch_toml, parse_procfile, processes_for_app
from bpconform_python.tomlwriter import dumps


def test_procfile_entries_in_order_with_comments_skipped() -> None:
    text = "# processes\nweb: gunicorn app:app --bind 0.0.0.0:$PORT\n\nworker:python worker.py  \n"
    assert list(parse_procfile(text).items()) == [
        ("web", "gunicorn app:app --bind 0.0.0.0:$PORT"),
        ("worker", "python worker.py"),
    ]


@pytest.mark.parametrize("line", ["just a command", "worker:", "bad type: x"])
def test_malformed_line_names_its_number(line: str) -> None:
    with pytest.raises(BuildpackError) as caught:
        parse_procfile(f"web: ok\n{line}\n")
    assert "Line 2 of the Procfile" in caught.value.detail


def test_duplicate_type_is_an_error() -> None:
    with pytest.raises(BuildpackError, match="twice"):
        parse_procfile("web: a\nweb: b\n")


def test_procfile_web_is_default_and_runs_through_sh(tmp_path) -> None:
    (tmp_path / "Procfile").write_text("worker: python w.py\nweb: python -m http.server $PORT\n")
    (tmp_path / "app.py").write_text("")
    assert processes_for_app(tmp_path) == [
        Process("worker", ("/bin/sh", "-c", "python w.py"), default=False),
        Process("web", ("/bin/sh", "-c", "python -m http.server $PORT"), default=True),
    ]


def test_procfile_without_web_has_no_default(tmp_path) -> None:
    (tmp_path / "Procfile").write_text("worker: python w.py\n")
    assert [p.default for p in processes_for_app(tmp_path)] == [False]


@pytest.mark.parametrize(("files", "expected"), [(["app.py", "main.py"], "app.py"), (["main.py"], "main.py")])
def test_entry_point_rule(tmp_path, files: list[str], expected: str) -> None:
    for name in files:
        (tmp_path / name).write_text("")
    assert processes_for_app(tmp_path) == [Process("web", ("python", expected), default=True)]


def test_no_procfile_or_entry_point_means_no_processes(tmp_path) -> None:
    (tmp_path / "server.py").write_text("")
    assert processes_for_app(tmp_path) == []


def test_launch_toml_uses_command_arrays() -> None:
    data = tomllib.loads(dumps(launch_toml([Process("web", ("python", "app.py"), default=True)])))
    assert data == {"processes": [{"type": "web", "command": ["python", "app.py"], "args": [], "default": True}]}
