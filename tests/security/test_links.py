"""The host never follows a buildpack's link: one case per buildpack-writable path the host touches.

Each hostile buildpack points links at the sentinel's *host* paths. Outcomes: the link is refused
with a clear error naming the layer or file (where the platform would have had to read through
it), or the build succeeds with the link kept as a link (where a link is data: inside a layer, in
the app dir, exec.d). `attack.check` asserts the shared properties (see conftest).
"""

from __future__ import annotations

import tarfile

import pytest

pytestmark = pytest.mark.docker

LAYER_TOML = "printf '[types]\\n{flag} = true\\n' >\"$1/{name}.toml\""


def _layer_toml(name: str, *flags: str) -> str:
    lines = "".join(f"{flag} = true\\n" for flag in flags)
    return f"printf '[types]\\n{lines}' >\"$1/{name}.toml\""


@pytest.mark.parametrize("flag", ["cache", "launch", "build"])
def test_a_layer_dir_that_is_a_link_to_a_host_dir_is_refused(attack, flag) -> None:
    """Was: the host tarred the *host* dir into the cache (and the next build restored it)."""
    bp = attack.buildpack("a", f'ln -s {attack.sentinel.dir} "$1/stolen"\n{_layer_toml("stolen", flag)}')
    outcome = attack.build([bp])

    assert outcome.error is not None
    attack.check("hostile/a:stolen", "symbolic link")


def test_a_buildpack_layers_dir_replaced_by_a_link_is_refused(attack) -> None:
    bp = attack.buildpack(
        "a",
        f"""
        mkdir "$1/deps" && {_layer_toml("deps", "launch", "cache")}
        mv "$1" /layers/moved && ln -s {attack.sentinel.dir} "$1"
        """,
    )
    outcome = attack.build([bp])

    assert outcome.error is not None
    attack.check("layers dir of buildpack hostile/a", "symbolic link")


def test_links_inside_a_layer_are_exported_and_cached_as_links(attack) -> None:
    secret = attack.sentinel.public
    bp = attack.buildpack(
        "a",
        f"""
        if [ -L "$1/tools/abs" ]; then echo "restored-link:$(readlink "$1/tools/abs")"; fi
        mkdir -p "$1/tools/bin"
        {_layer_toml("tools", "launch", "cache")}
        ln -sfn {secret} "$1/tools/abs"
        ln -sfn ../../../../../../..{attack.sentinel.dir} "$1/tools/climbing"
        ln -sfn {attack.sentinel.dir} "$1/tools/bin/dir"
        """,
    )
    image, cache = attack.builder.image_name(), attack.builder.cache("shared-cache")
    first = attack.build([bp], image=image, cache=cache)
    second = attack.build([bp], image=image, cache=cache)

    assert first.error is None and second.error is None, (first.error, second.error)
    assert f"restored-link:{secret}" in second.output  # the cache gave back the link, not its target
    entry = attack.image_entry(image, "/layers/hostile_a/tools/abs")
    assert entry.type == tarfile.SYMTYPE and entry.linkname == str(secret)
    assert attack.image_entry(image, "/layers/hostile_a/tools/bin/dir").type == tarfile.SYMTYPE
    attack.check()


def test_an_env_file_linked_to_a_root_only_host_file_is_refused(attack) -> None:
    """Was: /etc/shadow-like content reached the next buildpack's env, the image and the report."""
    writer = attack.buildpack(
        "a",
        f"""
        mkdir -p "$1/l/env"
        {_layer_toml("l", "build")}
        ln -s {attack.sentinel.root_only} "$1/l/env/SECRET"
        """,
    )
    reader = attack.buildpack("b", 'echo "b-ran SECRET=${SECRET:-}"')
    outcome = attack.build([writer, reader])

    assert outcome.error is not None and "b-ran" not in outcome.output
    attack.check("/layers/hostile_a/l/env/SECRET", "hostile/a", "symbolic link")


def test_an_env_build_dir_linked_to_a_host_dir_is_refused(attack) -> None:
    writer = attack.buildpack(
        "a", f'mkdir -p "$1/l"\n{_layer_toml("l", "build")}\nln -s {attack.sentinel.dir} "$1/l/env.build"'
    )
    reader = attack.buildpack("b", "env")
    outcome = attack.build([writer, reader])

    assert outcome.error is not None
    attack.check("env.build", "hostile/a", "symbolic link")


