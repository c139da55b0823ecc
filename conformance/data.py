"""The data the suite ships with: sample apps, the reference snapshots and the reference buildpack.

In the repository they stay at the top (`testapps/`, `snapshots/`, `buildpack_under_test/`), as the
project's layout asks; the wheel carries copies under `conformance/_data/` (see setup.py). Every
part of the harness finds them through `data_path`, so a checkout, an editable install and an
installed wheel behave the same. What is packaged is read-only input: nothing ever writes there,
and no hint ever tells a user to edit a file in it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

PACKAGE_DATA = Path(__file__).resolve().parent / "_data"
CHECKOUT = Path(__file__).resolve().parent.parent

DataName = Literal["testapps", "snapshots", "buildpack_under_test"]
DATA_NAMES: tuple[DataName, ...] = ("testapps", "snapshots", "buildpack_under_test")


def data_path(name: DataName) -> Path:
    """Where the shipped `name` is: in the installed package, else in the checkout this runs from."""
    if name not in DATA_NAMES:
        raise ValueError(f"unknown packaged data {name!r}; known: {', '.join(DATA_NAMES)}")
    packaged = PACKAGE_DATA / name
    return packaged if packaged.is_dir() else CHECKOUT / name


def is_packaged(path: Path) -> bool:
    """Whether `path` is inside the shipped data (a place a hint must never send a user to edit)."""
    try:
        path.resolve().relative_to(PACKAGE_DATA)
    except ValueError:
        return False
    return True


def sample_apps_dir() -> Path:
    return data_path("testapps")


def reference_buildpack() -> Path:
    return data_path("buildpack_under_test")


def reference_snapshots() -> Path:
    """The snapshots of the built-in reference profile (`<dir>/reference/<stack>/`)."""
    return data_path("snapshots")
