"""The data the suite ships with: sample apps, the reference snapshots, the reference buildpack, the guides.

In the repository they stay at the top (`testapps/`, `snapshots/`, `buildpack_under_test/`, `docs/`), as the
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

DataName = Literal["testapps", "snapshots", "buildpack_under_test", "docs"]
DATA_NAMES: tuple[DataName, ...] = ("testapps", "snapshots", "buildpack_under_test", "docs")


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


# The guides (`docs/<topic>.md`). A message never names `docs/...`, a path that exists only in a checkout:
# it names `bpconform docs TOPIC` (see `doc_reference`), which prints the shipped guide anywhere.
DOC_TOPICS: tuple[str, ...] = ("build", "inspect", "profile-init", "profiles", "third-party")


def doc_path(topic: str) -> Path:
    """The shipped guide `topic` (in the installed package, else in the checkout)."""
    if topic not in DOC_TOPICS:
        raise ValueError(f"unknown guide {topic!r}; known: {', '.join(DOC_TOPICS)}")
    return data_path("docs") / f"{topic}.md"


def doc_reference(topic: str) -> str:
    """How a message points a user at a guide: a command that works from a wheel as from a checkout."""
    doc_path(topic)  # a typo in a topic fails where the message is made, not in front of the user
    return f"`bpconform docs {topic}`"
