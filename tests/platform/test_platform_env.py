from __future__ import annotations

from pathlib import Path

import pytest

from conformance.errors import PlatformError
from conformance.platform.env import (
    ALLOWED_BUILD_ENV,
    LayerDir,
    add_env_dir,
    build_env,
    filter_build_base,
    launch_env,
    order_layers,
    read_platform_env,
)

BASE = {"PATH": "/usr/bin:/bin", "HOME": "/home/cnb"}


def env_dir(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (root / name).write_text(content)
    return root


def layer(
    tmp_path: Path,
    bp: str,
    name: str,
    dirs: tuple[str, ...] = (),
    env: dict[str, dict[str, str]] | None = None,
) -> LayerDir:
    """A layer on the host at tmp/<bp>/<name>, seen in containers at /layers/<bp>/<name>."""
    host = tmp_path / bp / name
    host.mkdir(parents=True)
    for d in dirs:
        (host / d).mkdir()
    for sub, files in (env or {}).items():
        env_dir(host / sub, files)
    return LayerDir(host, f"/layers/{bp}/{name}")


# --- env files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "start", "expected"),
    [
        ({"FOO": "new"}, {"FOO": "old"}, "new"),  # no suffix: override
        ({"FOO.override": "new"}, {"FOO": "old"}, "new"),
        ({"FOO.default": "dflt"}, {"FOO": "old"}, "old"),
        ({"FOO.default": "dflt"}, {}, "dflt"),
        ({"FOO.default": "dflt"}, {"FOO": ""}, "dflt"),  # empty counts as unset
        ({"FOO.prepend": "new"}, {"FOO": "old"}, "newold"),  # no default delimiter
        ({"FOO.append": "new"}, {"FOO": "old"}, "oldnew"),
        ({"FOO.prepend": "new", "FOO.delim": ":"}, {"FOO": "old"}, "new:old"),
        ({"FOO.append": "new", "FOO.delim": " "}, {"FOO": "old"}, "old new"),
        ({"FOO.prepend": "new", "FOO.delim": ":"}, {}, "new"),  # no dangling delimiter
        ({"FOO.append": "new", "FOO.delim": ":"}, {"FOO": ""}, "new"),
        ({"FOO.": "new"}, {"FOO": "old"}, "new:old"),  # bare "." prepends with ":"
        ({"FOO.unknown": "new", "FOO.delim": ":"}, {"FOO": "old"}, "old"),  # unknown suffixes ignored
        ({"FOO": "line\n"}, {}, "line\n"),  # contents are not trimmed
        ({"FOO.default": "a", "FOO.override": "b"}, {}, "b"),  # applied in file-name order
    ],
)
def test_env_file_actions(tmp_path, files, start, expected):
    env = dict(start)
    add_env_dir(env, env_dir(tmp_path / "env", files))
    assert env["FOO"] == expected
    assert "FOO.delim" not in env


def test_delim_file_without_action_is_not_a_variable(tmp_path):
    env: dict[str, str] = {}
    add_env_dir(env, env_dir(tmp_path / "env", {"FOO.delim": ":"}))
    assert env == {}


def test_subdirectories_are_not_env_files(tmp_path):
    env: dict[str, str] = {}
    root = env_dir(tmp_path / "env.launch", {"A": "1"})
    env_dir(root / "web", {"B": "2"})
    add_env_dir(env, root)
    assert env == {"A": "1"}


# --- build env ---------------------------------------------------------------------------------------


def test_base_env_is_allow_listed():
    base = {
        "PATH": "/bin",
        "HOME": "/home/cnb",
        "HTTPS_PROXY": "http://proxy",
        "no_proxy": "localhost",
        "CNB_STACK_ID": "s",
        "LANG": "C.UTF-8",
        "SECRET_TOKEN": "x",
        "path": "/lowercase",
    }
    env = build_env(base, None, [])
    assert env == {
        "PATH": "/bin",
        "HOME": "/home/cnb",
        "HTTPS_PROXY": "http://proxy",
        "no_proxy": "localhost",
        "CNB_STACK_ID": "s",
    }
    assert filter_build_base(base) == env
    for name in ("PATH", "LD_LIBRARY_PATH", "LIBRARY_PATH", "CPATH", "PKG_CONFIG_PATH", "HOSTNAME", "http_proxy"):
        assert name in ALLOWED_BUILD_ENV


