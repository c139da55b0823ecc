"""Name rules of the buildpack spec and the lifecycle, as data: one full-string pattern per kind of name.

Buildpacks are untrusted (DESIGN.md, "Trust boundary"): an id, a version, a layer name or a process
type becomes a directory name, a mount target, a tar member or a symlink, so each is checked here,
with `re.fullmatch` (a `$` anchor would let a trailing newline through), before anything uses it.
Each `*_problem` function returns None for a good name, else a sentence saying what is wrong; each
`check_*` function raises a `PlatformError` built from it that names the file, the value and the rule.

Where the sources disagree:

- Buildpack id: the spec (buildpack.md, "The buildpack ID") allows letters, digits, `.`, `/` and `-`
  and reserves `app`, `config`, `generated` and `sbom`; the lifecycle checks nothing and only
  escapes `/` to `_` (launch/launch.go:199, `EscapeID`). We also accept `_`, as the platform always
  has, and refuse `.` and `..`, whose escaped form would be a path step, and ids the host cannot
  store beside the layer names it derives from them (see `MAX_NAME_BYTES`).
- Buildpack version: the spec wants `X.Y.Z`; the lifecycle accepts any string and uses it as a
  path (`/cnb/buildpacks/<id>/<version>`). We accept a semver-like word (`1`, `0.0.1`,
  `1.2.3-rc.1+build.5`): letters, digits, `.`, `_`, `+`, `-`, starting with a letter or digit, so
  never a path step (`..`), never a `/`, never whitespace.
- Layer names: the lifecycle takes any directory or `<name>.toml` in the buildpack's layers dir
  (buildpack/layers.go:40-75) and reserves `build`, `launch` and `store` (the tomls it reads there).
  A name is a single path component: `.`, `..`, `/` and NUL are impossible; control characters are
  refused because they break log lines and the report; the length is capped so every file the
  platform derives from the name fits in a host file name.
- Process types: the spec (buildpack.md, launch.toml `type`) allows letters, digits, `.`, `_`, `-`;
  the lifecycle only forbids `/><:|&\\` (layers/launcher.go:85-90, `validateProcessType`), so it
  accepts `my+proc`. We follow the lifecycle, plus the host-safety rules of layer names.
"""

from __future__ import annotations

import re
from enum import IntEnum
from pathlib import Path

from conformance.errors import PlatformError

# ------------------------------------------------------------------------------------------------
# Constants of the spec and the lifecycle, defined once
# ------------------------------------------------------------------------------------------------

PLATFORM_API = "0.13"
"""The Platform API the embedded platform implements (what `CNB_PLATFORM_API` says in the image)."""


