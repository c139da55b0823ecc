"""Bad inputs: each ends in a specific error with a hint (or a clean success), and leaks nothing.

Not repeated here (see tests/platform_integration/test_failures.py): a hang past the timeout,
malformed buildpack.toml, missing or non-executable bin/build, a non-zero bin/build.
"""

from __future__ import annotations

import dataclasses
import os
import tracemalloc

import pytest
from platform_integration.conftest import shell

from conformance import access, runtimes
from conformance.errors import PlatformError
from conformance.paths import REPO_ROOT
from conformance.platform.log import BuildLog

from .conftest import assert_clear_error, run_cli, take_inventory

pytestmark = pytest.mark.docker
FIXTURE_LAYERS = "tests/platform_integration/buildpacks/layers"


def test_malformed_layer_toml_names_the_layer_file(builder, app, leak_guard) -> None:
    source = app({"layers.build.sh": 'mkdir -p "$1/deps"\nprintf \'[types\\nlaunch = true\\n\' >"$1/deps.toml"\n'})
    with pytest.raises(PlatformError) as failed:
        builder.build(source, ["layers"])

    assert_clear_error(failed.value, "deps.toml", "fixture_layers")
    assert "line 1" in failed.value.message  # the parser's position, so the author finds the typo
    leak_guard.assert_clean()


def test_malformed_launch_toml_names_the_file(builder, app, leak_guard) -> None:
    unterminated_string = 'printf \'[[processes]]\\ntype = "web\\ncommand = ["x"]\\n\' >"$1/launch.toml"\n'
    source = app({"layers.build.sh": unterminated_string})
    with pytest.raises(PlatformError) as failed:
        builder.build(source, ["layers"])

    assert_clear_error(failed.value, "launch.toml", "fixture_layers")
    leak_guard.assert_clean()


def test_launch_toml_with_a_string_command_is_refused_for_new_buildpack_apis(builder, app, leak_guard) -> None:
    """Well-formed TOML, wrong shape: Buildpack API >= 0.9 needs an array (the fixture is API 0.10)."""
    string_command = 'printf \'[[processes]]\\ntype = "web"\\ncommand = "python app.py"\\n\' >"$1/launch.toml"\n'
    source = app({"layers.build.sh": string_command})
    with pytest.raises(PlatformError) as failed:
        builder.build(source, ["layers"])

    assert_clear_error(failed.value, "launch.toml", "web", "array of strings")
    assert "python" in failed.value.hint  # shows the array form to write instead
    leak_guard.assert_clean()


FLOOD = {
    "layers.build.sh": """
        head -c 20000000 /dev/zero | tr '\\0' x | fold -w 99
        echo 'last line of the flood'
        layer after launch
        put after/ok yes
    """
}


def test_twenty_megabytes_of_output_build_fine_and_the_captured_log_stays_capped(builder, app, leak_guard) -> None:
    result = builder.build(app(FLOOD), ["layers"], timeout=300)

    assert len(result.output) <= BuildLog.CAP + 1_000_000  # the cap, plus at most the chunk that crossed it
    assert len(result.output) >= BuildLog.CAP // 2  # the tail is kept, not thrown away
    assert "last line of the flood" in result.output
    assert "Exported" in result.output
    assert [layer.name for layer in result.layers] == ["after"]
    leak_guard.assert_clean(allowed_images=[result.image])


@pytest.mark.serial
def test_twenty_megabytes_of_output_do_not_take_more_memory_than_the_log_cap(builder, app, leak_guard) -> None:
    tracemalloc.start()
    try:
        result = builder.build(app(FLOOD), ["layers"], timeout=300)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    leak_guard.assert_clean(allowed_images=[result.image])

    # With exec_in not keeping streamed output the peak is ~9 MB (4 MB log + one copy of the tail).
    assert peak < 3 * BuildLog.CAP, f"the build held {peak / 1e6:.1f} MB of Python memory for 20 MB of output"


