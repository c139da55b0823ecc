"""Unit tests of `conformance.base_images`: the base-image contract's rules on plain image facts."""

from __future__ import annotations

import dataclasses

import pytest

from conformance import base_images as bi
from conformance.base_images import BaseImageError, ImageFacts, PasswdEntry, PathStat
from conformance.errors import StackError

PASSWD = (PasswdEntry("root", 0, 0, "/root"), PasswdEntry("cnb", 1000, 1000, "/home/cnb"))
DISTRO = {bi.DISTRO_NAME_LABEL: "debian", bi.DISTRO_VERSION_LABEL: "12"}
HOST = {"host_os": "linux", "host_arch": "amd64"}


def build_facts(**changes: object) -> ImageFacts:
    facts = ImageFacts(
        reference="example/build:1",
        image_id="sha256:b",
        os="linux",
        architecture="amd64",
        variant="",
        user="1000:1000",
        env={"CNB_USER_ID": "1000", "CNB_GROUP_ID": "1000", "PATH": "/usr/bin:/bin"},
        labels=dict(DISTRO),
        passwd=PASSWD,
        groups={"root": 0, "cnb": 1000},
        os_release={"ID": "debian", "VERSION_ID": "12"},
        homes={"/home/cnb": PathStat(1000, 1000, 0o755, True)},
    )
    return dataclasses.replace(facts, **changes)  # type: ignore[arg-type]


def run_facts(**changes: object) -> ImageFacts:
    facts = ImageFacts(
        reference="example/run:1",
        image_id="sha256:r",
        os="linux",
        architecture="amd64",
        variant="",
        user="1001:1000",
        env={"PATH": "/usr/bin:/bin"},
        labels={**DISTRO, bi.REBASABLE_LABEL: "true", bi.TARGET_ID_LABEL: "io.example.run"},
        passwd=(*PASSWD, PasswdEntry("app", 1001, 1000, "/home/app")),
        groups={"cnb": 1000},
        os_release={"ID": "debian", "VERSION_ID": "12"},
    )
    return dataclasses.replace(facts, **changes)  # type: ignore[arg-type]


def problems(build: ImageFacts, run: ImageFacts, **host: str) -> list[bi.Problem]:
    with pytest.raises(BaseImageError) as info:
        bi.evaluate(build, run, **{**HOST, **host})
    assert isinstance(info.value, StackError)  # the CLI and the plugin print it as a two-line error
    for problem in info.value.problems:
        assert problem.line() in info.value.message
    return list(info.value.problems)


def rules(found: list[bi.Problem]) -> list[str]:
    return [problem.rule for problem in found]


def test_a_conforming_pair_gives_the_plain_record() -> None:
    record = bi.evaluate(build_facts(), run_facts(), **HOST)
    assert (record.build_image, record.run_image) == ("example/build:1", "example/run:1")
    assert (record.build_uid, record.build_gid, record.build_home) == (1000, 1000, "/home/cnb")
    assert (record.run_user, record.run_uid, record.run_gid) == ("1001:1000", 1001, 1000)
    assert record.target == bi.Target("linux", "amd64", "", "debian", "12", "io.example.run", "labels")
    assert record.rebasable and record.warnings == ()


def test_a_build_image_without_user_and_cnb_ids_names_every_problem_at_once() -> None:
    env = {"PATH": "/bin"}
    found = problems(build_facts(user="", env=env), run_facts(env={}))
    assert rules(found) == [
        "`User` MUST be a non-root user",
        "`CNB_USER_ID` MUST be set",
        "`CNB_GROUP_ID` MUST be set",
        "`PATH` MUST be set (it may be empty)",
    ]
    assert found[0].image == "build image example/build:1" and found[0].actual == "no `User` (root)"
    assert found[-1].image == "run image example/run:1"


@pytest.mark.parametrize("user", ["root", "0", "0:0", "root:cnb", "0:1000"])
def test_a_root_user_is_refused_however_it_is_spelled(user: str) -> None:
    found = problems(build_facts(user=user, env={"CNB_USER_ID": "0", "CNB_GROUP_ID": "0", "PATH": ""}), run_facts())
    assert "`User` MUST be a non-root user" in rules(found)


def test_a_user_name_is_resolved_in_the_images_passwd_and_group() -> None:
    record = bi.evaluate(build_facts(user="cnb"), run_facts(user="app"), **HOST)
    assert (record.build_uid, record.build_gid) == (1000, 1000)
    assert (record.run_user, record.run_uid, record.run_gid) == ("app", 1001, 1000)
    record = bi.evaluate(build_facts(user="cnb:cnb"), run_facts(), **HOST)
    assert record.build_gid == 1000


def test_cnb_ids_must_be_the_users_uid_and_primary_gid() -> None:
    env = {"CNB_USER_ID": "1001", "CNB_GROUP_ID": "abc", "PATH": "/bin"}
    found = problems(build_facts(user="cnb", env=env), run_facts())
    assert [(p.rule, p.expected, p.actual) for p in found] == [
        ("`CNB_USER_ID` MUST be the uid of `User` 'cnb'", "1000", "1001"),
        ("`CNB_GROUP_ID` MUST be a primary gid", "a decimal number", "'abc'"),
    ]


def test_an_unknown_user_or_group_name_is_a_problem_of_that_image() -> None:
    found = problems(build_facts(user="nobody-here"), run_facts(user="ghost"))
    assert [p.image.split()[0] for p in found] == ["build", "run"]
    assert "'nobody-here' is not in the image's /etc/passwd" in found[0].actual
    assert "'ghost'" in found[1].actual
    found = problems(build_facts(user="cnb:nogroup"), run_facts())
    assert "group 'nogroup' is not in /etc/group" in found[0].actual


