"""project.toml as pack reads it (conformance/project.py) and the app copy it filters, without Docker.

The pattern table is what pack's gitignore library (sabhiram/go-gitignore, pinned by pack's go.mod)
gives for each path: pack tests every walked path on its own (pkg/archive/archive.go:164-190).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conformance.platform.appdir import copy_app
from conformance.project import AppFilter, ProjectError, read_project

EXCLUDE = ("/README.md", "bundled-buildpack", "*.pyc", "!keep.pyc", "docs/*.md", "**/tmp", "a?c")


@pytest.mark.parametrize(
    ("path", "copied"),
    [
        ("README.md", False),  # "/README.md" is anchored at the root
        ("docs/README.md", False),  # "docs/*.md"
        ("sub/README.md", True),
        ("sub/docs/x.md", True),  # "docs/*.md" is anchored too (go-gitignore prepends "/")
        ("bundled-buildpack", False),  # no slash: any level, and everything below
        ("bundled-buildpack/bin/build", False),
        ("x/bundled-buildpack/y", False),
        ("bundled-buildpack-2", True),
        ("m.pyc", False),
        ("keep.pyc", True),  # a later "!" pattern clears the match
        ("a/b/tmp/x", False),
        ("abc", True),  # go-gitignore escapes "?": it is a literal question mark there
        ("a?c", False),
        ("app.py", True),
    ],
)
def test_exclude_patterns_match_as_packs_library(path: str, copied: bool) -> None:
    assert AppFilter(exclude=EXCLUDE)(path) is copied


@pytest.mark.parametrize(
    ("path", "copied"),
    [("app.sh", True), ("sub/app.sh", True), ("lib", False), ("lib/util.sh", True), ("notes.txt", False)],
)
def test_include_patterns(path: str, copied: bool) -> None:
    """`lib/` matches what is below lib, not the directory itself: pack's tar then has lib/util.sh
    without a lib entry, and extracting it makes lib anyway (see the copy test below)."""
    assert AppFilter(include=("app.sh", "lib/"))(path) is copied


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_v02_descriptor(tmp_path: Path) -> None:
    app = write(
        tmp_path,
        {
            "project.toml": """
[_]
schema-version = "0.2"
id = "io.example"
[io.buildpacks]
exclude = ["/README.md"]
[[io.buildpacks.build.env]]
name = "A"
value = "1"
[[io.buildpacks.build.env]]
name = "B"
value = "2"
[[io.buildpacks.group]]
uri = "bps/one"
""",
        },
    )
    (app / "bps" / "one").mkdir(parents=True)
    project = read_project(app)
    assert (project.schema, project.app_filter, project.env) == (
        "0.2",
        AppFilter(exclude=("/README.md",)),
        (("A", "1"), ("B", "2")),
    )
    assert project.buildpack_dirs() == [app / "bps" / "one"]
    assert project.warnings == ()


def test_v02_deprecated_env_key(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"project.toml": '[_]\nschema-version = "0.2"\n[[io.buildpacks.env.build]]\nname = "OLD"\nvalue = "v"\n'},
    )
    assert read_project(tmp_path).env == (("OLD", "v"),)


V01 = '[project]\nid = "x"\n[build]\ninclude = ["app.sh"]\n[[build.env]]\nname = "A"\nvalue = "v1"\n'


def test_v01_descriptor_is_the_default_schema_with_packs_warning(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"project.toml": V01},
    )
    project = read_project(tmp_path)
    assert (project.schema, project.app_filter.include, project.env) == ("0.1", ("app.sh",), (("A", "v1"),))
    assert project.warnings == ("No schema version declared in project.toml, defaulting to schema version 0.1",)


def test_no_project_toml_is_no_project(tmp_path: Path) -> None:
    project = read_project(tmp_path)
    assert project.path is None and not project.app_filter.active and project.env == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[_]\nschema-version = "0.3"\n', "schema version '0.3' is not supported"),
        (
            '[_]\nschema-version = "0.2"\n[io.buildpacks]\ninclude = ["a"]\nexclude = ["b"]\n',
            "cannot have both include",
        ),
        ('[build]\nexclude = "README.md"\n', "build.exclude must be an array of strings"),
        ('[_]\nschema-version = "0.2"\n[[io.buildpacks.group]]\nversion = "1"\n', "must have an id or uri"),
        ('[_]\nschema-version = "0.2"\n[[io.buildpacks.build.env]]\nvalue = "v"\n', "needs a string name and value"),
        ("[build\n", "malformed project descriptor"),
    ],
)
def test_bad_descriptors_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, {"project.toml": text})
    with pytest.raises(Exception, match=message) as info:
        read_project(tmp_path)
    assert str(tmp_path / "project.toml") in str(info.value) or "project.toml" in str(info.value)


@pytest.mark.parametrize(
    ("entry", "message"),
    [('id = "heroku/python"\nversion = "1"', "has no builder"), ('uri = "docker://x/y"', "not a local directory")],
)
def test_group_entries_this_platform_cannot_use(tmp_path: Path, entry: str, message: str) -> None:
    write(tmp_path, {"project.toml": f'[_]\nschema-version = "0.2"\n[[io.buildpacks.group]]\n{entry}\n'})
    with pytest.raises(ProjectError, match=message):
        read_project(tmp_path).buildpack_dirs()


def test_the_copy_keeps_only_what_the_filter_keeps(tmp_path: Path) -> None:
    source = write(
        tmp_path / "src",
        {"app.sh": "a", "lib/util.sh": "u", "notes.txt": "n", "deep/er/keep/app.sh": "k", "project.toml": ""},
    )
    os.mkfifo(source / "excluded.fifo")  # never checked: the filter drops it first
    (source / "lib").chmod(0o750)
    dest = tmp_path / "copy" / "workspace"
    copy_app(source, dest, AppFilter(include=("app.sh", "lib/")))
    copied = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    assert copied == ["app.sh", "deep", "deep/er", "deep/er/keep", "deep/er/keep/app.sh", "lib", "lib/util.sh"]
    assert (dest / "lib").stat().st_mode & 0o777 == 0o755  # made for its file, as a tar extraction does
    assert (source / "notes.txt").exists() and (source / "lib").stat().st_mode & 0o777 == 0o750  # source untouched
