"""Any pair of images as build and run image: checked against the CNB base-image contract up front.

A platform may build on any build/run image pair, but only one that meets the contract of the
platform spec (buildpacks/spec `platform.md`, sections "Build Image", "Run Image" and "Target
Data") gives buildpacks and apps what they were promised. A pair that does not would fail late and
obscurely: a buildpack running as root, a `CNB_USER_ID` the layers get chowned to that is not the
user buildpacks run as, a CPython compiled against trixie on a bookworm run image. So the pair is
checked before anything is built, and every broken rule is named in one error, not the first only.

What is checked (MUST of the spec, or what this platform cannot do without; an error):

- build image: `User` is set and resolves to a non-root uid; `CNB_USER_ID`/`CNB_GROUP_ID` are set,
  numeric, and are that user's uid and primary gid; the user's home exists and is writable by it;
  `PATH` is set (it may be empty). A `User` name, or group name, is resolved in the image's own
  `/etc/passwd`/`/etc/group`, as the engine resolves it when it starts a container.
- run image: `PATH` is set; a `User` name that is not in its `/etc/passwd` (the app image, which
  inherits the run image's `User`, would not start).
- both: `os`, `architecture` and `variant` are set, equal, and the Docker engine's own (the platform
  runs every container on this engine: no emulation); the distro (`io.buildpacks.base.distro.name`
  and `.version`, else `ID`/`VERSION_ID` of `/etc/os-release`, which is where the lifecycle looks
  when the labels are missing: platform/target_data.go `GetTargetOSFromFileSystem`) is the same in
  both; the run image's target id `io.buildpacks.base.id`, if set, uses only letters, digits, `.`,
  `/` and `-`; `io.buildpacks.stack.id`, if both images carry it, is the same (the rule of Platform
  API < 0.12 that pack still applies to older stacks).

What is only reported (SHOULD of the spec; warnings in the record): no run image `User`, or one
with the build user's uid or root (the app can then rewrite its own layers); no
`io.buildpacks.rebasable=true`; no distro labels on the run image.

Files are read from the images with the engine's archive API on a container that is created and
never started, so the check works for images without a shell (distroless, scratch) and never
touches the host's file system; a symlink (e.g. `/etc/os-release` -> `../usr/lib/os-release`) is
resolved inside the image's own tree.

The result is a plain record (names, ids, numbers, strings) that the platform takes as inputs
without knowing where the images came from.
"""

from __future__ import annotations

import io
import posixpath
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from conformance.errors import StackError

if TYPE_CHECKING:
    from conformance.stacks import Stack

DISTRO_NAME_LABEL = "io.buildpacks.base.distro.name"
DISTRO_VERSION_LABEL = "io.buildpacks.base.distro.version"
TARGET_ID_LABEL = "io.buildpacks.base.id"
REBASABLE_LABEL = "io.buildpacks.rebasable"
STACK_ID_LABEL = "io.buildpacks.stack.id"
DECIMAL = re.compile(r"[0-9]+")  # not str.isdigit: it takes "²", which int() refuses
TARGET_ID = re.compile(r"[A-Za-z0-9./-]+")  # platform.md, "Target Data": the target ID MUST only contain ...
MAX_FILE_BYTES = 1024 * 1024  # /etc/passwd and friends; anything larger is not one
MAX_LINK_HOPS = 8

SPEC_BUILD = 'platform.md "Build Image"'
SPEC_RUN = 'platform.md "Run Image"'
SPEC_TARGET = 'platform.md "Target Data"'

Kind = Literal["build", "run"]
DistroSource = Literal["labels", "os-release", "none"]


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class PathStat:
    """Owner and mode of a path inside an image (after following links)."""

    uid: int
    gid: int
    mode: int
    is_dir: bool


@dataclass(frozen=True)
class ImageFacts:
    """What the check needs to know about one image: its config and a few of its files."""

    reference: str
    image_id: str
    os: str
    architecture: str
    variant: str
    user: str
    env: dict[str, str]
    labels: dict[str, str]
    passwd: tuple[PasswdEntry, ...] = ()
    groups: dict[str, int] = field(default_factory=dict)  # group name -> gid
    os_release: dict[str, str] = field(default_factory=dict)
    homes: dict[str, PathStat | None] = field(default_factory=dict)  # home dir -> its stat, None: missing


