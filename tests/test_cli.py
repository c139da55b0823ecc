"""The `bpconform` command itself, without Docker: `--version`, `bpconform docs`, and that every guide a
message points at resolves from the package (a `docs/...` path exists only in a checkout; a user of
the wheel has `bpconform docs TOPIC`). The installed-wheel side is in tests/integration/test_installed_wheel.py.
"""

from __future__ import annotations

import ast
import re
from importlib.metadata import version
from pathlib import Path

import pytest

from conformance import cli, data
from conformance.platform import spec
from conformance.platform.buildpack import SUPPORTED_APIS

PACKAGE = Path(cli.__file__).resolve().parent
# Files another session owns (not edited on this branch): their `docs/...` messages are listed in the
# cli-ux report for the integrator. Each still names a guide that ships, which the test below checks.
DOCS_PATH = re.compile(r"\bdocs/([\w-]+)\.md")
DOCS_COMMAND = re.compile(r"`bpconform docs ([\w-]+)`")


def test_version_names_the_package_and_the_apis(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"bpconform {version('buildpack-conformance')} (buildpack-conformance)",
        f"Platform API {spec.PLATFORM_API} (the embedded platform)",
        f"Buildpack APIs {', '.join(SUPPORTED_APIS)}",
    ]
    assert "0.7" in lines[2] and "0.12" in lines[2]


def test_docs_prints_a_guide_or_its_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["docs", "profiles", "--path"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == data.doc_path("profiles") and path.is_file()
    assert cli.main(["docs", "build"]) == 0
    assert capsys.readouterr().out.startswith("# `bpconform build`")
    assert cli.main(["docs"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == list(data.DOC_TOPICS)


def test_an_unknown_guide_is_a_usage_error_with_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["docs", "profile"]) == 2
    assert "no guide 'profile' (did you mean 'profiles'?)" in capsys.readouterr().err


def test_every_guide_topic_ships_and_every_shipped_guide_is_a_topic() -> None:
    shipped = sorted(path.stem for path in data.data_path("docs").glob("*.md"))
    assert shipped == sorted(data.DOC_TOPICS)
    with pytest.raises(ValueError, match="unknown guide 'nope'"):
        data.doc_reference("nope")


def _strings_outside_docstrings(path: Path) -> list[str]:
    """The string constants of a module that a user can see (messages, help), not its docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {  # a string statement: a module, class, function or attribute docstring
        id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def _shipped_texts() -> dict[str, list[str]]:
    """file -> the texts a user of the installed package reads: messages and help in the modules, and
    the shipped profiles (comments included: a user opens them)."""
    texts = {str(path.relative_to(PACKAGE)): _strings_outside_docstrings(path) for path in PACKAGE.rglob("*.py")}
    texts.update({str(path.relative_to(PACKAGE)): [path.read_text()] for path in (PACKAGE / "profiles").glob("*.toml")})
    return texts


def test_every_guide_a_message_names_resolves_from_the_package() -> None:
    named = {
        (where, topic)
        for where, strings in _shipped_texts().items()
        for text in strings
        for topic in [*DOCS_PATH.findall(text), *DOCS_COMMAND.findall(text)]
    }
    assert any(topic == "profiles" for _, topic in named), "the scan found the profile messages"
    missing = sorted(
        f"{where}: {topic}"
        for where, topic in named
        if topic not in data.DOC_TOPICS or not data.doc_path(topic).is_file()
    )
    assert not missing, f"messages name guides the package does not ship: {missing}"


def test_no_message_names_a_docs_path_that_only_a_checkout_has() -> None:
    bare = sorted(
        f"{where}: {DOCS_PATH.search(text).group(0)}"  # type: ignore[union-attr]
        for where, strings in _shipped_texts().items()
        for text in strings
        if DOCS_PATH.search(text)
    )
    assert not bare, f"name the guide as `bpconform docs TOPIC` (data.doc_reference), not a docs/ path: {bare}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--buildpack", "/nonexistent-bp"], "/nonexistent-bp is not a buildpack directory"),
        (["--buildpack", "reference", "--stack", "bookwrm"], "unknown stack 'bookwrm' (did you mean 'bookworm'?)"),
        (["--buildpack", "reference", "--app", "/nonexistent-app"], "sample app /nonexistent-app is not a directory"),
    ],
)
def test_profile_init_usage_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """As every command's: checked before any build (profile init builds a sample app several times)."""
    assert cli.main(["profile", "init", *argv]) == 2
    assert message in capsys.readouterr().err


def test_profile_init_takes_reference_as_build_and_run_do(tmp_path: Path) -> None:
    args = cli.build_parser().parse_args(["profile", "init", "--buildpack", "reference"])
    cli._check_profile_init_inputs(args)
    assert args.buildpack == data.reference_buildpack()
    existing = tmp_path / "draft.toml"
    existing.write_text("")
    args = cli.build_parser().parse_args(["profile", "init", "--buildpack", "reference", "--output", str(existing)])
    with pytest.raises(cli.UsageError, match=r"draft\.toml exists"):
        cli._check_profile_init_inputs(args)


def test_usage_errors_keep_message_and_hint_and_what_they_are_told_to_keep() -> None:
    from conformance.errors import ConformanceError, EngineError, PlatformError, UsageError, usage_errors

    with pytest.raises(UsageError) as caught, usage_errors():
        raise PlatformError("bad image name", "use lowercase", exit_code=52)
    assert (caught.value.message, caught.value.hint, caught.value.exit_code) == ("bad image name", "use lowercase", 2)
    with pytest.raises(EngineError) as kept, usage_errors(except_for=(EngineError,)):
        raise EngineError("the Docker engine is not reachable", "start dockerd")
    assert kept.value.exit_code == 1, "the engine being gone is not the command line's fault"
    with pytest.raises(ValueError), usage_errors():  # not a ConformanceError: a bug, left alone
        raise ValueError("boom")
    assert issubclass(UsageError, ConformanceError)
