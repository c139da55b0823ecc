"""Hostile buildpacks stay in their box: limits, privileges and read-only mounts of the build container.

Each case is a real build with a tiny /bin/sh buildpack (tests/hostile.py) on the bookworm stack,
and ends in a clear error or contained behaviour, no traceback, and nothing left behind (the box's
`LeakGuard`: containers, volumes, images, work dirs in /dev/shm, scratch dirs, build caches).
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import hostile
import pytest
from hostile import Box, assert_clear, hostile_buildpack, records, small_limits

from conformance import engine
from conformance.engine import DEFAULT_BUILD_MEMORY, DEFAULT_BUILD_PIDS, KIND, SESSION, SESSION_ID, ensure_engine
from conformance.platform.build_container import BuildContainer
from conformance.platform.spec import ExitCode

pytestmark = [pytest.mark.docker, pytest.mark.serial]  # the serial pass (tests/conftest.py)
box = hostile.box  # the fixtures (no conftest of ours in tests/security)
security_stack = hostile.security_stack

CGROUP_LIMITS = """
    for f in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes; do
        [ -r "$f" ] && record memory "$(cat "$f")"
    done
    for f in /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max; do
        [ -r "$f" ] && record pids "$(cat "$f")"
    done
"""


def _build_containers() -> list[dict]:
    return ensure_engine().api.containers(all=True, filters={"label": [f"{KIND}=build", f"{SESSION}={SESSION_ID}"]})


def test_a_fork_bomb_is_stopped_by_the_pids_limit_and_reported_as_such(box: Box) -> None:
    """Bounded: it tries to start 10000 sleeping processes; at 64 the kernel refuses to fork."""
    bomb = hostile_buildpack(
        box.tmp_path,
        """
        i=0
        while [ "$i" -lt 10000 ]; do
            sleep 600 </dev/null >/dev/null 2>&1 &
            i=$((i + 1))
        done
        record spawned "$i"
        """,
    )
    error = box.fail([bomb], limits=small_limits(pids=64))

    assert_clear(error, "bin/build of hostile/bp", "limit of 64 processes")
    assert "--pids-limit" in error.hint and "BPCONFORM_BUILD_PIDS" in error.hint
    assert error.exit_code == ExitCode.FAILED_BUILD
    assert "spawned" not in records(error.build_output)  # it never got to 10000
    assert _build_containers() == []  # the container and its sleeping processes are gone
    box.assert_no_leaks()


def test_the_limit_counters_are_read_on_the_host_so_a_full_pids_cgroup_cannot_hide_them(
    security_stack: hostile.Stack,
) -> None:
    """The cause of a fork-bomb flake under load: with the container one slot below its pids limit
    (the bomb's sleepers left behind), a `docker exec` of the in-container reader often cannot start
    (runc's init needs more than one slot), and the stats show no full cgroup either. The platform
    reads the counters from the host's cgroup files instead, where no process of the container is
    needed; here, on a local engine, that view must be the one in use and must see the refused forks."""
    limits = small_limits(pids=64)
    with engine.running_container(
        security_stack.build_image, ["sleep", "infinity"], kind="build", user="0:0", **limits.create_options()
    ) as container:
        fill = "i=0; while [ $i -lt 200 ]; do sleep 600 </dev/null >/dev/null 2>&1 & i=$((i+1)); done"
        assert engine.exec_in(container, ["sh", "-c", fill], user="1000:1000").exit_code != 0  # fork refused
        reader = BuildContainer(container, dirs=None, owner=None, limits=limits, timeout=None)  # type: ignore[arg-type]
        counters = reader._host_limit_counters()

    assert counters is not None, "the host's cgroup files of a local container were not found"
    assert counters["pids_max"] >= 1 and counters["oom_kill"] == 0, counters


def test_a_memory_hog_is_killed_at_the_memory_limit_given_with_the_cli_flag(box: Box) -> None:
    """`bpconform build --memory 256m`: the hog asks for 600 MB and no swap is allowed."""
    hog = hostile_buildpack(
        box.tmp_path,
        """
        record started yes
        hog=$(head -c 600000000 /dev/zero | tr '\\0' x)
        record survived "${#hog}"
        """,
    )
    image = box.image_name()
    result = box.cli("build", image, "--path", str(box.app), "--buildpack", str(hog), "--memory", "256m")

    assert result.exit_code == ExitCode.FAILED_BUILD, result.output
    assert "bin/build of hostile/bp 0.0.1 ran out of memory" in result.stderr
    assert "256 MiB" in result.stderr and "--memory" in result.stderr
    assert "survived" not in records(result.stderr)
    assert not engine.image_exists(image)
    box.assert_no_leaks()


def test_build_containers_get_the_default_limits_and_the_environment_overrides(box: Box, monkeypatch) -> None:
    probe = hostile_buildpack(box.tmp_path, CGROUP_LIMITS)
    default = records(box.build([probe]).output)
    monkeypatch.setenv("BPCONFORM_BUILD_MEMORY", "512m")
    monkeypatch.setenv("BPCONFORM_BUILD_PIDS", "300")
    changed = records(box.build([probe]).output)

    assert default == {"memory": [str(DEFAULT_BUILD_MEMORY)], "pids": [str(DEFAULT_BUILD_PIDS)]}
    assert changed == {"memory": [str(512 * 1024**2)], "pids": ["300"]}
    box.assert_no_leaks(allowed_images=box.images)


def test_bin_build_runs_with_no_new_privileges_and_no_capabilities(box: Box) -> None:
    """The build user never has capabilities; the bounding set being empty too shows cap_drop ALL
    (a root step, and so CHOWN and DAC_READ_SEARCH, is only needed where the host cannot chown)."""
    probe = hostile_buildpack(
        box.tmp_path,
        """
        grep -E '^(NoNewPrivs|CapInh|CapPrm|CapEff|CapBnd|CapAmb):' /proc/self/status | while read -r key value; do
            record "${key%:}" "$value"
        done
        record uid "$(id -u)"
        """,
        detect="grep -q '^NoNewPrivs:[[:space:]]*1' /proc/self/status || exit 1",
    )
    seen = records(box.build([probe]).output)

    bounding = (
        "0000000000000000" if engine.shares_host_ids() else f"{(1 << 0) | (1 << 2):016x}"
    )  # CHOWN, DAC_READ_SEARCH
    assert seen["NoNewPrivs"] == ["1"]
    assert seen["CapEff"] == seen["CapPrm"] == seen["CapInh"] == seen["CapAmb"] == ["0000000000000000"]
    assert seen["CapBnd"] == [bounding]
    assert seen["uid"] == [str(box.stack.build_uid)]
    box.assert_no_leaks(allowed_images=box.images)


def _setuid_id(box: Box, directory: Path) -> Path:
    """A setuid-root copy of the build image's own `id` (so it runs there) in `directory`."""
    container = engine.create_container(box.stack.build_image, ["true"], kind="selftest")
    try:
        stream, _stat = container.get_archive("/usr/bin/id")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.extractfile("id")
            assert member is not None
            binary = directory / "suid-id"
            binary.write_bytes(member.read())
    finally:
        engine.remove_container(container)
    os.chown(binary, 0, 0)
    binary.chmod(0o4755)
    return binary


def test_a_setuid_root_binary_does_not_raise_the_build_users_privileges(box: Box) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a setuid-root binary needs root")
    probe = hostile_buildpack(box.tmp_path, 'record euid "$("$CNB_BUILDPACK_DIR/suid-id" -u)"\n')
    _setuid_id(box, probe)
    # the control: without no-new-privileges the same binary on the same mount does make the user root
    control = engine.run(
        box.stack.build_image,
        ["/bp/suid-id", "-u"],
        mounts=[engine.Mount(probe, "/bp", read_only=True)],
        user=f"{box.stack.build_uid}:{box.stack.build_gid}",
        network_disabled=True,
        kind="selftest",
    )
    assert control.stdout.strip() == "0", (
        f"setuid does not work on this mount, the check would prove nothing: {control}"
    )

    seen = records(box.build([probe]).output)

    assert seen["euid"] == [str(box.stack.build_uid)]
    box.assert_no_leaks(allowed_images=box.images)


def test_the_buildpack_dir_and_the_platform_dir_are_read_only(box: Box) -> None:
    probe = hostile_buildpack(
        box.tmp_path,
        """
        for target in "$CNB_BUILDPACK_DIR/bin/build" "$CNB_BUILDPACK_DIR/planted" "$2/env/INJECTED"; do
            if (: >"$target") 2>/dev/null; then record wrote "$target"; else record refused "$target"; fi
        done
        """,
        detect='(echo injected >"$1/env/INJECTED") 2>/dev/null; exit 0',
    )
    before = {p.name: p.read_bytes() for p in (probe / "bin").iterdir()}
    result = box.build([probe])
    seen = records(result.output)

    assert "wrote" not in seen, seen
    assert len(seen["refused"]) == 3
    assert {p.name: p.read_bytes() for p in (probe / "bin").iterdir()} == before
    assert not (probe / "planted").exists()
    assert "INJECTED" not in result.build_env["hostile/bp"]  # detect could not plant a variable either
    box.assert_no_leaks(allowed_images=box.images)