@dataclass(frozen=True)
class Target:
    """The target the platform hands to buildpacks as `CNB_TARGET_*` (from the run image)."""

    os: str
    arch: str
    arch_variant: str
    distro_name: str
    distro_version: str
    id: str
    distro_source: DistroSource


@dataclass(frozen=True)
class BaseImages:
    """A build/run image pair that meets the contract, as plain inputs for the platform."""

    build_image: str
    build_image_id: str
    run_image: str
    run_image_id: str
    build_uid: int
    build_gid: int
    build_home: str
    run_user: str  # the run image's `User`, verbatim: the app image inherits it ("" = root)
    run_uid: int | None  # resolved where the image says (numeric, or in its /etc/passwd)
    run_gid: int | None
    target: Target
    rebasable: bool
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    """One broken rule: which image, what the rule wants, what the image has."""

    image: str
    rule: str
    expected: str
    actual: str
    source: str

    def line(self) -> str:
        return f"{self.image}: {self.rule}: expected {self.expected}, found {self.actual} ({self.source})"


class BaseImageError(StackError):
    """The build/run image pair breaks the base-image contract; `problems` lists every broken rule."""

    def __init__(self, problems: tuple[Problem, ...], hint: str) -> None:
        lines = "\n".join(f"  - {problem.line()}" for problem in problems)
        super().__init__(f"the base images do not meet the CNB base-image contract ({len(problems)}):\n{lines}", hint)
        self.problems = problems


HINT = (
    "fix the images (e.g. `USER 1000:1000` and `ENV CNB_USER_ID=1000 CNB_GROUP_ID=1000` in the build image's "
    "Dockerfile, a `cnb` user with a writable home, labels io.buildpacks.base.distro.name/version), "
    "or use the stacks bpconform makes (`bpconform stack build bookworm`)"
)


# --------------------------------------------------------------------------------------------
# Pure parts: parsing and the rules
# --------------------------------------------------------------------------------------------


def _decimal(text: str) -> bool:
    return DECIMAL.fullmatch(text) is not None


def parse_passwd(text: str) -> tuple[PasswdEntry, ...]:
    entries = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 7 or not _decimal(parts[2]) or not _decimal(parts[3]):
            continue
        entries.append(PasswdEntry(parts[0], int(parts[2]), int(parts[3]), parts[5]))
    return tuple(entries)


def parse_group(text: str) -> dict[str, int]:
    groups: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and _decimal(parts[2]):
            groups.setdefault(parts[0], int(parts[2]))
    return groups