class ExitCode(IntEnum):
    """The lifecycle's exit codes (platform/exit.go: each phase's codes are its base + 0/1/2)."""

    FAILED = 1  # anything without a more specific code
    INCOMPATIBLE_PLATFORM_API = 11
    INCOMPATIBLE_BUILDPACK_API = 12
    FAILED_DETECTION = 20  # no group passed
    FAILED_DETECTION_WITH_ERRORS = 21  # no group passed and a buildpack errored
    DETECT_ERROR = 22  # detection itself failed (unknown buildpack, a bin/detect that hung)
    ANALYZE_ERROR = 32  # e.g. the run image is missing
    RESTORE_ERROR = 42
    FAILED_BUILD = 51  # a buildpack's bin/build exited non-zero
    BUILD_ERROR = 52  # the platform could not run or understand a buildpack (bad TOML, undeclared SBOM)
    EXPORT_ERROR = 62
    LAUNCH_ERROR = 82


ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""A variable name `<platform>/env/` may hold (the file name is the variable's name)."""

# In-image paths (platform spec, "Build" and "Launch" sections).
APP_DIR = "/workspace"
LAYERS_DIR = "/layers"
PLATFORM_DIR = "/platform"
BUILDPACKS_DIR = "/cnb/buildpacks"
LIFECYCLE_DIR = "/cnb/lifecycle"
LAUNCHER_PATH = f"{LIFECYCLE_DIR}/launcher"
PROCESS_DIR = "/cnb/process"
SBOM_DIR = f"{LAYERS_DIR}/sbom"
PLANS_DIR = "/cnb-plans"  # ours: each buildpack's plan file (the lifecycle keeps them in a temp dir)

# Image labels.
LIFECYCLE_METADATA_LABEL = "io.buildpacks.lifecycle.metadata"
BUILD_METADATA_LABEL = "io.buildpacks.build.metadata"
PROJECT_METADATA_LABEL = "io.buildpacks.project.metadata"
REBASABLE_LABEL = "io.buildpacks.rebasable"
STACK_ID_LABEL = "io.buildpacks.stack.id"
DISTRO_NAME_LABEL = "io.buildpacks.base.distro.name"
DISTRO_VERSION_LABEL = "io.buildpacks.base.distro.version"

MAX_NAME_BYTES = 120
"""Longest id (escaped), in UTF-8 bytes: it names directories on the host and in the image."""

MAX_LAYER_NAME_BYTES = 255 - len(".toml")
"""Longest layer name, in UTF-8 bytes. The lifecycle sets no limit; the file system does: a layer
exists only through `<layer>.toml`, and Linux stops at 255 bytes per name (NAME_MAX). The host never
names a file after a layer (layer tars are named by uuid or digest), so every name a buildpack can
create is storable."""

MAX_VERSION_LENGTH = 64

BUILDPACK_ID = re.compile(r"[A-Za-z0-9._/-]+")
RESERVED_BUILDPACK_IDS = frozenset({"app", "config", "generated", "sbom"})
BUILDPACK_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
RESERVED_LAYER_NAMES = frozenset({"build", "launch", "store"})
LAYER_NAME = re.compile(r"[^/\x00-\x1f\x7f]+")
PROCESS_TYPE = re.compile(r"[^/><:|&\\\x00-\x1f\x7f]+")
PROCESS_TYPE_FORBIDDEN = "/><:|&\\"


def _too_long(name: str, limit: int = MAX_NAME_BYTES) -> bool:
    return len(name.encode("utf-8", errors="surrogatepass")) > limit


def buildpack_id_problem(bp_id: object) -> str | None:
    if not isinstance(bp_id, str) or not bp_id:
        return "a buildpack id must be a non-empty string"
    if not BUILDPACK_ID.fullmatch(bp_id):
        return "a buildpack id may only contain letters, digits, '.', '/', '-' and '_' (no spaces, newlines or unicode)"
    if bp_id in RESERVED_BUILDPACK_IDS:
        return f"{', '.join(sorted(RESERVED_BUILDPACK_IDS))} are reserved buildpack ids"
    escaped = escape_id(bp_id)
    if escaped in (".", "..") or any(part in (".", "..") for part in bp_id.split("/")):
        return "a buildpack id may not be or contain the path step '.' or '..'"
    if _too_long(escaped):
        return f"a buildpack id may be at most {MAX_NAME_BYTES} characters long (it names directories on the host)"
    return None


def buildpack_version_problem(version: object) -> str | None:
    if not isinstance(version, str) or not version:
        return "a buildpack version must be a non-empty string"
    if not BUILDPACK_VERSION.fullmatch(version):
        return (
            "a buildpack version is a word like 1.2.3 (letters, digits, '.', '_', '+', '-', starting with a letter"
            " or digit): it names a directory, so no '/', no whitespace, no leading '.'"
        )
    if len(version) > MAX_VERSION_LENGTH:
        return f"a buildpack version may be at most {MAX_VERSION_LENGTH} characters long"
    return None


def layer_name_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return "a layer name must be a non-empty string"
    if name in (".", ".."):
        return "'.' and '..' are path steps, not layer names"
    if not LAYER_NAME.fullmatch(name):
        return "a layer name is one file name: no '/', no control characters (newline, tab, NUL)"
    if name in RESERVED_LAYER_NAMES:
        return f"{', '.join(sorted(RESERVED_LAYER_NAMES))} are reserved (build.toml, launch.toml, store.toml)"
    if _too_long(name, MAX_LAYER_NAME_BYTES):
        return f"a layer name may be at most {MAX_LAYER_NAME_BYTES} bytes long (<layer>.toml must fit in 255 bytes)"
    return None


def process_type_problem(process_type: object) -> str | None:
    if not isinstance(process_type, str) or not process_type:
        return "a process type must be a non-empty string"
    if process_type in (".", ".."):
        return "'.' and '..' cannot be process types (they name /cnb/process/<type>)"
    if not PROCESS_TYPE.fullmatch(process_type):
        return f"a process type may not contain {PROCESS_TYPE_FORBIDDEN!r} or control characters"
    if _too_long(process_type):
        return f"a process type may be at most {MAX_NAME_BYTES} bytes long"
    return None


def escape_id(bp_id: str) -> str:
    """The directory name of a buildpack under `/layers` and `/cnb/buildpacks` (lifecycle `EscapeID`)."""
    return bp_id.replace("/", "_")


def _refuse(where: str, what: str, value: object, problem: str, hint: str) -> PlatformError:
    return PlatformError(f"{where}: invalid {what} {value!r}: {problem}", hint, ExitCode.BUILD_ERROR)


def check_buildpack_id(bp_id: object, where: str | Path) -> str:
    problem = buildpack_id_problem(bp_id)
    if problem:
        raise _refuse(str(where), "buildpack id", bp_id, problem, 'use an id like "example/python"')
    return bp_id  # type: ignore[return-value]


def check_buildpack_version(version: object, where: str | Path) -> str:
    problem = buildpack_version_problem(version)
    if problem:
        raise _refuse(str(where), "buildpack version", version, problem, 'use a version like "1.2.3"')
    return version  # type: ignore[return-value]


def check_layer_name(name: object, buildpack_id: str) -> str:
    problem = layer_name_problem(name)
    if problem:
        raise _refuse(
            f"buildpack {buildpack_id}",
            "layer name",
            name,
            problem,
            "rename the layer (its directory and its <layer>.toml) to a short plain name like 'python'",
        )
    return name  # type: ignore[return-value]


def check_process_type(process_type: object, where: str | Path) -> str:
    """Refused with the export code: the lifecycle checks types when it writes the process-types layer."""
    problem = process_type_problem(process_type)
    if problem:
        error = _refuse(str(where), "process type", process_type, problem, "use a type like 'web' or 'worker'")
        error.exit_code = ExitCode.EXPORT_ERROR
        raise error
    return process_type  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------------
# Image references (the Docker reference grammar, distribution/reference's regexp.go)
# ------------------------------------------------------------------------------------------------

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?", re.ASCII
)
MAX_IMAGE_NAME = 255