def test_writes_outside_the_buildpacks_layers_dir_are_not_exported(builder, app, leak_guard) -> None:
    """Like the lifecycle: a buildpack's own layers (with a <layer>.toml) and the app dir are exported;
    /tmp, $HOME, stray files in /layers and dirs of buildpacks not in the group die with the container."""
    source = app(
        {
            "layers.build.sh": """
                echo escaped >/tmp/bp-wrote-here
                echo escaped >"$HOME/bp-wrote-here" 2>/dev/null || true
                echo escaped >/layers/stray-file
                mkdir -p /layers/intruder && echo escaped >/layers/intruder/file
                printf '[types]\\nlaunch = true\\n' >/layers/intruder.toml
                mkdir -p /layers/fixture_nobody/sneaky && echo escaped >/layers/fixture_nobody/sneaky/file
                printf '[types]\\nlaunch = true\\n' >/layers/fixture_nobody/sneaky.toml
                echo kept >/workspace/written-by-buildpack
                layer own launch
                put own/file kept
            """
        }
    )
    result = builder.build(source, ["layers"])
    paths = [
        "/layers/fixture_layers/own/file",
        "/workspace/written-by-buildpack",
        "/tmp/bp-wrote-here",
        "/home/cnb/bp-wrote-here",
        "/layers/stray-file",
        "/layers/intruder",
        "/layers/intruder.toml",
        "/layers/fixture_nobody",
    ]
    probe = shell(
        result.image,
        "for p in " + " ".join(paths) + '; do if [ -e "$p" ]; then echo "present $p"; else echo "absent $p"; fi; done',
    )
    seen = dict(reversed(line.split(" ", 1)) for line in probe.output.split("\n") if line)

    assert seen == {
        "/layers/fixture_layers/own/file": "present",
        "/workspace/written-by-buildpack": "present",
        **{path: "absent" for path in paths[2:]},
    }
    assert [(layer.buildpack_id, layer.name) for layer in result.layers] == [("fixture/layers", "own")]
    leak_guard.assert_clean(allowed_images=[result.image])


def test_a_layer_named_launch_is_refused(builder, app, leak_guard) -> None:
    source = app({"layers.build.sh": "layer launch launch\nput launch/file x\n"})
    with pytest.raises(PlatformError) as failed:
        builder.build(source, ["layers"])

    assert_clear_error(failed.value, "fixture/layers", "'launch'")
    assert "reserved" in failed.value.hint and "rename" in failed.value.hint
    leak_guard.assert_clean()


def test_missing_run_image_names_it_and_says_how_to_build_it(builder, app, leak_guard) -> None:
    builder.stack = dataclasses.replace(builder.stack, run_image="bpconform/run:does-not-exist")
    with pytest.raises(PlatformError) as failed:
        builder.build(app({"layers.build.sh": "layer l launch\nput l/f x\n"}), ["layers"])

    assert_clear_error(failed.value, "bpconform/run:does-not-exist")
    assert "bpconform stack build" in failed.value.hint
    leak_guard.assert_clean()


@pytest.mark.parametrize(
    ("link", "target"),
    [("etc-passwd", "/etc/passwd"), ("up-and-out", "../../outside.txt"), ("dangling", "/does/not/exist")],
)
def test_app_symlink_pointing_outside_the_app_is_refused(builder, app, tmp_path, leak_guard, link, target) -> None:
    (tmp_path / "outside.txt").write_text("not part of the app\n")
    source = app({"app.py": "print('hi')\n"})
    (source / "sub").mkdir()
    (source / "sub" / link).symlink_to(target)
    with pytest.raises(PlatformError) as failed:
        builder.build(source, ["layers"])

    assert_clear_error(failed.value, f"sub/{link}", target, "outside the app")
    leak_guard.assert_clean()


