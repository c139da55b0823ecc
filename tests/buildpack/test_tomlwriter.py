from __future__ import annotations

import pytest
import tomllib
from bpconform_python.tomlwriter import dumps


def test_round_trip_of_everything_the_buildpack_writes() -> None:
    document = {
        "types": {"build": True, "launch": False, "cache": True},
        "metadata": {"python-version": "3.13.5", "count": 3, "weird key": 'quote " back\\slash\nnew\ttab\x01'},
        "processes": [
            {"type": "web", "command": ["/bin/sh", "-c", "gunicorn 'app:app'"], "args": [], "default": True},
            {"type": "worker", "command": ["python", "w.py"], "default": False},
        ],
        "requires": [{"name": "python", "metadata": {"launch": True}}],
    }
    assert tomllib.loads(dumps(document)) == document


def test_scalars_come_before_tables() -> None:
    text = dumps({"t": {"a": "b"}, "x": "y"})
    assert text.index('x = "y"') < text.index("[t]")


def test_empty_document() -> None:
    assert dumps({}) == ""


def test_unsupported_type_is_refused() -> None:
    with pytest.raises(TypeError):
        dumps({"a": 1.5j})
