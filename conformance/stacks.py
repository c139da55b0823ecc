"""The stacks: CNB build and run base images made locally from Debian with `debootstrap`.

No registry is reachable from where the suite runs, so the base images cannot be pulled; they are
made from a Debian mirror instead. `debootstrap --variant=minbase --include=...` builds a root
filesystem in one pass, the rootfs is slimmed and given its users, and `tar | docker import` turns
it into an image whose config (ENV, LABEL) comes from `--change` instructions.

Why the docker CLI rather than the SDK for the import: the rootfs tarball is hundreds of MB and
must be owned by root with numeric ids; a `tar -c | docker import -` pipe streams it without
holding it in memory or writing it to disk, and GNU tar gets ownership, hard links and xattrs
right. The CLI ships with docker.io, which is installed wherever an engine can be started.

Both images meet the CNB base-image contract (buildpacks/spec `platform.md`, "Build Image", "Run
Image", "Target Data"): a non-root `User` given as `uid:gid` (the build image's user owns a writable
home; the run user has a different uid, as the spec advises, so the app cannot rewrite its own
layers), `CNB_USER_ID`/`CNB_GROUP_ID` naming that user, `PATH`, the `io.buildpacks.base.*` labels
(distro name/version as in `/etc/os-release`, target id, maintainer, homepage, description) and,
on the run image, `io.buildpacks.rebasable=true`. `io.buildpacks.stack.id` is not set: stacks were
removed in Platform API 0.12 and this platform speaks 0.12-0.15. The two users share their primary
group (`cnb`, gid 1000), as in Paketo's and Heroku's stacks, so group-readable layer files written
by the build user are readable by the app.

The image names are `<repo>/build:<stack>` and `<repo>/run:<stack>`, `<repo>` being
`$BPCONFORM_STACK_REPO` (default `bpconform`): a developer can make and test a changed recipe under a
private name while everyone else on the same engine keeps using the real tags. The repository is
not part of the recipe hash, so the same recipe under two names has the same hash.

Every image carries `io.bpconform.recipe`, a hash of everything that shapes it (suite, packages,
users, env, labels and `RECIPE_VERSION`), so `ensure_stack` rebuilds an image only when its
recipe changed or it is missing. Stack images are persistent (`engine.labels("stack")`): they are
a cache that `bpconform clean` keeps unless asked to remove everything.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from conformance import host
from conformance.errors import StackError, did_you_mean
from conformance.locks import exclusive_lock
from conformance.paths import cache_dir

# Bump when the way an image is made changes (slimming, user creation, ...) but the recipe data
# does not: it is part of the hash, so existing images are then rebuilt.
RECIPE_VERSION = "2"

MIRROR = "http://deb.debian.org/debian"
VARIANT = "minbase"
PATH_VALUE = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RECIPE_LABEL = "io.bpconform.recipe"
KINDS = ("build", "run")
STACK_REPO_ENV = "BPCONFORM_STACK_REPO"
DEFAULT_STACK_REPO = "bpconform"
MAINTAINER = "buildpack-conformance"
HOMEPAGE = "https://github.com/bpconform/buildpack-conformance"
# A Docker repository path: lowercase components separated by `/`, each alphanumerics joined by
# `.`, `_`, `__` or dashes (the distribution spec's grammar, without a registry host or tag).
_REPO_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO_RE = re.compile(rf"{_REPO_COMPONENT}(?:/{_REPO_COMPONENT})*")

# The build image compiles CPython and sdists, and runs the reference buildpack (Debian's python3).
_BUILD_PACKAGES_COMMON = (
    "gcc",
    "g++",
    "make",
    "libc6-dev",
    "pkg-config",
    "libssl-dev",
    "zlib1g-dev",
    "libffi-dev",
    "libsqlite3-dev",
    "libbz2-dev",
    "liblzma-dev",
    "libreadline-dev",
    "libncurses-dev",
    "uuid-dev",
    "libgdbm-dev",
    "python3",
    "curl",
    "ca-certificates",
    "tar",
    "xz-utils",
    "gzip",
)

# The run image only has what a CPython built in the build image needs at run time.
_RUN_PACKAGES = {
    "bookworm": (
        "ca-certificates",
        "libsqlite3-0",
        "libssl3",
        "libffi8",
        "libbz2-1.0",
        "liblzma5",
        "zlib1g",
        "libreadline8",
        "libncursesw6",
        "libuuid1",
        "libgdbm6",
        # Python 3.11's `nis` extension links them (the build image has them through libc6-dev);
        # found by the suite's ldd check (native_libraries_resolve).
        "libnsl2",
        "libtirpc3",
    ),
    # trixie renamed several libraries for the 64-bit time_t transition (the "t64" suffix).
    "trixie": (
        "ca-certificates",
        "libsqlite3-0",
        "libssl3t64",
        "libffi8",
        "libbz2-1.0",
        "liblzma5",
        "zlib1g",
        "libreadline8t64",
        "libncursesw6",
        "libuuid1",
        "libgdbm6t64",
        "libnsl2",
        "libtirpc3t64",
    ),
}

DISTRO_VERSIONS = {"bookworm": "12", "trixie": "13"}
STACK_NAMES: tuple[str, ...] = tuple(DISTRO_VERSIONS)


@dataclass(frozen=True)
class Stack:
    name: str
    distro_name: str
    distro_version: str
    build_image: str
    run_image: str
    arch: str
    build_uid: int = 1000
    build_gid: int = 1000
    run_uid: int = 1001
    run_gid: int = 1000

    def image(self, kind: str) -> str:
        return self.build_image if kind == "build" else self.run_image


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    group: str
    home: str


@dataclass(frozen=True)
class Recipe:
    """Everything that shapes one image; its hash decides whether an image is stale."""

    stack: str
    kind: str
    suite: str
    image: str
    packages: tuple[str, ...]
    user: User
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def config_user(self) -> str:
        """The image config's `User`: numeric `uid:gid`, so it means the same with or without a
        passwd lookup and can be compared with `CNB_USER_ID`/`CNB_GROUP_ID` as it stands."""
        return f"{self.user.uid}:{self.user.gid}"

    def as_json(self) -> str:
        data = {
            "recipe-version": RECIPE_VERSION,
            "stack": self.stack,
            "kind": self.kind,
            "suite": self.suite,
            "mirror": MIRROR,
            "variant": VARIANT,
            "packages": sorted(set(self.packages)),
            "user": self.user.__dict__,
            "config-user": self.config_user,
            "env": self.env,
            "labels": self.labels,
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def sha256(self) -> str:
        return hashlib.sha256(self.as_json().encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Pure parts: stacks, recipes and their hashes
# --------------------------------------------------------------------------------------------


def host_arch() -> str:
    """The Debian name of this machine's architecture (images are made for the host only)."""
    dpkg = shutil.which("dpkg")
    if dpkg:
        proc = subprocess.run([dpkg, "--print-architecture"], capture_output=True, text=True)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf", "i686": "i386"}.get(machine, machine)