def test_root_dirs_at_build(tmp_path):
    py = layer(tmp_path, "bp", "python", dirs=("bin", "lib", "include", "pkgconfig", "share"))
    env = build_env(BASE, None, [[py]])
    assert env["PATH"] == "/layers/bp/python/bin:/usr/bin:/bin"
    assert env["LD_LIBRARY_PATH"] == "/layers/bp/python/lib"
    assert env["LIBRARY_PATH"] == "/layers/bp/python/lib"
    assert env["CPATH"] == "/layers/bp/python/include"
    assert env["PKG_CONFIG_PATH"] == "/layers/bp/python/pkgconfig"


def test_later_layer_names_come_first_at_build(tmp_path):
    layers = [layer(tmp_path, "bp", n, dirs=("bin",)) for n in ("venv", "pip", "python")]
    env = build_env(BASE, None, [layers])
    assert env["PATH"] == "/layers/bp/venv/bin:/layers/bp/python/bin:/layers/bp/pip/bin:/usr/bin:/bin"


def test_later_buildpacks_come_first(tmp_path):
    first = layer(tmp_path, "first", "a", dirs=("bin",))
    second = layer(tmp_path, "second", "z", dirs=("bin",))
    env = build_env(BASE, None, [[first], [second]])
    assert env["PATH"] == "/layers/second/z/bin:/layers/first/a/bin:/usr/bin:/bin"


def test_each_layer_applies_root_dirs_then_env_then_env_build(tmp_path):
    a = layer(
        tmp_path,
        "bp",
        "a",
        dirs=("bin",),
        env={
            "env": {"PATH.prepend": "/a-extra", "PATH.delim": ":", "X": "from-env"},
            "env.build": {"X": "from-env.build"},
            "env.launch": {"Y": "launch-only"},
        },
    )
    b = layer(tmp_path, "bp", "b", dirs=("bin",))
    env = build_env(BASE, None, [[a, b]])
    # interleaved per layer: a/bin, a's env, then b/bin
    assert env["PATH"] == "/layers/bp/b/bin:/a-extra:/layers/bp/a/bin:/usr/bin:/bin"
    assert env["X"] == "from-env.build"
    assert "Y" not in env


def test_later_layer_overrides_earlier_layer(tmp_path):
    py = layer(tmp_path, "bp", "python", env={"env": {"WHO.override": "python"}})
    venv = layer(tmp_path, "bp", "venv", env={"env": {"WHO.override": "venv"}})
    assert build_env(BASE, None, [[venv, py]])["WHO"] == "venv"


def test_earlier_buildpack_default_wins(tmp_path):
    a = layer(tmp_path, "a", "l", env={"env": {"LANG.default": "C.UTF-8"}})
    b = layer(tmp_path, "b", "l", env={"env": {"LANG.default": "en_US.UTF-8"}})
    assert build_env(BASE, None, [[a], [b]])["LANG"] == "C.UTF-8"


def test_lifecycle_1393_flips_layer_order_within_a_buildpack_only(tmp_path):
    py = layer(tmp_path, "python-bp", "python", dirs=("bin",), env={"env": {"WHO": "python"}})
    venv = layer(tmp_path, "python-bp", "venv", dirs=("bin",), env={"env": {"WHO": "venv"}})
    other = layer(tmp_path, "later-bp", "tools", dirs=("bin",))
    fixed = build_env(BASE, None, [[py, venv], [other]])
    buggy = build_env(BASE, None, [[py, venv], [other]], order="lifecycle-1393")
    assert (
        fixed["PATH"]
        == "/layers/later-bp/tools/bin:/layers/python-bp/venv/bin:/layers/python-bp/python/bin:/usr/bin:/bin"
    )
    assert (
        buggy["PATH"]
        == "/layers/later-bp/tools/bin:/layers/python-bp/python/bin:/layers/python-bp/venv/bin:/usr/bin:/bin"
    )
    assert (fixed["WHO"], buggy["WHO"]) == ("venv", "python")


def test_random_order_is_seeded(tmp_path):
    layers = [layer(tmp_path, "bp", f"l{i}") for i in range(6)]
    orders = {tuple(d.name for d in order_layers(layers, "random", seed)) for seed in range(10)}
    assert len(orders) > 1
    assert order_layers(layers, "random", 3) == order_layers(layers, "random", 3)
    with pytest.raises(ValueError, match="unknown layer order"):
        order_layers(layers, "bogus")


