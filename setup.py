"""Packaging hook: the wheel carries the data the suite needs, from where the repository keeps it.

`testapps/`, `snapshots/`, `buildpack_under_test/` and `docs/` stay at the top of the repository (the
project's layout); `build_py` copies them into `conformance/_data/` of the built package, where
`conformance.data.data_path` finds them. An editable install needs no copy: `data_path` falls
back to the checkout. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
DATA_DIRS = ("testapps", "snapshots", "buildpack_under_test", "docs")  # as conformance.data.DATA_NAMES
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ruff_cache", ".pytest_cache")


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "conformance" / "_data"
        for name in DATA_DIRS:
            shutil.rmtree(target / name, ignore_errors=True)
            # symlinks=False: the wheel holds plain files; copy2 keeps the executable bits of bin/*
            shutil.copytree(HERE / name, target / name, ignore=IGNORED, copy_function=shutil.copy2)


setup(cmdclass={"build_py": BuildPyWithData})