def test_app_symlink_inside_the_app_is_kept(builder, app, leak_guard) -> None:
    """The control for the refusals above: links that stay inside the app are fine."""
    source = app({"data/real.txt": "real\n", "layers.build.sh": "echo built\n"})
    (source / "alias.txt").symlink_to("data/real.txt")
    result = builder.build(source, ["layers"])

    probe = shell(result.image, "readlink /workspace/alias.txt; cat /workspace/alias.txt")
    assert probe.output.split() == ["data/real.txt", "real"]
    leak_guard.assert_clean(allowed_images=[result.image])


@pytest.mark.serial
def test_app_with_a_named_pipe_fails_instead_of_hanging(builder, app, leak_guard) -> None:
    """We run as root, so chmod 000 does not make a file unreadable; a FIFO is the realistic unreadable
    file (a copy that opened it would block forever)."""
    source = app({"app.py": "print('hi')\n"})
    os.mkfifo(source / "control.fifo")
    with pytest.raises(PlatformError) as failed:
        builder.build(source, ["layers"])

    assert_clear_error(failed.value, "control.fifo", "named pipe")
    leak_guard.assert_clean()


def test_cli_refuses_an_outside_symlink_with_a_message_and_no_traceback(app, tmp_path, stack) -> None:
    source = app({"app.py": "print('hi')\n"})
    (source / "secrets").symlink_to("/etc/shadow")
    image = f"bpconform-reliability/cli-symlink:{tmp_path.name}"
    run = run_cli(
        ["build", image, "--path", str(source), "--buildpack", FIXTURE_LAYERS],
        tmp_path,
    )

    assert run.exit_code != 0
    assert "Traceback" not in run.output
    assert "bpconform: error: secrets in the app is a symlink to /etc/shadow, outside the app" in run.stderr
    assert "  -> " in run.stderr  # the hint line
    assert list(run.work_root.iterdir()) == []
    inventory = take_inventory(None, run.session)
    assert (inventory.containers, inventory.volumes, inventory.images) == (frozenset(),) * 3


def test_cli_malformed_launch_toml_exits_with_a_message_and_leaks_nothing(app, tmp_path, stack) -> None:
    source = app({"layers.build.sh": "printf 'processes = [\\n' >\"$1/launch.toml\"\n"})
    image = f"bpconform-reliability/cli-launch-toml:{tmp_path.name}"
    run = run_cli(
        ["build", image, "--path", str(source), "--buildpack", FIXTURE_LAYERS],
        tmp_path,
    )

    assert run.exit_code == 52, run.output  # the lifecycle's build error, passed through (not 2: a usage error)
    assert "Traceback" not in run.output
    error_lines = [line for line in run.stderr.splitlines() if line.startswith("bpconform: error:")]
    assert len(error_lines) == 1 and "launch.toml" in error_lines[0], run.stderr[-2000:]
    assert "  -> " in run.stderr
    assert list(run.work_root.iterdir()) == []
    inventory = take_inventory(None, run.session)
    assert (inventory.containers, inventory.volumes, inventory.images) == (frozenset(),) * 3
    from conformance.engine import image_exists

    assert not image_exists(image)


def test_unreachable_package_index_fails_with_pips_error_and_the_buildpacks_explanation(builder, leak_guard) -> None:
    result_output: list[str] = []
    request = builder.request(
        REPO_ROOT / "testapps" / "minimal",
        [str(REPO_ROOT / "buildpack_under_test")],
        access=access.online(),
        runtimes_dir=runtimes.runtimes_dir(),
        user_env={"PIP_INDEX_URL": "http://127.0.0.1:9/simple"},
        timeout=240,
    )
    request.on_output = result_output.append
    from conformance.platform.creator import create

    with pytest.raises(PlatformError) as failed:
        create(request)
    output = "".join(result_output)

    assert_clear_error(failed.value, "bin/build exited with 1")
    assert "127.0.0.1" in output and "Connection refused" in output  # pip's own words
    assert "[Error: Could not install" in output  # the buildpack's explanation
    assert "Traceback" not in output
    leak_guard.assert_clean()