def test_a_delim_file_linked_to_a_host_file_is_refused(attack) -> None:
    writer = attack.buildpack(
        "a",
        f"""
        mkdir -p "$1/l/env"
        {_layer_toml("l", "build")}
        printf x >"$1/l/env/VAR.prepend"
        ln -s {attack.sentinel.public} "$1/l/env/VAR.delim"
        """,
    )
    reader = attack.buildpack("b", 'echo "VAR=${VAR:-}"')
    outcome = attack.build([writer, reader])

    assert outcome.error is not None
    attack.check("VAR.delim", "symbolic link")


def test_a_layer_toml_linked_to_a_host_toml_is_refused(attack) -> None:
    """Was: a host TOML's values landed in the cache index (and would have reached the labels)."""
    bp = attack.buildpack("a", f'mkdir "$1/x"\nln -s {attack.sentinel.toml} "$1/x.toml"')
    outcome = attack.build([bp])

    assert outcome.error is not None
    attack.check("x.toml", "hostile/a", "symbolic link")


@pytest.mark.parametrize("name", ["launch.toml", "build.toml", "store.toml"])
def test_launch_build_and_store_toml_linked_to_a_root_only_host_file_are_refused(attack, name) -> None:
    """Was: /etc/shadow parsed on the host, its first line in the error."""
    bp = attack.buildpack("a", f'ln -s {attack.sentinel.root_only} "$1/{name}"')
    outcome = attack.build([bp])

    assert outcome.error is not None
    attack.check(name, "symbolic link")


def test_sbom_files_that_are_links_are_never_read_on_the_host(attack) -> None:
    """SBOM files that are links are copied as links (as the lifecycle's fsutil.Copy does), never read."""
    secret = attack.sentinel.root_only
    bp = attack.buildpack(
        "a",
        f"""
        mkdir "$1/l" && echo data >"$1/l/file"
        {_layer_toml("l", "launch")}
        ln -s {secret} "$1/launch.sbom.cdx.json"
        ln -s {secret} "$1/build.sbom.cdx.json"
        ln -s {secret} "$1/l.sbom.cdx.json"
        """,
    )
    descriptor = bp / "buildpack.toml"  # declare the format, so the SBOM files are copied, not refused (52)
    descriptor.write_text(
        descriptor.read_text().replace(
            'version = "0.0.1"\n', 'version = "0.0.1"\nsbom-formats = ["application/vnd.cyclonedx+json"]\n', 1
        )
    )
    outcome = attack.build([bp])

    assert outcome.error is None, outcome.error
    attack.check()


def test_a_link_planted_at_the_next_buildpacks_plan_cannot_redirect_the_plan(attack) -> None:
    """Was: the host wrote the next plan through the link, as root (any host file truncated)."""
    victim = attack.sentinel.victim
    planter = attack.buildpack("a", f"ln -sfn {victim} /cnb-plans/build-hostile_b.toml")
    reader = attack.buildpack("b", 'if [ -L "$3" ]; then echo plan-is-a-link; else echo plan-is-a-file; fi')
    outcome = attack.build([planter, reader])

    assert outcome.error is None, outcome.error
    assert "plan-is-a-file" in outcome.output
    attack.check()  # includes: the victim file is unchanged


def test_a_link_planted_at_a_later_detect_plan_cannot_redirect_it(attack) -> None:
    victim = attack.sentinel.victim
    planter = attack.buildpack("a", "true", detect=f"ln -sfn {victim} /cnb-plans/detect-hostile_b.toml")
    later = attack.buildpack(
        "b", "true", detect='printf "[[provides]]\\nname = \\"x\\"\\n[[requires]]\\nname = \\"x\\"\\n" >"$2"'
    )
    outcome = attack.build([planter, later])

    assert outcome.error is None, outcome.error
    attack.check()


def test_a_detect_plan_replaced_by_a_link_to_a_host_file_is_an_errored_detect(attack) -> None:
    bp = attack.buildpack("a", "true", detect=f'rm -f "$2"; ln -s {attack.sentinel.toml} "$2"')
    outcome = attack.build([bp])

    assert outcome.error is not None
    attack.check("symbolic link")


def test_a_platform_env_file_replaced_by_a_link_is_refused(attack) -> None:
    bp = attack.buildpack(
        "a", 'echo "INJECTED=${INJECTED:-}"', detect=f"ln -s {attack.sentinel.root_only} /platform/env/INJECTED"
    )
    outcome = attack.build([bp])

    assert outcome.error is not None
    attack.check("INJECTED", "symbolic link")


