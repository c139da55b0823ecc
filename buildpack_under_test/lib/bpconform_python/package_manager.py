"""Which package manager an app uses, and the user variables that would send an install elsewhere.

An app names exactly one package manager by its file at the app root: `requirements.txt` (pip),
`poetry.lock` (Poetry) or `uv.lock` (uv). Guessing between two, or installing nothing for an app
that clearly has dependencies (a `pyproject.toml` without a lock file), would build an image that
fails at run time, so both are build errors that name the files. Pipenv is recognised only to be
refused clearly: an "empty venv" success would be worse than an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from bpconform_python.output import BuildpackError


class PackageManager(Enum):
    PIP = "pip"
    POETRY = "poetry"
    UV = "uv"

    @property
    def uses_lock_file(self) -> bool:
        return self is not PackageManager.PIP


# The file that selects each manager, in the order they are reported.
MANAGER_FILES: dict[str, PackageManager] = {
    "requirements.txt": PackageManager.PIP,
    "poetry.lock": PackageManager.POETRY,
    "uv.lock": PackageManager.UV,
}
PIPENV_FILES = ("Pipfile", "Pipfile.lock")
PYPROJECT = "pyproject.toml"
RUNTIME_TXT = "runtime.txt"


@dataclass(frozen=True)
class Selection:
    """The chosen manager and the file that chose it (None: a plain app with nothing to install)."""

    manager: PackageManager
    file: str | None


def select_package_manager(names: Iterable[str]) -> Selection:
    """Decide from the regular files at the app root; every ambiguous case is an error naming files."""
    present = set(names)
    found = [name for name in MANAGER_FILES if name in present]
    pipenv = [name for name in PIPENV_FILES if name in present]
    if len(found) + (1 if pipenv else 0) > 1:
        listed = ", ".join(found + pipenv)
        raise BuildpackError(
            "Multiple package manager files",
            f"The app has files for more than one package manager: {listed}. The buildpack installs "
            "dependencies with exactly one of pip (requirements.txt), Poetry (poetry.lock) or uv (uv.lock); "
            "delete the files of the ones you do not use.",
        )
    if pipenv:
        raise BuildpackError(
            "Pipenv is not supported",
            f"The app has {' and '.join(pipenv)}, but this buildpack does not support Pipenv, so none of its "
            "packages would be installed. Move to uv (`uv init` then `uv add` your packages, commit uv.lock), "
            "Poetry (commit poetry.lock) or pip (`pipenv requirements > requirements.txt`, then delete the Pipfile).",
        )
    if found:
        manager = MANAGER_FILES[found[0]]
        if manager.uses_lock_file and PYPROJECT not in present:
            raise BuildpackError(
                f"{found[0]} without {PYPROJECT}",
                f"The app has {found[0]} but no {PYPROJECT}: {manager.value} needs both to install the "
                f"dependencies. Commit the {PYPROJECT} the lock file was made from.",
            )
        return Selection(manager, found[0])
    if PYPROJECT in present:
        raise BuildpackError(
            "No package manager file",
            f"The app has a {PYPROJECT} but no requirements.txt, poetry.lock or uv.lock, so the buildpack cannot "
            "tell how to install its dependencies. Commit the lock file of your package manager (`uv lock` or "
            "`poetry lock`), or list the dependencies in requirements.txt.",
        )
    return Selection(PackageManager.PIP, None)


# User variables (from `<platform>/env/`) that make an installer put packages somewhere other than
# the venv layer, or run another interpreter: the image would ship without the app's packages.
REDIRECTING_VARIABLES = (
    "PIP_TARGET",
    "PIP_PREFIX",
    "PIP_ROOT",
    "PIP_USER",
    "PYTHONHOME",
    "UV_PROJECT_ENVIRONMENT",
    "POETRY_VIRTUALENVS_PATH",
    "POETRY_VIRTUALENVS_IN_PROJECT",
)


def refused_variables(platform_env: Mapping[str, str]) -> list[str]:
    return [name for name in REDIRECTING_VARIABLES if name in platform_env]


def check_user_env(platform_env: Mapping[str, str]) -> None:
    """One error listing every refused variable, so the user fixes them all in one go."""
    refused = refused_variables(platform_env)
    if refused:
        plural = len(refused) > 1
        listed = ", ".join(f"{name}={platform_env[name]!r}" for name in refused)
        raise BuildpackError(
            "Unsupported build environment variables",
            f"The build environment sets {listed}. "
            f"{'These variables' if plural else 'This variable'} would make pip, Poetry or uv install "
            "the app's packages outside the buildpack's virtual environment (or with another Python), and the "
            f"image would run without them. Remove {'them' if plural else 'it'} from the build environment; "
            "the buildpack chooses the install location and the Python itself.",
        )