def stack_repo() -> str:
    """The repository prefix of the stack images: `$BPCONFORM_STACK_REPO`, default `bpconform`."""
    repo = os.environ.get(STACK_REPO_ENV) or DEFAULT_STACK_REPO
    if not _REPO_RE.fullmatch(repo):
        raise StackError(
            f"{STACK_REPO_ENV}={repo!r} is not a Docker repository name",
            "use lowercase letters, digits and `.`, `_`, `-` separators, optionally with `/` (e.g. bpconform-dev)",
        )
    return repo


def check_stack_name(name: str) -> None:
    """One of our stacks, or one error with a "did you mean" (shared by every command taking --stack)."""
    if name not in DISTRO_VERSIONS:
        raise StackError(
            f"unknown stack {name!r}{did_you_mean(name, STACK_NAMES, cutoff=0.5)}",
            f"use one of: {', '.join(STACK_NAMES)}",
        )


def get_stack(name: str) -> Stack:
    check_stack_name(name)
    repo = stack_repo()
    return Stack(
        name=name,
        distro_name="debian",
        distro_version=DISTRO_VERSIONS[name],
        build_image=f"{repo}/build:{name}",
        run_image=f"{repo}/run:{name}",
        arch=host_arch(),
    )


def packages_for(name: str, kind: str) -> tuple[str, ...]:
    _check_kind(kind)
    get_stack(name)
    return _BUILD_PACKAGES_COMMON if kind == "build" else _RUN_PACKAGES[name]


