"""Unit tests of the pure parts of `conformance.stacks`: stacks, recipes, hashes, commands."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from conformance import stacks
from conformance.errors import StackError


@pytest.fixture(autouse=True)
def default_stack_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests pin the default image names, whatever prefix the developer's shell sets."""
    monkeypatch.delenv(stacks.STACK_REPO_ENV, raising=False)


def test_known_stacks_map_to_debian_versions_and_image_names() -> None:
    assert stacks.STACK_NAMES == ("bookworm", "trixie")
    bookworm = stacks.get_stack("bookworm")
    trixie = stacks.get_stack("trixie")
    assert (bookworm.distro_name, bookworm.distro_version) == ("debian", "12")
    assert (trixie.distro_name, trixie.distro_version) == ("debian", "13")
    assert bookworm.build_image == "bpconform/build:bookworm"
    assert trixie.run_image == "bpconform/run:trixie"
    assert (bookworm.build_uid, bookworm.build_gid, bookworm.run_uid, bookworm.run_gid) == (1000, 1000, 1001, 1000)
    assert bookworm.arch and bookworm.arch != "x86_64"  # a Debian architecture name, not uname's


def test_stack_repo_prefix_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(stacks.STACK_REPO_ENV, "bpconform-dev/team")
    trixie = stacks.get_stack("trixie")
    assert (trixie.build_image, trixie.run_image) == (
        "bpconform-dev/team/build:trixie",
        "bpconform-dev/team/run:trixie",
    )
    assert stacks.recipe_for("trixie", "run").image == "bpconform-dev/team/run:trixie"
    monkeypatch.setenv(stacks.STACK_REPO_ENV, "")
    assert stacks.get_stack("trixie").build_image == "bpconform/build:trixie"


def test_the_repo_prefix_is_not_part_of_the_recipe_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    default = stacks.recipe_hash("bookworm", "build")
    monkeypatch.setenv(stacks.STACK_REPO_ENV, "somewhere-else")
    assert stacks.recipe_hash("bookworm", "build") == default


@pytest.mark.parametrize("repo", ["Upper", "with space", "a//b", "-lead", "tag:1", "a/../b", "x\n"])
def test_a_bad_repo_prefix_is_a_stack_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch, repo: str) -> None:
    monkeypatch.setenv(stacks.STACK_REPO_ENV, repo)
    with pytest.raises(StackError) as info:
        stacks.get_stack("bookworm")
    assert stacks.STACK_REPO_ENV in info.value.message and "lowercase" in info.value.hint


def test_unknown_stack_is_a_stack_error_listing_the_known_ones() -> None:
    with pytest.raises(StackError) as info:
        stacks.get_stack("jammy")
    assert "jammy" in info.value.message
    assert "bookworm" in info.value.hint and "trixie" in info.value.hint


def test_unknown_kind_is_a_stack_error() -> None:
    with pytest.raises(StackError):
        stacks.recipe_hash("bookworm", "launch")


def test_recipe_hash_is_stable_and_looks_like_sha256() -> None:
    first = stacks.recipe_hash("bookworm", "build")
    assert first == stacks.recipe_hash("bookworm", "build")
    assert len(first) == 64 and int(first, 16) >= 0


def test_recipe_hash_differs_between_kinds_and_stacks() -> None:
    hashes = {stacks.recipe_hash(name, kind) for name in stacks.STACK_NAMES for kind in stacks.KINDS}
    assert len(hashes) == 4


def test_recipe_hash_changes_when_packages_change() -> None:
    base = stacks.recipe_for("bookworm", "run")
    more = stacks.recipe_for("bookworm", "run", packages=[*base.packages, "libexpat1"])
    fewer = stacks.recipe_for("bookworm", "run", packages=base.packages[1:])
    assert len({base.sha256(), more.sha256(), fewer.sha256()}) == 3


def test_recipe_hash_ignores_package_order_and_duplicates() -> None:
    base = stacks.recipe_for("bookworm", "run")
    shuffled = stacks.recipe_for("bookworm", "run", packages=[*reversed(base.packages), base.packages[0]])
    assert shuffled.sha256() == base.sha256()


