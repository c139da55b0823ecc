from __future__ import annotations

import pytest
from bpconform_python.envfiles import write_env


def test_override_and_default_files_hold_the_exact_value(tmp_path) -> None:
    write_env(tmp_path, "env", "LANG", "C.UTF-8", "default")
    write_env(tmp_path, "env.build", "PYTHONUSERBASE", "/layers/x/pip", "override")
    assert (tmp_path / "env" / "LANG.default").read_text() == "C.UTF-8"
    assert (tmp_path / "env.build" / "PYTHONUSERBASE.override").read_text() == "/layers/x/pip"


def test_prepend_without_delimiter_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="no default one"):
        write_env(tmp_path, "env", "PATH", "/x", "prepend")


def test_prepend_writes_its_delim_file(tmp_path) -> None:
    write_env(tmp_path, "env.launch", "PATH", "/x/bin", "prepend", delim=":")
    assert (tmp_path / "env.launch" / "PATH.prepend").read_text() == "/x/bin"
    assert (tmp_path / "env.launch" / "PATH.delim").read_text() == ":"


@pytest.mark.parametrize(
    ("scope", "name", "action"), [("env.run", "A", "override"), ("env", "1A", "default"), ("env", "A", "set")]
)
def test_bad_scope_name_or_action(tmp_path, scope: str, name: str, action: str) -> None:
    with pytest.raises(ValueError):
        write_env(tmp_path, scope, name, "v", action)


def test_process_specific_launch_scope(tmp_path) -> None:
    write_env(tmp_path, "env.launch/web", "PORT", "8080", "default")
    assert (tmp_path / "env.launch" / "web" / "PORT.default").read_text() == "8080"