def test_the_build_users_home_must_exist_and_be_writable() -> None:
    assert "`User` MUST have a writable home directory" in rules(problems(build_facts(homes={}), run_facts()))
    not_writable = {"/home/cnb": PathStat(0, 0, 0o755, True)}
    found = problems(build_facts(homes=not_writable), run_facts())
    assert found[0].actual == "owned by 0:0, mode 0755"
    group_writable = {"/home/cnb": PathStat(0, 1000, 0o775, True)}
    assert bi.evaluate(build_facts(homes=group_writable), run_facts(), **HOST).build_home == "/home/cnb"
    numeric_without_passwd = build_facts(
        user="4242:4242", env={"CNB_USER_ID": "4242", "CNB_GROUP_ID": "4242", "PATH": ""}
    )
    assert problems(numeric_without_passwd, run_facts())[0].actual == "no passwd entry"


def test_os_arch_and_variant_must_match_each_other_and_the_engine() -> None:
    found = problems(build_facts(architecture="arm64", variant="v8"), run_facts())
    assert rules(found) == [
        "`os`, `architecture` and `variant` MUST be the same",
        "the platform runs containers on this engine, without emulation",
    ]
    assert (found[0].expected, found[0].actual) == ("linux/arm64/v8", "linux/amd64")
    found = problems(build_facts(), run_facts(), host_arch="arm64")
    assert [p.image for p in found] == ["build image example/build:1", "run image example/run:1"]
    assert rules(problems(build_facts(os=""), run_facts()))[0] == "`os` and `architecture` MUST be set"


def test_the_distro_must_match_from_labels_or_os_release() -> None:
    found = problems(build_facts(), run_facts(labels={bi.DISTRO_NAME_LABEL: "debian", bi.DISTRO_VERSION_LABEL: "13"}))
    assert (found[0].expected, found[0].actual) == ("debian 12 (build, from labels)", "debian 13 (run, from labels)")
    unlabelled = run_facts(labels={}, os_release={"ID": "ubuntu", "VERSION_ID": "24.04"})
    assert problems(build_facts(), unlabelled)[0].actual == "ubuntu 24.04 (run, from os-release)"


def test_without_run_labels_the_target_comes_from_os_release_like_the_lifecycle() -> None:
    record = bi.evaluate(build_facts(), run_facts(labels={}), **HOST)
    assert (record.target.distro_name, record.target.distro_version, record.target.distro_source) == (
        "debian",
        "12",
        "os-release",
    )
    # The lifecycle reads the os-release of the build image it runs in, never the run image's files.
    distroless = bi.evaluate(build_facts(), run_facts(labels={}, os_release={}), **HOST)
    assert (distroless.target.distro_version, distroless.target.distro_source) == ("12", "os-release")
    labelled_build = build_facts(os_release={"ID": "debian", "VERSION_ID": "12.9"})
    assert bi.evaluate(labelled_build, run_facts(labels={}), **HOST).target.distro_version == "12.9"
    bare = bi.evaluate(build_facts(labels={}, os_release={}), run_facts(labels={}, os_release={}), **HOST)
    assert (bare.target.distro_name, bare.target.distro_source) == ("", "none")


def test_target_id_and_stack_id_rules() -> None:
    found = problems(build_facts(), run_facts(labels={**DISTRO, bi.TARGET_ID_LABEL: "bad id!"}))
    assert found[0].actual == "'bad id!'"
    stack_a, stack_b = {bi.STACK_ID_LABEL: "io.a"}, {bi.STACK_ID_LABEL: "io.b"}
    found = problems(build_facts(labels={**DISTRO, **stack_a}), run_facts(labels={**DISTRO, **stack_b}))
    assert (found[0].expected, found[0].actual, found[0].source) == ("io.a", "io.b", "Platform API < 0.12")
    assert bi.evaluate(build_facts(labels={**DISTRO, **stack_a}), run_facts(), **HOST)  # one side only: fine


def test_should_rules_are_warnings_in_the_record_not_errors() -> None:
    record = bi.evaluate(build_facts(), run_facts(user="", labels={}), **HOST)
    assert record.run_user == "" and record.run_uid == 0 and not record.rebasable
    assert [w.split(": ", 1)[1][:20] for w in record.warnings] == [
        "no `User`: apps woul",
        "`io.buildpacks.rebas",
        "no `io.buildpacks.ba",
    ]
    same_uid = bi.evaluate(build_facts(), run_facts(user="1000:1000"), **HOST)
    assert "has the build user's uid 1000" in same_uid.warnings[0]


def test_parsers_skip_malformed_lines_and_unquote_os_release() -> None:
    assert bi.parse_passwd("root:x:0:0:root:/root:/bin/sh\nbroken\nx:x:a:1:::\n") == (
        PasswdEntry("root", 0, 0, "/root"),
    )
    assert bi.parse_group("cnb:x:1000:\nbad:x:\n") == {"cnb": 1000}
    release = bi.parse_os_release('# c\nID=debian\nVERSION_ID="13"\nPRETTY_NAME="Debian GNU/Linux 13 (trixie)"\n')
    assert (release["ID"], release["VERSION_ID"]) == ("debian", "13")


def test_ids_are_plain_decimals_not_any_unicode_digit() -> None:
    env = {"CNB_USER_ID": "1000", "CNB_GROUP_ID": "²", "PATH": ""}
    found = problems(build_facts(env=env), run_facts(user="²"))
    assert [(p.rule, p.actual) for p in found] == [
        ("`CNB_GROUP_ID` MUST be a primary gid", "'²'"),
        ("`User` must exist for the app image to start", "user '²' is not in the image's /etc/passwd"),
    ]