def test_recipe_hash_changes_with_user_env_and_recipe_version(monkeypatch: pytest.MonkeyPatch) -> None:
    base = stacks.recipe_for("bookworm", "build")
    other_user = dataclasses.replace(base, user=dataclasses.replace(base.user, uid=2000))
    other_env = dataclasses.replace(base, env={**base.env, "LANG": "C.UTF-8"})
    assert other_user.sha256() != base.sha256()
    assert other_env.sha256() != base.sha256()
    before = base.sha256()
    monkeypatch.setattr(stacks, "RECIPE_VERSION", "test-bump")
    assert base.sha256() != before


def test_build_and_run_recipes_have_the_shared_users_and_env() -> None:
    build = stacks.recipe_for("bookworm", "build")
    run = stacks.recipe_for("bookworm", "run")
    assert (build.user.uid, build.user.gid) == (1000, 1000)
    assert (run.user.uid, run.user.gid) == (1001, 1000)
    assert build.env["CNB_USER_ID"] == "1000" and run.env["CNB_USER_ID"] == "1001"
    assert build.env["CNB_GROUP_ID"] == run.env["CNB_GROUP_ID"] == "1000"
    assert build.env["PATH"] == run.env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert (build.config_user, run.config_user) == ("1000:1000", "1001:1000")


def test_images_get_a_numeric_non_root_user_matching_cnb_user_id() -> None:
    for kind in stacks.KINDS:
        recipe = stacks.recipe_for("bookworm", kind)
        changes = stacks.docker_import_changes(recipe, {})
        users = [change for change in changes if change.startswith("USER ")]
        assert users == [f"USER {recipe.env['CNB_USER_ID']}:{recipe.env['CNB_GROUP_ID']}"]
        assert not users[0].startswith("USER 0")


def test_only_the_run_image_is_rebasable_and_no_stack_id_is_set() -> None:
    build = stacks.recipe_for("trixie", "build").labels
    run = stacks.recipe_for("trixie", "run").labels
    assert run["io.buildpacks.rebasable"] == "true"
    assert "io.buildpacks.rebasable" not in build
    for labels in (build, run):
        assert labels["io.buildpacks.base.maintainer"] and labels["io.buildpacks.base.homepage"].startswith("https://")
        assert "io.buildpacks.stack.id" not in labels


def test_the_config_user_is_part_of_the_recipe_hash() -> None:
    base = stacks.recipe_for("bookworm", "run")
    assert '"config-user":"1001:1000"' in base.as_json()


def test_build_image_has_compilers_and_python_run_image_has_neither() -> None:
    for name in stacks.STACK_NAMES:
        build = set(stacks.packages_for(name, "build"))
        run = set(stacks.packages_for(name, "run"))
        assert {"gcc", "make", "libc6-dev", "python3", "libssl-dev", "curl", "xz-utils"} <= build
        assert not {"gcc", "python3", "make"} & run
        assert "ca-certificates" in run


def test_trixie_run_image_uses_the_t64_library_names() -> None:
    run = set(stacks.packages_for("trixie", "run"))
    assert {"libssl3t64", "libreadline8t64", "libgdbm6t64"} <= run
    assert not {"libssl3", "libreadline8", "libgdbm6"} & run
    assert {"libssl3", "libreadline8", "libgdbm6"} <= set(stacks.packages_for("bookworm", "run"))


def test_import_changes_carry_env_base_labels_engine_labels_and_recipe() -> None:
    recipe = stacks.recipe_for("trixie", "run")
    changes = stacks.docker_import_changes(recipe, {"io.bpconform.kind": "stack"})
    assert 'ENV CNB_USER_ID="1001"' in changes
    assert 'LABEL io.buildpacks.base.distro.version="13"' in changes
    assert 'LABEL io.buildpacks.base.id="io.bpconform.trixie"' in changes
    assert 'LABEL io.bpconform.kind="stack"' in changes
    assert f'LABEL io.bpconform.recipe="{recipe.sha256()}"' in changes
    assert not any("io.buildpacks.stack.id" in change for change in changes)
    description = next(c for c in changes if c.startswith("LABEL io.buildpacks.base.description="))
    assert description.endswith('"')  # quoted: the description has spaces