def parse_os_release(text: str) -> dict[str, str]:
    """`KEY=value` lines, values unquoted; like the lifecycle (internal/fsutil/os_detection.go
    `GetInfo`) only `ID` and `VERSION_ID` matter, but every key is kept for the message."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            values[key] = value.strip().strip("\"'")
    return values


@dataclass(frozen=True)
class ResolvedUser:
    uid: int | None
    gid: int | None
    home: str | None
    problem: str | None  # why it could not be resolved


def resolve_user(facts: ImageFacts) -> ResolvedUser:
    """The uid, primary gid and home of the image's `User`, as the engine resolves it at start:
    `name` or `uid`, optionally `:group` or `:gid`; a name must be in the image's files, a number
    need not be (then its gid is 0 and it has no home)."""
    spec = facts.user.strip()
    if not spec:
        return ResolvedUser(0, 0, _home_of(facts, "root"), None)
    user_part, _, group_part = spec.partition(":")
    entry = _passwd_entry(facts, user_part)
    if _decimal(user_part):
        uid = int(user_part)
        gid = entry.gid if entry else 0
    elif entry is None:
        return ResolvedUser(None, None, None, f"user {user_part!r} is not in the image's /etc/passwd")
    else:
        uid, gid = entry.uid, entry.gid
    if group_part:
        if _decimal(group_part):
            gid = int(group_part)
        elif group_part in facts.groups:
            gid = facts.groups[group_part]
        else:
            return ResolvedUser(uid, None, entry.home if entry else None, f"group {group_part!r} is not in /etc/group")
    return ResolvedUser(uid, gid, entry.home if entry else None, None)


def _passwd_entry(facts: ImageFacts, user: str) -> PasswdEntry | None:
    for entry in facts.passwd:
        if (_decimal(user) and entry.uid == int(user)) or entry.name == user:
            return entry
    return None


def _home_of(facts: ImageFacts, name: str) -> str | None:
    entry = _passwd_entry(facts, name)
    return entry.home if entry else None


def writable_by(stat: PathStat, uid: int, gid: int) -> bool:
    if uid == 0:
        return True
    if stat.uid == uid:
        return bool(stat.mode & 0o200)
    if stat.gid == gid:
        return bool(stat.mode & 0o020)
    return bool(stat.mode & 0o002)


def _build_problems(build: ImageFacts, user: ResolvedUser) -> list[Problem]:
    name = f"build image {build.reference}"
    problems: list[Problem] = []

    def add(rule: str, expected: str, actual: str) -> None:
        problems.append(Problem(name, rule, expected, actual, SPEC_BUILD))

    if not build.user.strip():
        add("`User` MUST be a non-root user", "a non-root user (e.g. `USER 1000:1000`)", "no `User` (root)")
    elif user.problem:
        add("`User` MUST be a user of the image", "a user in /etc/passwd, or a numeric uid", user.problem)
    elif user.uid == 0:
        add("`User` MUST be a non-root user", "a uid other than 0", f"`User` {build.user!r} (uid 0)")
    for env_name, wanted, what in (("CNB_USER_ID", user.uid, "uid"), ("CNB_GROUP_ID", user.gid, "primary gid")):
        raw = build.env.get(env_name)
        if raw is None:
            add(f"`{env_name}` MUST be set", f"the {what} of `User`" + (f" ({wanted})" if wanted else ""), "not set")
        elif not _decimal(raw):
            add(f"`{env_name}` MUST be a {what}", "a decimal number", repr(raw))
        elif wanted is not None and build.user.strip() and int(raw) != wanted:
            add(f"`{env_name}` MUST be the {what} of `User` {build.user!r}", str(wanted), raw)
    if user.uid is not None and user.uid != 0 and user.problem is None:
        if not user.home:
            add("`User` MUST have a writable home directory", "a passwd entry with a home", "no passwd entry")
        else:
            stat = build.homes.get(user.home)
            if stat is None or not stat.is_dir:
                add("`User` MUST have a writable home directory", f"directory {user.home}", "it does not exist")
            elif not writable_by(stat, user.uid, user.gid or 0):
                add(
                    "`User` MUST have a writable home directory",
                    f"{user.home} writable by {user.uid}:{user.gid}",
                    f"owned by {stat.uid}:{stat.gid}, mode {stat.mode & 0o7777:04o}",
                )
    if "PATH" not in build.env:
        add("`PATH` MUST be set (it may be empty)", "ENV PATH=...", "not set")
    return problems


def _run_problems(run: ImageFacts, user: ResolvedUser) -> list[Problem]:
    name = f"run image {run.reference}"
    problems = []
    if "PATH" not in run.env:
        problems.append(Problem(name, "`PATH` MUST be set (it may be empty)", "ENV PATH=...", "not set", SPEC_RUN))
    if run.user.strip() and user.problem:
        problems.append(
            Problem(
                name,
                "`User` must exist for the app image to start",
                "a user in its /etc/passwd",
                user.problem,
                SPEC_RUN,
            )
        )
    target_id = run.labels.get(TARGET_ID_LABEL)
    if target_id is not None and not TARGET_ID.fullmatch(target_id):
        problems.append(
            Problem(
                name,
                f"`{TARGET_ID_LABEL}` MUST only contain letters, digits, `.`, `/`, `-`",
                "e.g. io.example.base",
                repr(target_id),
                SPEC_TARGET,
            )
        )
    return problems


def distro_of(facts: ImageFacts) -> tuple[str, str, DistroSource]:
    """The image's distro name and version: its labels, else its /etc/os-release (ID, VERSION_ID)."""
    if DISTRO_NAME_LABEL in facts.labels or DISTRO_VERSION_LABEL in facts.labels:
        return facts.labels.get(DISTRO_NAME_LABEL, ""), facts.labels.get(DISTRO_VERSION_LABEL, ""), "labels"
    if facts.os_release.get("ID") or facts.os_release.get("VERSION_ID"):
        return facts.os_release.get("ID", ""), facts.os_release.get("VERSION_ID", ""), "os-release"
    return "", "", "none"


