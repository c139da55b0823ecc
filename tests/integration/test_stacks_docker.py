"""The real stack images in the Docker engine: users, tools, libraries, labels, and no needless rebuilds.

`ensure_stack` builds the images when they are missing or stale (about 1.5 min for bookworm), so the
first run of this module on a fresh machine is slow; later runs only inspect the images.
"""

from __future__ import annotations

import pytest

from conformance import engine, stacks

pytestmark = pytest.mark.docker

STACKS = [
    pytest.param("bookworm", id="bookworm"),
    pytest.param("trixie", id="trixie", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module", params=STACKS)
def stack(request: pytest.FixtureRequest) -> stacks.Stack:
    lines: list[str] = []
    return stacks.ensure_stack(request.param, on_output=lines.append)


def sh(image: str, script: str, user: str = "") -> engine.RunResult:
    return engine.run(image, ["sh", "-c", script], user=user or None, network_disabled=True, timeout=120)


def image_labels(reference: str) -> dict[str, str]:
    return engine.ensure_engine().images.get(reference).labels or {}


def image_env(reference: str) -> dict[str, str]:
    env = engine.ensure_engine().images.get(reference).attrs["Config"].get("Env") or []
    return dict(item.split("=", 1) for item in env)


@pytest.mark.parametrize("kind", ["build", "run"])
def test_images_carry_base_labels_recipe_and_engine_labels(stack: stacks.Stack, kind: str) -> None:
    labels = image_labels(stack.build_image if kind == "build" else stack.run_image)
    assert labels["io.buildpacks.base.distro.name"] == "debian"
    assert labels["io.buildpacks.base.distro.version"] == stack.distro_version
    assert labels["io.buildpacks.base.id"] == f"io.bpconform.{stack.name}"
    assert labels["io.buildpacks.base.description"]
    assert labels[stacks.RECIPE_LABEL] == stacks.recipe_hash(stack.name, kind)
    assert labels[engine.KIND] == "stack" and labels[engine.MANAGED] == "true"
    assert engine.SESSION not in labels  # persistent: survives session cleanup
    assert "io.buildpacks.stack.id" not in labels  # stacks are gone from Platform API 0.12 on
    assert labels.get("io.buildpacks.rebasable") == ("true" if kind == "run" else None)


def test_images_have_a_non_root_user_that_cnb_user_id_names(stack: stacks.Stack) -> None:
    """platform.md "Build Image": `User` MUST be non-root and `CNB_USER_ID`/`CNB_GROUP_ID` its ids;
    "Run Image": its user SHOULD have a different uid. A container started without `--user` runs as it."""
    for image, uid, gid in ((stack.build_image, 1000, 1000), (stack.run_image, 1001, 1000)):
        config = engine.ensure_engine().images.get(image).attrs["Config"]
        assert config["User"] == f"{uid}:{gid}"
        result = sh(image, 'id -u; id -g; touch "$HOME/probe" && echo home-writable')
        assert result.exit_code == 0, result.output
        assert result.output.split() == [str(uid), str(gid), "home-writable"]


def test_image_platform_matches_the_stack_arch(stack: stacks.Stack) -> None:
    attrs = engine.ensure_engine().images.get(stack.run_image).attrs
    assert attrs["Os"] == "linux"
    assert attrs["Architecture"] == stack.arch


def test_build_image_config_env(stack: stacks.Stack) -> None:
    env = image_env(stack.build_image)
    assert env["CNB_USER_ID"] == "1000" and env["CNB_GROUP_ID"] == "1000"
    assert env["PATH"] == stacks.PATH_VALUE


def test_build_image_has_the_cnb_user_with_a_home(stack: stacks.Stack) -> None:
    result = sh(stack.build_image, 'id -u cnb; id -g cnb; stat -c "%u:%g" "$(getent passwd cnb | cut -d: -f6)"')
    assert result.exit_code == 0, result.output
    assert result.output.split() == ["1000", "1000", "1000:1000"]


def test_build_image_runs_python_and_compiles_c_as_the_build_user(stack: stacks.Stack) -> None:
    script = (
        "cd /tmp && printf '#include <zlib.h>\\n#include <openssl/ssl.h>\\nint main(void){return 0;}\\n' > t.c"
        " && gcc t.c -o t -lz -lssl && ./t && python3 -c 'import ssl, sqlite3; print(\"py-ok\")'"
        " && command -v make pkg-config curl xz tar >/dev/null && echo tools-ok"
    )
    result = sh(stack.build_image, script, user=f"{stack.build_uid}:{stack.build_gid}")
    assert result.exit_code == 0, result.output
    assert "py-ok" in result.output and "tools-ok" in result.output


def test_run_image_config_env(stack: stacks.Stack) -> None:
    env = image_env(stack.run_image)
    assert env["CNB_USER_ID"] == "1001" and env["CNB_GROUP_ID"] == "1000"
    assert env["PATH"] == stacks.PATH_VALUE


def test_run_image_user_shares_the_build_group(stack: stacks.Stack) -> None:
    result = sh(stack.run_image, "id -u cnb; id -g cnb; getent group 1000 | cut -d: -f1")
    assert result.exit_code == 0, result.output
    assert result.output.split() == ["1001", "1000", "cnb"]


def test_run_image_has_runtime_libraries_and_no_toolchain(stack: stacks.Stack) -> None:
    libs = ["libssl.so.3", "libsqlite3.so.0", "libffi.so.8", "libz.so.1", "libreadline.so.8", "libgdbm.so.6"]
    checks = " && ".join(f"ldconfig -p | grep -q '{lib} '" for lib in libs)
    result = sh(stack.run_image, f"{checks} && test -s /etc/ssl/certs/ca-certificates.crt && echo libs-ok")
    assert result.exit_code == 0, result.output
    assert "libs-ok" in result.output
    for tool in ("gcc", "cc", "python3", "make"):
        missing = sh(stack.run_image, f"command -v {tool}")
        assert missing.exit_code != 0, f"{tool} should not be in the run image: {missing.output}"


def test_ensure_stack_again_is_a_no_op(stack: stacks.Stack) -> None:
    client = engine.ensure_engine()
    before = (client.images.get(stack.build_image).id, client.images.get(stack.run_image).id)
    assert stacks.stack_is_current(stack.name)
    lines: list[str] = []
    assert stacks.ensure_stack(stack.name, on_output=lines.append) == stack
    after = (client.images.get(stack.build_image).id, client.images.get(stack.run_image).id)
    assert after == before
    assert not any(line.startswith("building") for line in lines), lines
    assert any("up to date" in line for line in lines), lines
