"""`check_base_images` on real images in the engine: tiny images imported from a tar made here
(no binaries: they are never started), and the stacks bpconform makes."""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Callable, Iterator

import pytest

from conformance import base_images as bi
from conformance import engine, stacks
from conformance.errors import StackError

pytestmark = pytest.mark.docker

PASSWD = "root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000::/home/cnb:/bin/sh\napp:x:1001:1000::/home/app:/bin/sh\n"
GROUP = "root:x:0:\ncnb:x:1000:\n"
OS_RELEASE = 'PRETTY_NAME="Tiny 7"\nID=tiny\nVERSION_ID="7"\n'


def rootfs_tar(*, home_uid: int = 1000, home_mode: int = 0o755, os_release_link: bool = True) -> bytes:
    """/etc/passwd, /etc/group, /etc/os-release (a relative link to /usr/lib/os-release, as on Debian)
    and /home/cnb, nothing else."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:

        def add_dir(name: str, uid: int = 0, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, uid
            archive.addfile(info)

        def add_file(name: str, text: str) -> None:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))

        for directory in ("etc", "usr", "usr/lib", "home"):
            add_dir(directory)
        add_dir("home/cnb", home_uid, home_mode)
        add_file("etc/passwd", PASSWD)
        add_file("etc/group", GROUP)
        add_file("usr/lib/os-release", OS_RELEASE)
        if os_release_link:
            link = tarfile.TarInfo("etc/os-release")
            link.type, link.linkname = tarfile.SYMTYPE, "../usr/lib/os-release"
            archive.addfile(link)
    return buffer.getvalue()


@pytest.fixture
def make_image() -> Iterator[Callable[..., str]]:
    """`make_image(name, changes, **rootfs)` -> a tag of a tiny imported image; all removed afterwards."""
    client = engine.ensure_engine()
    made: list[str] = []

    def make(name: str, changes: list[str], **rootfs: object) -> str:
        tag = f"bpconform-base-images-it/{name}:{engine.SESSION_ID}"
        marks = [f"LABEL {key}={value}" for key, value in engine.labels("selftest").items()]
        client.api.import_image_from_data(
            rootfs_tar(**rootfs),  # type: ignore[arg-type]
            repository=tag.split(":")[0],
            tag=tag.split(":")[1],
            changes=[*changes, *marks],
        )
        made.append(tag)
        return tag

    yield make
    for tag in made:
        with contextlib.suppress(Exception):  # already gone
            client.images.remove(tag, force=True)
    assert not [tag for tag in made if engine.image_exists(tag)]


GOOD_BUILD = ["USER 1000:1000", "ENV CNB_USER_ID=1000", "ENV CNB_GROUP_ID=1000", "ENV PATH=/usr/bin:/bin"]
GOOD_RUN = ["USER app", "ENV PATH=/usr/bin:/bin", "LABEL io.buildpacks.rebasable=true"]


def test_a_tiny_conforming_pair_reads_users_home_and_os_release_from_the_images(make_image) -> None:
    build = make_image("good-build", GOOD_BUILD)
    run = make_image("good-run", GOOD_RUN)
    record = bi.check_base_images(build, run)
    assert (record.build_uid, record.build_gid, record.build_home) == (1000, 1000, "/home/cnb")
    assert (record.run_user, record.run_uid, record.run_gid) == ("app", 1001, 1000)
    # no distro labels: the build image's /etc/os-release, reached through its relative symlink
    assert (record.target.distro_name, record.target.distro_version, record.target.distro_source) == (
        "tiny",
        "7",
        "os-release",
    )
    assert record.target.os == "linux" and record.target.arch == engine.ensure_engine().version()["Arch"]
    assert record.rebasable
    assert any("io.buildpacks.base.distro.name" in warning for warning in record.warnings)
    assert not engine.ensure_engine().containers.list(
        all=True, filters={"label": "io.bpconform.kind=base-image-check-build"}
    )


def test_a_root_build_image_with_a_read_only_home_names_every_problem(make_image) -> None:
    build = make_image("bad-build", ["USER cnb", "ENV CNB_USER_ID=1001"], home_uid=0, home_mode=0o755)
    run = make_image("bad-run", ["USER ghost", "LABEL io.buildpacks.base.distro.name=other"])
    with pytest.raises(bi.BaseImageError) as info:
        bi.check_base_images(build, run)
    found = [(p.image.split()[0], p.rule) for p in info.value.problems]
    assert found == [
        ("build", "`CNB_USER_ID` MUST be the uid of `User` 'cnb'"),
        ("build", "`CNB_GROUP_ID` MUST be set"),
        ("build", "`User` MUST have a writable home directory"),
        ("build", "`PATH` MUST be set (it may be empty)"),
        ("run", "`PATH` MUST be set (it may be empty)"),
        ("run", "`User` must exist for the app image to start"),
        ("build", "the distro (name and version) MUST be the same"),
    ]
    message = str(info.value)
    assert "owned by 0:0, mode 0755" in message and "tiny 7 (build, from os-release)" in message
    assert "other  (run, from labels)" in message


def test_a_missing_image_is_a_stack_error_naming_it(make_image) -> None:
    build = make_image("only-build", GOOD_BUILD)
    with pytest.raises(StackError) as info:
        bi.check_base_images(build, "bpconform-base-images-it/not-there:1")
    assert "run image bpconform-base-images-it/not-there:1" in info.value.message
    assert "docker load" in info.value.hint


@pytest.mark.parametrize("name", [pytest.param("bookworm"), pytest.param("trixie", marks=pytest.mark.slow)])
def test_the_stacks_meet_the_contract(name: str) -> None:
    stack = stacks.ensure_stack(name, on_output=lambda line: None)
    record = bi.check_base_images(stack.build_image, stack.run_image)
    assert (record.build_uid, record.build_gid) == (stack.build_uid, stack.build_gid)
    assert (record.run_user, record.run_uid, record.run_gid) == (
        f"{stack.run_uid}:{stack.run_gid}",
        stack.run_uid,
        stack.run_gid,
    )
    assert record.target == bi.Target(
        "linux", stack.arch, "", stack.distro_name, stack.distro_version, f"io.bpconform.{name}", "labels"
    )
    assert record.rebasable and record.warnings == ()