def recipe_for(name: str, kind: str, packages: Sequence[str] | None = None) -> Recipe:
    """The recipe of one image; `packages` overrides the package list (for tests and experiments)."""
    _check_kind(kind)
    stack = get_stack(name)
    if kind == "build":
        user = User("cnb", stack.build_uid, stack.build_gid, "cnb", "/home/cnb")
    else:
        user = User("cnb", stack.run_uid, stack.run_gid, "cnb", "/home/cnb")
    env = {"CNB_USER_ID": str(user.uid), "CNB_GROUP_ID": str(user.gid), "PATH": PATH_VALUE}
    labels = {
        "io.buildpacks.base.distro.name": stack.distro_name,
        "io.buildpacks.base.distro.version": stack.distro_version,
        "io.buildpacks.base.id": f"io.bpconform.{name}",
        "io.buildpacks.base.description": (
            f"bpconform {kind} image: Debian {stack.distro_version} ({name}) {VARIANT}, made locally with debootstrap"
        ),
        "io.buildpacks.base.maintainer": MAINTAINER,
        "io.buildpacks.base.homepage": HOMEPAGE,
    }
    if kind == "run":
        # The run image promises ABI compatibility across its versions (platform.md, "Run Image").
        labels["io.buildpacks.rebasable"] = "true"
    return Recipe(
        stack=name,
        kind=kind,
        suite=name,
        image=stack.image(kind),
        packages=tuple(packages) if packages is not None else packages_for(name, kind),
        user=user,
        env=env,
        labels=labels,
    )


def recipe_hash(name: str, kind: str) -> str:
    return recipe_for(name, kind).sha256()


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise StackError(f"unknown image kind {kind!r}", f"use one of: {', '.join(KINDS)}")


def docker_import_changes(recipe: Recipe, engine_labels: dict[str, str]) -> list[str]:
    """The `docker import --change` instructions that give the image its config."""
    changes = [f"ENV {key}={_quote(value)}" for key, value in sorted(recipe.env.items())]
    all_labels = {**recipe.labels, **engine_labels, RECIPE_LABEL: recipe.sha256()}
    changes += [f"LABEL {key}={_quote(value)}" for key, value in sorted(all_labels.items())]
    changes += [f"USER {recipe.config_user}", "WORKDIR /", 'CMD ["/bin/sh"]']
    return changes


def _quote(value: str) -> str:
    """Dockerfile-style double quoting, so values with spaces survive `--change` parsing."""
    return json.dumps(value)


def debootstrap_command(recipe: Recipe, rootfs: Path, debs_cache: Path | None = None) -> list[str]:
    command = ["debootstrap", f"--variant={VARIANT}", f"--include={','.join(sorted(set(recipe.packages)))}"]
    if debs_cache is not None:
        command.append(f"--cache-dir={debs_cache}")
    command += [recipe.suite, str(rootfs), MIRROR]
    script = _debootstrap_script(recipe.suite)
    if script is not None:
        command.append(str(script))
    return command


def _debootstrap_script(suite: str) -> Path | None:
    """An older debootstrap may lack the script for a newer suite; `sid`'s works for it."""
    scripts = Path("/usr/share/debootstrap/scripts")
    if not scripts.is_dir() or (scripts / suite).exists():
        return None
    return scripts / "sid" if (scripts / "sid").exists() else None


# --------------------------------------------------------------------------------------------
# Engine side: is an image current, and making one
# --------------------------------------------------------------------------------------------


def _image_recipe_label(reference: str) -> str | None:
    import docker.errors

    from conformance.engine import ensure_engine

    try:
        image = ensure_engine().images.get(reference)
    except docker.errors.ImageNotFound:
        return None
    return (image.labels or {}).get(RECIPE_LABEL)


def image_is_current(name: str, kind: str) -> bool:
    recipe = recipe_for(name, kind)
    return _image_recipe_label(recipe.image) == recipe.sha256()


def stack_is_current(name: str) -> bool:
    return all(image_is_current(name, kind) for kind in KINDS)