def test_platform_env_prepends_path_vars_and_overrides_others_last(tmp_path):
    platform = env_dir(
        tmp_path / "platform" / "env",
        {"PATH": "/user/bin", "LD_LIBRARY_PATH": "/user/lib", "WHO": "user", "PIP_INDEX_URL.append": "x\n"},
    )
    user = read_platform_env(tmp_path / "platform")
    assert user == {"LD_LIBRARY_PATH": "/user/lib", "PATH": "/user/bin", "PIP_INDEX_URL.append": "x\n", "WHO": "user"}
    assert read_platform_env(platform) == user
    py = layer(tmp_path, "bp", "python", dirs=("bin",), env={"env": {"WHO": "layer"}})
    env = build_env(BASE, user, [[py]])
    assert env["PATH"] == "/user/bin:/layers/bp/python/bin:/usr/bin:/bin"
    assert env["LD_LIBRARY_PATH"] == "/user/lib"  # no dangling ":"
    assert env["WHO"] == "user"
    assert env["PIP_INDEX_URL.append"] == "x\n"  # platform env files have no suffixes


def test_clear_env_skips_the_platform_env(tmp_path):
    user = {"PATH": "/user/bin", "WHO": "user"}
    env = build_env(BASE, user, [], clear_env=True)
    assert env == BASE
    assert build_env(BASE, user, [])["PATH"] == "/user/bin:/usr/bin:/bin"


def test_missing_platform_env_dir(tmp_path):
    assert read_platform_env(tmp_path) == {}


def test_build_config_env_applies_as_defaults(tmp_path):
    config = env_dir(
        tmp_path / "build-config" / "env", {"HOME": "/ignored", "CORP_CA": "/ca.pem", "PATH.append": ":/x"}
    )
    env = build_env(BASE, None, [], build_config_env_dir=config)
    assert env["HOME"] == "/home/cnb"
    assert env["CORP_CA"] == "/ca.pem"
    assert env["PATH"] == "/usr/bin:/bin:/x"


# --- launch env --------------------------------------------------------------------------------------


def test_launch_env_model(tmp_path):
    base = {
        "PATH": "/cnb/process:/cnb/lifecycle:/usr/local/bin:/usr/bin",
        "CNB_LAYERS_DIR": "/layers",
        "CNB_APP_DIR": "/workspace",
        "CNB_PLATFORM_API": "0.12",
        "LANG": "C",
    }
    py = layer(
        tmp_path,
        "py",
        "python",
        dirs=("bin", "lib", "include"),
        env={
            "env": {"PATH.prepend": "/py-extra", "PATH.delim": ":"},
            "env.build": {"BUILD_ONLY": "1"},
            "env.launch": {"LANG.override": "C.UTF-8", "PYTHONUNBUFFERED.default": "1"},
        },
    )
    env_dir(py.host / "env.launch" / "web", {"WEB_CONCURRENCY": "4"})
    venv = layer(tmp_path, "py", "venv", dirs=("bin", "lib"))
    proc = layer(tmp_path, "procfile", "p", dirs=("bin",))
    env = launch_env(base, [[venv, py], [proc]], process_type="web")
    # per buildpack: every root dir first, then the env files; later buildpacks first
    assert (
        env["PATH"]
        == "/layers/procfile/p/bin:/py-extra:/layers/py/venv/bin:/layers/py/python/bin:/usr/local/bin:/usr/bin"
    )
    assert env["LD_LIBRARY_PATH"] == "/layers/py/venv/lib:/layers/py/python/lib"
    assert "LIBRARY_PATH" not in env and "CPATH" not in env
    assert "BUILD_ONLY" not in env
    assert env["LANG"] == "C.UTF-8"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["WEB_CONCURRENCY"] == "4"
    for name in ("CNB_LAYERS_DIR", "CNB_APP_DIR", "CNB_PLATFORM_API"):
        assert name not in env
    assert "WEB_CONCURRENCY" not in launch_env(base, [[venv, py]], process_type="worker")
    assert "WEB_CONCURRENCY" not in launch_env(base, [[venv, py]])


def test_launch_env_accepts_plain_tuples(tmp_path):
    host = tmp_path / "l"
    (host / "bin").mkdir(parents=True)
    env = launch_env({"PATH": "/bin"}, [[(host, "/layers/bp/l")]])
    assert env["PATH"] == "/layers/bp/l/bin:/bin"


def test_unreadable_env_file_is_a_platform_error(tmp_path):
    root = env_dir(tmp_path / "env", {})
    (root / "DANGLING").symlink_to(tmp_path / "nowhere")
    with pytest.raises(PlatformError, match="cannot read env file"):
        add_env_dir({}, root)
