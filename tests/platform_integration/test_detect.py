"""Detect: bin/detect's contract (argv, env, cwd, user, exit codes) and build plan resolution."""

from __future__ import annotations

import pytest

from conformance.errors import PlatformError
from conformance.tomlcompat import tomllib  # tomllib on 3.11+, tomli before

from .conftest import records

pytestmark = pytest.mark.docker

SHOW_PLAN = 'show "$3"\n'


def _plan(output: str, short: str) -> dict:
    """The buildpack plan a fixture received at build, as it recorded it with `show "$3"`."""
    found = records(output, short)
    lines = next((values for key, values in found.items() if key.startswith("file:")), [])
    assert found.get(next(k for k in found if k.startswith("exists:")))[0] == "file", found
    return tomllib.loads("\n".join(lines))


def test_detect_runs_as_build_user_in_app_dir_with_cnb_inputs(builder, app) -> None:
    source = app({"layers.detect.sh": "record_detect\n", "layers.build.sh": SHOW_PLAN})
    result = builder.build(source, ["layers"], user_env={"GREETING": "from-user", "PATH": "/user/bin"})

    assert result.group == [("fixture/layers", "0.0.1")]
    entries = _plan(result.output, "layers")["entries"]
    assert [e["name"] for e in entries] == ["seen-by-detect"]
    seen = entries[0]["metadata"]
    assert (seen["uid"], seen["gid"], seen["cwd"]) == ("1000", "1000", "/workspace")
    assert seen["argc"] == "2"
    assert seen["arg1"] == "/platform" == seen["platform_dir"]
    assert seen["arg2"] == seen["build_plan_path"] and seen["arg2"].endswith(".toml")
    assert seen["buildpack_dir"] == "/cnb/buildpacks/fixture_layers/0.0.1"
    target = (seen["target_os"], seen["target_arch"], seen["target_distro_name"], seen["target_distro_version"])
    assert target == ("linux", builder.stack.arch, "debian", "12")
    assert seen["user_greeting"] == "from-user"  # <platform>/env applies to detect too
    assert seen["path"].startswith("/user/bin:/usr/local/sbin:")


def test_no_passing_group_is_exit_20_listing_each_result_and_output(builder, app) -> None:
    source = app(
        {
            "layers.detect.sh": "echo 'layers: nothing for me here'\nexit 100\n",
            "env-writer.detect.sh": "echo 'env-writer: looks good'\n",
        }
    )
    with pytest.raises(PlatformError) as failed:
        builder.build(source, ["env-writer", "layers"])

    error = failed.value
    assert error.exit_code == 20
    message = str(error)
    assert "fixture/env-writer@0.0.1: pass" in message
    assert "fixture/layers@0.0.1: fail (exit 100)" in message
    assert "layers: nothing for me here" in message
    assert "env-writer: looks good" in message


def test_detect_error_exit_code_is_exit_21_with_its_output(builder, app) -> None:
    source = app({"layers.detect.sh": "echo 'cannot read requirements: boom' >&2\nexit 3\n"})
    with pytest.raises(PlatformError) as failed:
        builder.build(source, ["layers"])

    assert failed.value.exit_code == 21
    assert "fixture/layers@0.0.1: error (exit 3)" in str(failed.value)
    assert "cannot read requirements: boom" in str(failed.value)


@pytest.mark.parametrize(
    ("plan", "problem"),
    [
        ('[[requires]]\nname = "ghost"\n', "requires ghost which no earlier buildpack provides"),
        ('[[provides]]\nname = "orphan"\n', "provides orphan which no later buildpack requires"),
    ],
    ids=["requires-without-provider", "provides-without-requirer"],
)
def test_build_plan_mismatch_fails_the_group(builder, app, plan: str, problem: str) -> None:
    source = app({"layers.detect.sh": f"cat >> \"$plan\" <<'EOF'\n{plan}EOF\n"})
    with pytest.raises(PlatformError) as failed:
        builder.build(source, ["layers"])

    assert failed.value.exit_code == 20
    assert problem in str(failed.value)


@pytest.mark.parametrize("writer_leaves_it_unmet", [False, True], ids=["met-by-first", "unmet-by-first"])
def test_buildpack_plan_holds_requires_metadata_minus_entries_met_earlier(
    builder, app, writer_leaves_it_unmet: bool
) -> None:
    """Both buildpacks provide `python`, the later one requires it with metadata: the first provider
    receives the entry; the second only if the first listed it in build.toml [[unmet]]."""
    unmet = 'printf \'[[unmet]]\\nname = "python"\\n\' > "$layers_dir/build.toml"\n' if writer_leaves_it_unmet else ""
    source = app(
        {
            "env-writer.detect.sh": 'printf \'[[provides]]\\nname = "python"\\n\' >> "$plan"\n',
            "env-reader.detect.sh": """
                cat >> "$plan" <<'EOF'
                [[provides]]
                name = "python"

                [[requires]]
                name = "python"

                [requires.metadata]
                version = "3.13"
                launch = true
                EOF
            """,
            "env-writer.build.sh": SHOW_PLAN + unmet,
            "env-reader.build.sh": SHOW_PLAN,
        }
    )
    result = builder.build(source, ["env-writer", "env-reader"])

    expected = [{"name": "python", "metadata": {"version": "3.13", "launch": True}}]
    assert _plan(result.output, "env-writer")["entries"] == expected
    assert _plan(result.output, "env-reader").get("entries", []) == (expected if writer_leaves_it_unmet else [])