def target_distro(build: ImageFacts, run: ImageFacts) -> tuple[str, str, DistroSource]:
    """The distro buildpacks are told (`CNB_TARGET_DISTRO_*`), as the lifecycle finds it: the run
    image's labels (platform/target_data.go `GetTargetMetadata`), else `/etc/os-release` of the file
    system the lifecycle runs in, the build image's (`GetTargetOSFromFileSystem`), never the run image's."""
    if DISTRO_NAME_LABEL in run.labels or DISTRO_VERSION_LABEL in run.labels:
        return run.labels.get(DISTRO_NAME_LABEL, ""), run.labels.get(DISTRO_VERSION_LABEL, ""), "labels"
    if build.os_release.get("ID") or build.os_release.get("VERSION_ID"):
        return build.os_release.get("ID", ""), build.os_release.get("VERSION_ID", ""), "os-release"
    return "", "", "none"


def _pair_problems(build: ImageFacts, run: ImageFacts, host_os: str, host_arch: str) -> list[Problem]:
    problems = []
    pair = f"build image {build.reference} and run image {run.reference}"
    for facts in (build, run):
        if not facts.os or not facts.architecture:
            problems.append(
                Problem(
                    f"{'build' if facts is build else 'run'} image {facts.reference}",
                    "`os` and `architecture` MUST be set",
                    "OCI identifiers (e.g. linux/amd64)",
                    f"{facts.os or '(none)'}/{facts.architecture or '(none)'}",
                    SPEC_TARGET,
                )
            )
    build_platform = _platform(build)
    run_platform = _platform(run)
    if build_platform != run_platform:
        problems.append(
            Problem(
                pair, "`os`, `architecture` and `variant` MUST be the same", build_platform, run_platform, SPEC_TARGET
            )
        )
    for facts in (build, run):
        if facts.os and facts.architecture and (facts.os, facts.architecture) != (host_os, host_arch):
            problems.append(
                Problem(
                    f"{'build' if facts is build else 'run'} image {facts.reference}",
                    "the platform runs containers on this engine, without emulation",
                    f"{host_os}/{host_arch} (the engine's)",
                    f"{facts.os}/{facts.architecture}",
                    "bpconform",
                )
            )
    build_distro, run_distro = distro_of(build), distro_of(run)
    if build_distro[2] != "none" and run_distro[2] != "none" and build_distro[:2] != run_distro[:2]:
        problems.append(
            Problem(
                pair,
                "the distro (name and version) MUST be the same",
                f"{build_distro[0]} {build_distro[1]} (build, from {build_distro[2]})",
                f"{run_distro[0]} {run_distro[1]} (run, from {run_distro[2]})",
                SPEC_TARGET,
            )
        )
    build_stack, run_stack = build.labels.get(STACK_ID_LABEL), run.labels.get(STACK_ID_LABEL)
    if build_stack is not None and run_stack is not None and build_stack != run_stack:
        problems.append(
            Problem(pair, f"`{STACK_ID_LABEL}` must be the same on both", build_stack, run_stack, "Platform API < 0.12")
        )
    return problems


def _platform(facts: ImageFacts) -> str:
    return "/".join(part for part in (facts.os, facts.architecture, facts.variant) if part)


def _warnings(build_user: ResolvedUser, run: ImageFacts, run_user: ResolvedUser) -> tuple[str, ...]:
    warnings = []
    name = f"run image {run.reference}"
    if not run.user.strip():
        warnings.append(f"{name}: no `User`: apps would run as root ({SPEC_RUN}: SHOULD be a non-root user)")
    elif run_user.uid == 0:
        warnings.append(f"{name}: `User` {run.user!r} is root: apps would run as root")
    elif run_user.uid is not None and run_user.uid == build_user.uid:
        warnings.append(
            f"{name}: `User` {run.user!r} has the build user's uid {run_user.uid}: the app can rewrite its own"
            f" layers ({SPEC_RUN}: SHOULD be a DIFFERENT uid)"
        )
    if run.labels.get(REBASABLE_LABEL) != "true":
        warnings.append(f"{name}: `{REBASABLE_LABEL}` is not `true` ({SPEC_RUN}: SHOULD be set)")
    if DISTRO_NAME_LABEL not in run.labels and DISTRO_VERSION_LABEL not in run.labels:
        warnings.append(f"{name}: no `{DISTRO_NAME_LABEL}`/`{DISTRO_VERSION_LABEL}` labels ({SPEC_TARGET}: SHOULD)")
    return tuple(warnings)