def ensure_stack(name: str, *, force: bool = False, on_output: Callable[[str], None] | None = None) -> Stack:
    """Make the stack's build and run images unless they exist with the current recipe."""
    say = on_output or _print_to_stderr
    stack = get_stack(name)
    started = time.monotonic()
    built = []
    for kind in KINDS:
        recipe = recipe_for(name, kind)
        if not force and _image_recipe_label(recipe.image) == recipe.sha256():
            continue
        with _build_lock(recipe) as waited:
            # Another process may have made the image while we waited for the lock.
            if waited and not force and _image_recipe_label(recipe.image) == recipe.sha256():
                continue
            estimate = "~1 min" if kind == "build" else "~30 s"
            say(f"building {kind} image {recipe.image} (debootstrap, {estimate})...")
            kind_started = time.monotonic()
            build_image(recipe, on_output=say)
            say(f"built {recipe.image} in {time.monotonic() - kind_started:.0f}s")
            built.append(recipe.image)
    if built:
        say(f"stack {name} ready in {time.monotonic() - started:.0f}s")
    else:
        say(f"stack {name} is up to date ({stack.build_image}, {stack.run_image})")
    return stack


def _build_lock(recipe: Recipe) -> AbstractContextManager[bool]:
    """One image build at a time per image across processes (parallel test workers, the CLI);
    yields whether we had to wait, i.e. whether someone else may have built it meanwhile."""
    return exclusive_lock(cache_dir("stacks") / f"{recipe.stack}-{recipe.kind}.lock")