@pytest.mark.parametrize("planted", ["hostile_b", "hostile_b/deps"])
def test_links_planted_in_the_layers_dir_at_detect_cannot_redirect_the_cache_restore(attack, planted) -> None:
    """Restore runs as root after detect: a link where a cached layer (or its buildpack's layers
    dir) is restored must not send the extraction, the layer metadata or the chown to the host."""
    plant = f"mkdir -p /layers/{planted.rpartition('/')[0] or 'x'} && ln -s {attack.sentinel.dir} /layers/{planted}"
    planter = attack.buildpack(
        "a",
        "true",
        detect=f'if [ -n "${{PLANT:-}}" ]; then {plant}; fi',
    )
    cached = attack.buildpack(
        "b",
        """
        if [ -f "$1/deps/f" ]; then echo restored-deps; fi
        mkdir -p "$1/deps" && echo cached >"$1/deps/f"
        printf '[types]\\ncache = true\\n[metadata]\\nv = 1\\n' >"$1/deps.toml"
        """,
    )
    image, cache = attack.builder.image_name(), attack.builder.cache("restore")
    first = attack.build([planter, cached], image=image, cache=cache)
    second = attack.build([planter, cached], image=image, cache=cache, user_env={"PLANT": "1"})

    assert first.error is None and second.error is None, (first.error, second.error)
    assert "restored-deps" in second.output
    attack.check()


def test_an_exec_d_link_to_a_host_file_is_exported_as_a_link(attack) -> None:
    bp = attack.buildpack(
        "a",
        f"""
        mkdir -p "$1/l/exec.d"
        {_layer_toml("l", "launch")}
        ln -s {attack.sentinel.public} "$1/l/exec.d/leak"
        """,
    )
    outcome = attack.build([bp])

    assert outcome.error is None, outcome.error
    entry = attack.image_entry(outcome.image, "/layers/hostile_a/l/exec.d/leak")
    assert entry.type == tarfile.SYMTYPE
    attack.check()


def test_links_a_buildpack_leaves_in_the_app_dir_are_exported_as_links(attack) -> None:
    bp = attack.buildpack(
        "a", f"ln -s {attack.sentinel.public} /workspace/leak\nln -s {attack.sentinel.dir} /workspace/leakdir"
    )
    outcome = attack.build([bp])

    assert outcome.error is None, outcome.error
    assert attack.image_entry(outcome.image, "/workspace/leak").linkname == str(attack.sentinel.public)
    assert attack.image_entry(outcome.image, "/workspace/leakdir").type == tarfile.SYMTYPE
    attack.check()


def test_a_process_left_running_that_swaps_files_for_links_gains_nothing(attack) -> None:
    """A background process keeps turning a layer file into a link while the host exports it: the
    export either sees one state or the other (never the link's target) or stops with a clear error."""
    secret = attack.sentinel.public
    bp = attack.buildpack(
        "a",
        f"""
        mkdir -p "$1/l/d"
        {_layer_toml("l", "launch", "cache")}
        for i in 1 2 3 4 5 6 7 8; do echo "file $i" >"$1/l/d/f$i"; done
        (
            while :; do
                for i in 1 2 3 4 5 6 7 8; do
                    rm -rf "$1/l/d/f$i"; ln -s {secret} "$1/l/d/f$i"
                    rm -f "$1/l/d/f$i"; echo x >"$1/l/d/f$i"
                done
                rm -rf "$1/l/d2"; ln -s {attack.sentinel.dir} "$1/l/d2"; rm -f "$1/l/d2"; mkdir "$1/l/d2"
            done
        ) </dev/null >/dev/null 2>&1 &
        """,
    )
    outcome = attack.build([bp])

    if outcome.error is not None:
        attack.check("changed while the platform was reading")
    else:
        attack.check()


@pytest.mark.parametrize("toml_name", ["..toml", "...toml"])
def test_a_layer_named_dot_or_dot_dot_is_refused(attack, toml_name) -> None:
    """Was: `.` a traceback, `..` the whole /layers root tarred as one layer."""
    bp = attack.buildpack("a", f"printf '[types]\\nlaunch = true\\n' >\"$1/{toml_name}\"")
    outcome = attack.build([bp])

    assert outcome.error is not None
    attack.check("hostile/a", "invalid layer name")


def test_a_250_character_layer_name_builds(attack) -> None:
    """Was: a traceback (file name too long) from the host's own tar name `<bp>-<layer>.tar`."""
    name = "n" * 250
    bp = attack.buildpack("a", f'mkdir "$1/{name}" && echo x >"$1/{name}/f"\n{_layer_toml(name, "launch", "cache")}')
    outcome = attack.build([bp])

    assert outcome.error is None, outcome.error
    attack.check()