def evaluate(build: ImageFacts, run: ImageFacts, *, host_os: str, host_arch: str) -> BaseImages:
    """The record for a pair that meets the contract; else a `BaseImageError` naming every problem."""
    build_user = resolve_user(build)
    run_user = resolve_user(run)
    problems = [
        *_build_problems(build, build_user),
        *_run_problems(run, run_user),
        *_pair_problems(build, run, host_os, host_arch),
    ]
    if problems:
        raise BaseImageError(tuple(problems), HINT)
    assert build_user.uid is not None and build_user.gid is not None and build_user.home is not None
    name, version, source = target_distro(build, run)
    target = Target(
        os=run.os,
        arch=run.architecture,
        arch_variant=run.variant,
        distro_name=name,
        distro_version=version,
        id=run.labels.get(TARGET_ID_LABEL, ""),
        distro_source=source,
    )
    return BaseImages(
        build_image=build.reference,
        build_image_id=build.image_id,
        run_image=run.reference,
        run_image_id=run.image_id,
        build_uid=build_user.uid,
        build_gid=build_user.gid,
        build_home=build_user.home,
        run_user=run.user.strip(),
        run_uid=None if run_user.problem else run_user.uid,
        run_gid=None if run_user.problem else run_user.gid,
        target=target,
        rebasable=run.labels.get(REBASABLE_LABEL) == "true",
        warnings=_warnings(build_user, run, run_user),
    )


# --------------------------------------------------------------------------------------------
# Engine side: gathering the facts of an image
# --------------------------------------------------------------------------------------------

ReadMember = Callable[[str], "tuple[tarfile.TarInfo, bytes] | None"]


def check_base_images(build_image: str, run_image: str) -> BaseImages:
    """Check a build/run image pair in the Docker engine; the record, or one error naming every problem."""
    from conformance.engine import ensure_engine

    client = ensure_engine()
    missing = [f"{kind} image {ref}" for kind, ref in (("build", build_image), ("run", run_image)) if not _exists(ref)]
    if missing:
        raise StackError(
            f"not in the Docker engine: {', '.join(missing)}",
            "no registry is reachable from here: `docker load` the image, build it locally, or use"
            " `bpconform stack build <name>`",
        )
    version = client.version()
    return evaluate(
        image_facts(build_image, "build"),
        image_facts(run_image, "run"),
        host_os=str(version.get("Os", "linux")),
        host_arch=str(version.get("Arch", "")),
    )


def _exists(reference: str) -> bool:
    from conformance.engine import image_exists

    return image_exists(reference)


def image_facts(reference: str, kind: Kind) -> ImageFacts:
    """The config of `reference` and the files the rules read, through a never-started container."""
    from conformance.engine import create_container, ensure_engine, remove_container

    attrs = ensure_engine().images.get(reference).attrs
    config = attrs.get("Config") or {}
    env = dict(item.split("=", 1) if "=" in item else (item, "") for item in config.get("Env") or [])
    container = create_container(
        reference, ["true"], kind=f"base-image-check-{kind}", entrypoint=[], network_disabled=True
    )
    try:
        read = _member_reader(container)
        passwd = parse_passwd(_text(read, "/etc/passwd"))
        facts = ImageFacts(
            reference=reference,
            image_id=str(attrs.get("Id", "")),
            os=str(attrs.get("Os") or ""),
            architecture=str(attrs.get("Architecture") or ""),
            variant=str(attrs.get("Variant") or ""),
            user=str(config.get("User") or ""),
            env=env,
            labels=dict(config.get("Labels") or {}),
            passwd=passwd,
            groups=parse_group(_text(read, "/etc/group")),
            os_release=parse_os_release(_text(read, "/etc/os-release") or _text(read, "/usr/lib/os-release")),
        )
        home = resolve_user(facts).home
        if kind == "build" and home:
            found = read(home)
            facts.homes[home] = (
                PathStat(found[0].uid, found[0].gid, found[0].mode, found[0].isdir()) if found is not None else None
            )
        return facts
    finally:
        remove_container(container)