def image_reference_problem(reference: object) -> str | None:
    """Why `reference` is not an image name Docker accepts (lowercase repository, optional :tag), or None.

    The name part (before any tag or digest) is at most 255 characters, as in distribution/reference.
    As there, a first component with uppercase letters can only be a registry host (`Example/app`).
    """
    if not isinstance(reference, str) or not reference:
        return "an image name must not be empty"
    if not IMAGE_REFERENCE.fullmatch(reference):
        return (
            "an image name is lowercase letters, digits and the separators '.', '_', '-', '/', with an optional"
            " ':tag' (no spaces, no uppercase in the repository)"
        )
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    if len(name) > MAX_IMAGE_NAME:
        return f"an image name may be at most {MAX_IMAGE_NAME} characters long (before the tag)"
    return None


def check_image_reference(reference: object, what: str = "--image", *, target: bool = True) -> str:
    """Raise a clear error for an invalid reference; a build `target` also needs a tag, not a digest
    (the engine's `docker load` only names images by tag)."""
    problem = image_reference_problem(reference)
    if problem is None and target and "@" in str(reference):
        problem = "a build writes a tag; an image digest (@sha256:...) cannot be written"
    if problem:
        raise PlatformError(
            f"{what} {reference!r} is not a valid image name: {problem}",
            "name the image like my-app or registry.example.com/team/my-app:1.0",
        )
    return reference  # type: ignore[return-value]