def test_debootstrap_command_is_one_minbase_pass_with_all_packages(tmp_path: Path) -> None:
    recipe = stacks.recipe_for("bookworm", "build")
    command = stacks.debootstrap_command(recipe, tmp_path / "rootfs", tmp_path / "debs")
    assert command[:2] == ["debootstrap", "--variant=minbase"]
    include = next(arg for arg in command if arg.startswith("--include="))
    assert set(include.removeprefix("--include=").split(",")) == set(recipe.packages)
    assert f"--cache-dir={tmp_path / 'debs'}" in command
    positional = [arg for arg in command[1:] if not arg.startswith("--")]
    assert positional[:3] == ["bookworm", str(tmp_path / "rootfs"), "http://deb.debian.org/debian"]


def test_missing_suite_script_falls_back_to_sid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "sid").write_text("")
    real_path = stacks.Path
    monkeypatch.setattr(stacks, "Path", lambda p: scripts if p == "/usr/share/debootstrap/scripts" else real_path(p))
    assert stacks._debootstrap_script("trixie") == scripts / "sid"
    (scripts / "trixie").write_text("")
    assert stacks._debootstrap_script("trixie") is None


class FakeImages:
    """Stands in for the engine: which recipe label each image has, and which images got built."""

    def __init__(self, current: dict[str, str | None]) -> None:
        self.current = current
        self.built: list[str] = []

    def label(self, reference: str) -> str | None:
        return self.current.get(reference)

    def build(self, recipe: stacks.Recipe, *, on_output: object = None) -> str:
        self.built.append(recipe.image)
        self.current[recipe.image] = recipe.sha256()
        return "sha256:new"


@pytest.fixture
def fake_images(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeImages:
    monkeypatch.setenv("BPCONFORM_CACHE", str(tmp_path))
    fake = FakeImages({})
    monkeypatch.setattr(stacks, "_image_recipe_label", fake.label)
    monkeypatch.setattr(stacks, "build_image", fake.build)
    return fake


def test_ensure_stack_builds_only_missing_or_stale_images(fake_images: FakeImages) -> None:
    fake_images.current["bpconform/build:bookworm"] = stacks.recipe_hash("bookworm", "build")
    fake_images.current["bpconform/run:bookworm"] = "stale-recipe"
    lines: list[str] = []
    stack = stacks.ensure_stack("bookworm", on_output=lines.append)
    assert stack == stacks.get_stack("bookworm")
    assert fake_images.built == ["bpconform/run:bookworm"]
    assert any(line.startswith("building run image bpconform/run:bookworm") for line in lines)
    assert any("ready in" in line for line in lines)
    assert stacks.stack_is_current("bookworm")


def test_ensure_stack_is_a_no_op_when_current_and_force_rebuilds(fake_images: FakeImages) -> None:
    stacks.ensure_stack("trixie", on_output=lambda line: None)
    assert fake_images.built == ["bpconform/build:trixie", "bpconform/run:trixie"]
    lines: list[str] = []
    stacks.ensure_stack("trixie", on_output=lines.append)
    assert len(fake_images.built) == 2
    assert lines and "up to date" in lines[-1]
    stacks.ensure_stack("trixie", force=True, on_output=lambda line: None)
    assert len(fake_images.built) == 4


def test_stack_is_current_needs_both_images(fake_images: FakeImages) -> None:
    fake_images.current["bpconform/build:bookworm"] = stacks.recipe_hash("bookworm", "build")
    assert not stacks.stack_is_current("bookworm")


def test_failure_details_prefer_debootstrap_error_lines() -> None:
    output = ["I: Retrieving Release", "E: Couldn't find these debs: nope", "I: unrelated"]
    assert stacks.debootstrap_failure_details(output, ["gpgv chatter"]) == "E: Couldn't find these debs: nope"
    details = stacks.debootstrap_failure_details(["W: odd"], ["last log line"])
    assert "W: odd" in details and "last log line" in details


def test_building_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stacks.os, "geteuid", lambda: 1000)
    with pytest.raises(StackError) as info:
        stacks._require_root()
    assert "sudo" in info.value.hint


def test_missing_debootstrap_without_root_is_a_stack_error_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stacks.shutil, "which", lambda name: None)
    monkeypatch.setattr(stacks.os, "geteuid", lambda: 1000)
    with pytest.raises(StackError) as info:
        stacks._ensure_debootstrap(lambda line: None)
    assert "apt-get install debootstrap" in info.value.hint