def _text(read: ReadMember, path: str) -> str:
    found = read(path)
    if found is None or not found[0].isfile():
        return ""
    return found[1].decode("utf-8", errors="replace")


def _member_reader(container: object) -> ReadMember:
    """Reads one path of the container's file system through the engine's archive API: the tar
    header (owner, mode, type) and, for a regular file, up to `MAX_FILE_BYTES` of its content.
    A symlink is followed inside the container's tree (relative to the link's directory)."""
    import docker.errors

    def read(path: str) -> tuple[tarfile.TarInfo, bytes] | None:
        current = posixpath.normpath(path)
        for _ in range(MAX_LINK_HOPS):
            try:
                chunks, _stat = container.get_archive(current)  # type: ignore[attr-defined]
            except docker.errors.NotFound:
                return None
            member, data = _first_member(chunks)
            if member is None:
                return None
            if not member.issym():
                return member, data
            target = member.linkname
            current = posixpath.normpath(
                target if target.startswith("/") else posixpath.join(posixpath.dirname(current), target)
            )
        return None

    return read


def _first_member(chunks: Iterator[bytes]) -> tuple[tarfile.TarInfo | None, bytes]:
    """The first entry of a tar stream and its content (regular files only), reading no further
    than needed: a home directory's archive holds the whole tree, only its header matters."""
    stream = _ChunkReader(chunks, limit=MAX_FILE_BYTES + 64 * 1024)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            member = archive.next()
            if member is None:
                return None, b""
            data = b""
            if member.isfile() and member.size <= MAX_FILE_BYTES:
                extracted = archive.extractfile(member)
                data = extracted.read() if extracted is not None else b""
            return member, data
    except tarfile.TarError:
        return None, b""
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


class _ChunkReader(io.RawIOBase):
    """A file object over an iterator of byte chunks, stopping (EOF) after `limit` bytes."""

    def __init__(self, chunks: Iterator[bytes], limit: int) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer and self._left > 0:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer), self._left)
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        self._left -= size
        return size


def as_stack(images: BaseImages) -> Stack:
    """A checked pair as the harness's `Stack`, so every build of a run uses these images.

    The stack's name picks the reference buildpack's runtimes and the snapshot dir: the name of our
    stack with the same distro (`bookworm` for Debian 12), else `<distro>-<version>`, for which no
    runtimes exist (a third-party buildpack brings its own; the reference buildpack then fails
    saying no runtime matches).
    """
    from conformance.stacks import DISTRO_VERSIONS, Stack

    target = images.target
    same_distro = [
        name
        for name, version in DISTRO_VERSIONS.items()
        if target.distro_name == "debian" and target.distro_version == version
    ]
    name = same_distro[0] if same_distro else f"{target.distro_name}-{target.distro_version}"
    run_uid = images.run_uid if images.run_uid is not None else images.build_uid + 1
    run_gid = images.run_gid if images.run_gid is not None else images.build_gid
    return Stack(
        name=name,
        distro_name=target.distro_name,
        distro_version=target.distro_version,
        build_image=images.build_image,
        run_image=images.run_image,
        arch=target.arch,
        build_uid=images.build_uid,
        build_gid=images.build_gid,
        run_uid=run_uid,
        run_gid=run_gid,
    )


def check_image_pair(build_image: str | None, run_image: str | None) -> None:
    """`--build-image` and `--run-image` come as a pair, or not at all (then a stack is used)."""
    if (build_image is None) != (run_image is None):
        given, missing = ("--build-image", "--run-image") if build_image else ("--run-image", "--build-image")
        raise StackError(f"{given} was given without {missing}", "pass both images of the pair, or neither (a stack)")


def stack_for(
    name: str,
    build_image: str | None = None,
    run_image: str | None = None,
    *,
    on_output: Callable[[str], None] | None = None,
) -> Stack:
    """The stack a build or run uses: `--build-image`/`--run-image` (checked against the contract
    up front) when given, else our stack `name` (made if missing)."""
    from conformance.stacks import ensure_stack

    check_image_pair(build_image, run_image)
    if build_image is None or run_image is None:
        return ensure_stack(name, on_output=on_output)
    images = check_base_images(build_image, run_image)
    for warning in images.warnings:
        (on_output or print)(f"warning: {warning}")
    return as_stack(images)