def _print_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def build_image(recipe: Recipe, *, on_output: Callable[[str], None] | None = None) -> str:
    """Make one image from its recipe and tag it; returns the new image id."""
    from conformance.engine import ensure_engine, labels

    say = on_output or _print_to_stderr
    client = ensure_engine()
    _require_root()
    _ensure_debootstrap(say)
    _require_docker_cli()
    previous_id = _image_id(client, recipe.image)
    workdir = Path(tempfile.mkdtemp(prefix=f"{recipe.stack}-{recipe.kind}-", dir=cache_dir("stacks")))
    rootfs = workdir / "rootfs"
    try:
        _debootstrap(recipe, rootfs, say)
        _add_user(rootfs, recipe.user)
        _slim(rootfs)
        image_id = _import(rootfs, recipe, labels("stack"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if previous_id and previous_id != image_id:
        _remove_if_dangling(client, previous_id)
    return image_id


def _require_root() -> None:
    if os.geteuid() != 0:
        raise StackError(
            "making a stack image needs root (debootstrap creates device files and root-owned files)",
            "run `sudo bpconform stack build <name>`, or `make setup` as root",
        )


def _ensure_debootstrap(say: Callable[[str], None]) -> None:
    if shutil.which("debootstrap"):
        return
    if host.can_install_packages():
        say("installing debootstrap with apt...")
        host.apt_install("debootstrap", StackError, "install debootstrap yourself (`apt-get install debootstrap`)")
        if shutil.which("debootstrap"):
            return
    raise StackError(
        "debootstrap is not installed",
        "install it (`sudo apt-get install debootstrap` on Debian/Ubuntu) and retry",
    )


def _require_docker_cli() -> None:
    if not shutil.which("docker"):
        raise StackError(
            "the docker CLI is not installed (stack images are imported with `docker import`)",
            "install docker.io (`sudo apt-get install docker.io`), which ships the CLI",
        )


# debootstrap prints a line per package; these few tell a person waiting where it is.
_DEBOOTSTRAP_MILESTONES = (
    "I: Retrieving Release ",
    "I: Validating Packages",
    "I: Resolving dependencies of included",
    "I: Installing core packages",
    "I: Configuring required packages",
    "I: Installing base system",
    "I: Base system installed",
)


def _debootstrap(recipe: Recipe, rootfs: Path, say: Callable[[str], None]) -> None:
    debs = cache_dir(f"stacks/debs-{recipe.suite}")
    command = debootstrap_command(recipe, rootfs, debs)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        output.append(line.rstrip())
        if line.startswith(_DEBOOTSTRAP_MILESTONES):
            say(f"  {line.rstrip()}")
    if proc.wait() != 0:
        log = rootfs / "debootstrap" / "debootstrap.log"
        log_lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        details = debootstrap_failure_details(output, log_lines)
        raise StackError(
            f"debootstrap of {recipe.suite} for {recipe.image} failed (exit {proc.returncode}):\n{details}",
            f"check that {MIRROR} is reachable and the packages exist in {recipe.suite}; "
            f"the command was: {' '.join(command)}",
        )


def debootstrap_failure_details(output: Sequence[str], log_lines: Sequence[str], limit: int = 25) -> str:
    """The lines that say why debootstrap failed: its `E:` lines first, else the ends of its output and log.

    debootstrap reports a missing package or an unreachable mirror on stdout as `E: ...`, while its
    log mostly holds download and gpgv chatter; a person needs the former.
    """
    errors = [line for line in output if line.startswith("E:")]
    if errors:
        return "\n".join(errors[-limit:])
    return "\n".join([*output[-limit:], *(["-- debootstrap.log --", *log_lines[-limit:]] if log_lines else [])])


def _add_user(rootfs: Path, user: User) -> None:
    """The non-root user the platform runs buildpacks (build) or the app (run) as."""
    for cmd in (
        ["groupadd", "--gid", str(user.gid), user.group],
        [
            "useradd",
            *("--uid", str(user.uid), "--gid", str(user.gid)),
            *("--create-home", "--home-dir", user.home, "--shell", "/bin/bash"),
            user.name,
        ],
    ):
        proc = subprocess.run(["chroot", str(rootfs), *cmd], capture_output=True, text=True)
        if proc.returncode != 0:
            raise StackError(f"`{' '.join(cmd)}` in the new rootfs failed: {proc.stderr.strip()}")


# Paths removed to keep images small; none is needed to build or run Python apps.
_SLIM_GLOBS = (
    "var/lib/apt/lists/*",
    "var/cache/apt/*.bin",
    "var/cache/apt/archives/*.deb",
    "var/cache/debconf/*-old",
    "var/log/*.log",
    "var/log/apt/*",
    "usr/share/man/*",
    "usr/share/info/*",
    "usr/share/locale/*",
    "usr/share/lintian/*",
    "usr/share/doc-base/*",
    "debootstrap",
)


def _slim(rootfs: Path) -> None:
    for pattern in _SLIM_GLOBS:
        for path in rootfs.glob(pattern):
            _remove(path)
    docs = rootfs / "usr/share/doc"
    if docs.is_dir():  # keep licences (copyright files), drop the rest
        for path in docs.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.name != "copyright":
                path.unlink()
    # debootstrap copies the host's resolver and name in; the engine provides both at run time.
    for host_file in ("etc/resolv.conf", "etc/hostname"):
        target = rootfs / host_file
        if target.is_file() and not target.is_symlink():
            target.write_text("")
    # Stop later `apt-get install`s from bringing docs back; harmless if apt is never run.
    dpkg_cfg = rootfs / "etc/dpkg/dpkg.cfg.d"
    dpkg_cfg.mkdir(parents=True, exist_ok=True)
    (dpkg_cfg / "bpconform-slim").write_text(
        "path-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\npath-exclude /usr/share/locale/*\n"
        "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n"
    )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _import(rootfs: Path, recipe: Recipe, engine_labels: dict[str, str]) -> str:
    changes = docker_import_changes(recipe, engine_labels)
    command = ["docker", "import"]
    for change in changes:
        command += ["--change", change]
    command += ["-", recipe.image]
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-c", "."],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        proc = subprocess.run(command, stdin=tar.stdout, capture_output=True, text=True)
    finally:
        assert tar.stdout is not None
        tar.stdout.close()
        tar_err = tar.stderr.read().decode(errors="replace") if tar.stderr else ""
        tar_rc = tar.wait()
    if tar_rc != 0 or proc.returncode != 0:
        raise StackError(
            f"importing {recipe.image} failed (tar exit {tar_rc}, docker import exit {proc.returncode}):\n"
            f"{tar_err[-1500:]}{proc.stderr[-1500:]}",
            "check `docker info` and free disk space, then retry `bpconform stack build`",
        )
    return proc.stdout.strip()


def _image_id(client: object, reference: str) -> str | None:
    import docker.errors

    try:
        return client.images.get(reference).id  # type: ignore[attr-defined]
    except docker.errors.ImageNotFound:
        return None


def _remove_if_dangling(client: object, image_id: str) -> None:
    """The image a rebuild replaced is untagged now; remove it unless something still uses it."""
    import docker.errors

    try:
        image = client.images.get(image_id)  # type: ignore[attr-defined]
        if not image.tags:
            client.images.remove(image_id)  # type: ignore[attr-defined]
    except docker.errors.APIError:
        pass
