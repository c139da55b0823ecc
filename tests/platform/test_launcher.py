"""The embedded launcher (a POSIX sh script) against the lifecycle's launch semantics.

No Docker: the host's /bin/sh is dash, like the run image's. Each test lays out a fake image (lifecycle
dir with the generated files, layers, app dir) in a temp dir and runs the script as a process would start,
then asserts on what the child process sees.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.errors import PlatformError
from conformance.platform import spec
from conformance.platform.launcher import (
    ProcessSpec,
    launcher_script,
    order_file,
    process_file,
    process_files,
)

# A child that reports what it sees.
REPORT = "import json, os, sys; print(json.dumps({'env': dict(os.environ), 'argv': sys.argv[1:], 'cwd': os.getcwd()}))"
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict:
        assert self.returncode == 0, f"launcher failed ({self.returncode}): {self.stderr}"
        return json.loads(self.stdout.strip().splitlines()[-1])

    @property
    def env(self) -> dict[str, str]:
        return self.report["env"]


class FakeImage:
    """A lifecycle dir, a process dir, a layers dir and an app dir, as the exporter would lay them out."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lifecycle = root / "cnb" / "lifecycle"
        self.process_dir = root / "cnb" / "process"
        self.layers = root / "layers"
        self.app = root / "workspace"
        for directory in (self.lifecycle, self.process_dir, self.layers, self.app):
            directory.mkdir(parents=True)
        self.launcher = self.lifecycle / "launcher"
        self.launcher.write_bytes(launcher_script())
        self.launcher.chmod(0o755)
        self.set_order([])
        self.reporter = root / "report"
        self.reporter.write_text(f"#!{sys.executable}\n{REPORT}\n")
        self.reporter.chmod(0o755)

    def set_order(self, escaped_ids: list[str]) -> None:
        (self.lifecycle / "order").write_bytes(order_file(escaped_ids))

    def set_processes(self, processes: list[ProcessSpec], default_type: str | None = None) -> None:
        for relative, content in process_files(processes, default_type).items():
            path = self.lifecycle / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        for process in processes:
            (self.process_dir / process.type).symlink_to(self.launcher)

    def layer(self, bp: str, name: str, *dirs: str) -> Path:
        layer = self.layers / bp / name
        layer.mkdir(parents=True, exist_ok=True)
        for directory in dirs:
            (layer / directory).mkdir(parents=True, exist_ok=True)
        return layer

    def env_file(self, bp: str, layer: str, relative: str, content: str | bytes) -> None:
        path = self.layers / bp / layer / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)

    def exec_d(self, bp: str, layer: str, relative: str, script: str) -> Path:
        path = self.layers / bp / layer / "exec.d" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n" + script)
        path.chmod(0o755)
        return path

    def run(self, argv0: Path | None = None, *args: str, env: dict[str, str] | None = None) -> Result:
        full_env = {
            "PATH": f"/cnb/process:{self.lifecycle}:{BASE_PATH}",
            "CNB_LAYERS_DIR": str(self.layers),
            "CNB_APP_DIR": str(self.app),
            "CNB_LIFECYCLE_DIR": str(self.lifecycle),
            "CNB_PLATFORM_API": "0.12",
            "HOME": "/root",
        }
        full_env.update(env or {})
        completed = subprocess.run(
            [str(argv0 or self.launcher), *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.root,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    def run_process(self, process_type: str, *args: str, env: dict[str, str] | None = None) -> Result:
        return self.run(self.process_dir / process_type, *args, env=env)

    def process(self, process_type: str = "web", **kwargs) -> ProcessSpec:
        """A process whose single-entry command reports what it sees."""
        return ProcessSpec(
            type=process_type,
            command=[str(self.reporter)],
            args=kwargs.pop("args", []),
            working_dir=kwargs.pop("working_dir", None),
            default=kwargs.pop("default", False),
            **kwargs,
        )


@pytest.fixture
def image(tmp_path: Path) -> FakeImage:
    return FakeImage(tmp_path)


# ------------------------------------------------------------------------------------------------ env


def test_path_puts_later_buildpacks_and_later_layers_first(image: FakeImage) -> None:
    python = image.layer("acme_python", "python", "bin", "lib")
    venv = image.layer("acme_python", "venv", "bin", "lib")
    tool = image.layer("acme_tool", "tool", "bin")
    image.layer("acme_tool", "nobin")  # a layer without root dirs changes nothing
    image.layer("not-in-group", "ignored", "bin")
    image.set_order(["acme_python", "acme_tool"])
    image.set_processes([image.process()])

    env = image.run_process("web").env

    assert env["PATH"] == f"{tool}/bin:{venv}/bin:{python}/bin:{BASE_PATH}"
    assert env["LD_LIBRARY_PATH"] == f"{venv}/lib:{python}/lib"


def test_root_dirs_of_all_layers_come_before_any_env_file_of_the_buildpack(image: FakeImage) -> None:
    image.env_file("bp", "a", "env.launch/PATH.prepend", "/from-a")
    image.env_file("bp", "a", "env.launch/PATH.delim", ":")
    b = image.layer("bp", "b", "bin")
    image.set_order(["bp"])
    image.set_processes([image.process()])

    # roots of a and b, then a's env files: a's prepend ends up before b/bin
    assert image.run_process("web").env["PATH"] == f"/from-a:{b}/bin:{BASE_PATH}"


def test_env_file_suffixes_follow_the_lifecycle(image: FakeImage) -> None:
    files = {
        "PLAIN": "plain",
        "OVER.override": "over",
        "DEF_UNSET.default": "d1",
        "DEF_SET.default": "d2",
        "DEF_EMPTY.default": "d3",
        "PRE.prepend": "pre",
        "APP.append": "app",
        "PRED.prepend": "pred",
        "PRED.delim": "|",
        "APPD.append": "appd",
        "APPD.delim": "::",
        "COLON.": "/first",
        "UNKNOWN.weird": "x",
        "NEWPRE.prepend": "only",
    }
    for name, content in files.items():
        image.env_file("bp", "layer", f"env/{name}", content)
    image.set_order(["bp"])
    image.set_processes([image.process()])
    before = {
        "OVER": "old",
        "DEF_SET": "kept",
        "DEF_EMPTY": "",
        "PRE": "old",
        "APP": "old",
        "PRED": "old",
        "APPD": "old",
        "COLON": "/second",
        "UNKNOWN": "untouched",
    }

    env = image.run_process("web", env=before).env

    assert env["PLAIN"] == "plain"
    assert env["OVER"] == "over"
    assert env["DEF_UNSET"] == "d1"
    assert env["DEF_SET"] == "kept"
    assert env["DEF_EMPTY"] == "d3"  # empty counts as unset, like the lifecycle's Vars.Get
    assert env["PRE"] == "preold"  # no default delimiter
    assert env["APP"] == "oldapp"
    assert env["PRED"] == "pred|old"
    assert env["APPD"] == "old::appd"
    assert env["COLON"] == "/first:/second"  # a bare "." prepends with the path separator
    assert env["UNKNOWN"] == "untouched"
    assert "UNKNOWN.weird" not in env and "weird" not in env
    assert env["NEWPRE"] == "only"  # no delimiter in front when there was no value


def test_env_files_of_env_and_env_launch_apply_in_order_and_per_process(image: FakeImage) -> None:
    image.env_file("bp", "layer", "env/ORDER.append", "env")
    image.env_file("bp", "layer", "env.launch/ORDER.append", "+launch")
    image.env_file("bp", "layer", "env.launch/web/ORDER.append", "+web")
    image.env_file("bp", "layer", "env.build/BUILD_ONLY", "no")
    image.env_file("bp", "layer", "env.launch/worker/WORKER_ONLY", "yes")
    image.set_order(["bp"])
    image.set_processes([image.process("web"), image.process("worker")])

    web = image.run_process("web").env
    worker = image.run_process("worker").env
    direct = image.run(None, "--", sys.executable, "-c", REPORT).env

    assert web["ORDER"] == "env+launch+web"
    assert "WORKER_ONLY" not in web and "BUILD_ONLY" not in web
    assert worker["ORDER"] == "env+launch"
    assert worker["WORKER_ONLY"] == "yes"
    assert direct["ORDER"] == "env+launch"  # a user command has no process type
    assert "WORKER_ONLY" not in direct


def test_later_buildpack_and_later_layer_env_files_win(image: FakeImage) -> None:
    for bp, layer in [("bp1", "a"), ("bp1", "b"), ("bp2", "a")]:
        image.env_file(bp, layer, "env.launch/LIST.prepend", f"{bp}/{layer}")
        image.env_file(bp, layer, "env.launch/LIST.delim", ",")
    image.set_order(["bp1", "bp2"])
    image.set_processes([image.process()])

    assert image.run_process("web").env["LIST"] == "bp2/a,bp1/b,bp1/a"


def test_values_are_used_byte_for_byte(image: FakeImage) -> None:
    value = "line one\n  line 'two' \"$(touch /tmp/pwned)\" \\n\t\n\n"
    image.env_file("bp", "layer", "env/MULTI", value)
    image.env_file("bp", "layer", "env/SPACES", "  padded  ")
    image.env_file("bp", "layer", "env/DELIMITED.append", "b")
    image.env_file("bp", "layer", "env/DELIMITED.delim", "\n")
    image.set_order(["bp"])
    image.set_processes([image.process()])

    env = image.run_process("web", env={"DELIMITED": "a"}).env

    assert env["MULTI"] == value
    assert env["SPACES"] == "  padded  "
    assert env["DELIMITED"] == "a\nb"


def test_invalid_variable_names_are_skipped_with_a_warning(image: FakeImage) -> None:
    image.env_file("bp", "layer", "env/my-var.default", "x")
    image.env_file("bp", "layer", "env/1ST", "x")
    image.env_file("bp", "layer", "env/GOOD", "fine")
    image.set_order(["bp"])
    image.set_processes([image.process()])

    result = image.run_process("web")

    assert result.env["GOOD"] == "fine"
    assert "my-var" not in result.env and "1ST" not in result.env
    assert "'my-var' is not a valid shell variable name" in result.stderr
    assert "'1ST' is not a valid shell variable name" in result.stderr


def test_symlinked_layers_and_subdirectories_of_env_dirs_are_not_env(image: FakeImage) -> None:
    real = image.layer("bp", "real", "bin")
    (image.layers / "bp" / "linked").symlink_to(real)
    image.env_file("bp", "real", "env/sub/NESTED", "x")
    image.set_order(["bp"])
    image.set_processes([image.process()])

    env = image.run_process("web").env

    assert env["PATH"] == f"{real}/bin:{BASE_PATH}"
    assert "NESTED" not in env and "sub" not in env


def test_launcher_inputs_are_removed_from_the_process_env(image: FakeImage) -> None:
    image.set_processes([image.process()])

    env = image.run_process("web", env={"CNB_PROCESS_TYPE": "web", "CNB_DEPRECATION_MODE": "warn", "KEEP": "1"}).env

    for name in ("CNB_LAYERS_DIR", "CNB_APP_DIR", "CNB_PLATFORM_API", "CNB_PROCESS_TYPE", "CNB_DEPRECATION_MODE"):
        assert name not in env
    assert "CNB_LIFECYCLE_DIR" not in env
    assert env["PATH"] == BASE_PATH  # /cnb/process and the lifecycle dir are stripped
    assert env["KEEP"] == "1"
    assert "PWD" not in env and "OLDPWD" not in env  # the Go launcher's chdir sets neither


# ------------------------------------------------------------------------------------------------ exec.d


def test_exec_d_overrides_variables_with_escapes(image: FakeImage) -> None:
    image.env_file("bp", "layer", "env.launch/FROM_ENV", "seen")
    image.exec_d(
        "bp",
        "layer",
        "10-first",
        """echo "this goes to stdout, not parsed"
cat >&3 <<'EOF'
# a comment

QUOTED = "say \\"hi\\" \\\\ back\\nslash\\ttab"  # trailing comment
LITERAL = 'C:\\no\\escapes'
"KEY_QUOTED"="x"
UNICODE = "caf\\u00e9 \\U0001F600"
OVERRIDDEN = "by exec.d"
ECHO = "$FROM_ENV"
EOF
printf 'ECHO_ENV = "%s"\\n' "$FROM_ENV" >&3
""",
    )
    image.exec_d("bp", "layer", "20-second", 'printf \'SECOND="2"\\r\\n\\tTAB_KEY\\t=\\t"t"\\n\' >&3\n')
    image.exec_d("bp", "layer", "30-silent", "exit 0\n")
    image.set_order(["bp"])
    image.set_processes([image.process()])

    result = image.run_process("web", env={"OVERRIDDEN": "old"})
    env = result.env

    assert env["QUOTED"] == 'say "hi" \\ back\nslash\ttab'
    assert env["LITERAL"] == "C:\\no\\escapes"
    assert env["KEY_QUOTED"] == "x"
    assert env["UNICODE"] == "café 😀"
    assert env["OVERRIDDEN"] == "by exec.d"
    assert env["ECHO"] == "$FROM_ENV"  # values are data, never expanded
    assert env["ECHO_ENV"] == "seen"  # exec.d programs run with the launch env
    assert env["SECOND"] == "2"  # no spaces, CRLF line ending
    assert env["TAB_KEY"] == "t"
    assert result.stdout.startswith("this goes to stdout, not parsed\n")


def test_exec_d_runs_after_all_env_files_and_per_process(image: FakeImage) -> None:
    image.exec_d("bp1", "layer", "set", "echo 'LATE = \"exec.d\"' >&3\n")
    image.env_file("bp2", "layer", "env.launch/LATE", "env file")
    image.exec_d("bp1", "layer", "web/only-web", "echo 'WEB_EXEC_D = \"yes\"' >&3\n")
    image.set_order(["bp1", "bp2"])
    image.set_processes([image.process("web"), image.process("worker")])

    web = image.run_process("web").env
    worker = image.run_process("worker").env

    assert web["LATE"] == "exec.d"  # bp2's env file was applied before bp1's exec.d ran
    assert web["WEB_EXEC_D"] == "yes"
    assert "WEB_EXEC_D" not in worker


def test_exec_d_runs_in_the_app_dir(image: FakeImage) -> None:
    image.exec_d("bp", "layer", "where", 'printf \'WHERE = "%s"\\n\' "$(pwd)" >&3\n')
    image.set_order(["bp"])
    image.set_processes([image.process(working_dir="/")])

    assert image.run_process("web").env["WHERE"] == str(image.app.resolve())


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("NAME = 1", "must be a string"),
        ('NAME = "unterminated', "unterminated"),
        ("[table]", "tables are not supported"),
        ('a.b = "x"', "dotted keys"),
        ('NAME "x"', "expected '='"),
        ('NAME = "bad \\q escape"', "invalid escape"),
        ('NAME = "x" trailing', "unexpected text"),
        ('NAME = """x"""', "multi-line"),
        ('NAME = "a"\nNAME = "b"', "defined twice"),
    ],
)
def test_malformed_exec_d_output_fails_naming_the_program(image: FakeImage, output: str, reason: str) -> None:
    program = image.exec_d("bp", "layer", "broken", f"cat >&3 <<'EOF'\n{output}\nEOF\n")
    image.set_order(["bp"])
    image.set_processes([image.process()])

    result = image.run_process("web")

    assert result.returncode == 82
    assert str(program) in result.stderr
    assert reason in result.stderr
    assert result.stdout == ""  # the process never started


def test_failing_exec_d_program_fails_the_launch(image: FakeImage) -> None:
    program = image.exec_d("bp", "layer", "fails", "exit 3\n")
    image.set_order(["bp"])
    image.set_processes([image.process()])

    result = image.run_process("web")

    assert result.returncode == 82
    assert f"failed to execute exec.d file at path '{program}': exit status 3" in result.stderr


def test_exec_d_invalid_key_is_skipped_with_a_warning(image: FakeImage) -> None:
    image.exec_d("bp", "layer", "keys", "echo 'bad-key = \"x\"' >&3; echo 'OK = \"y\"' >&3\n")
    image.set_order(["bp"])
    image.set_processes([image.process()])

    result = image.run_process("web")

    assert result.env["OK"] == "y"
    assert "bad-key" not in result.env
    assert "skipping 'bad-key'" in result.stderr


# ------------------------------------------------------------------------------------------------ processes


def test_process_is_selected_by_argv0(image: FakeImage) -> None:
    image.set_processes([image.process("web", args=["w"]), image.process("worker", args=["k"])])

    assert image.run_process("web").report["argv"] == ["w"]
    assert image.run_process("worker").report["argv"] == ["k"]


def test_user_args_replace_process_args_for_buildpack_api_0_9_and_later(image: FakeImage) -> None:
    image.set_processes([image.process(args=["default-arg"], buildpack_api="0.10")])

    assert image.run_process("web").report["argv"] == ["default-arg"]
    assert image.run_process("web", "user 1", "$HOME").report["argv"] == ["user 1", "$HOME"]


def test_user_args_are_appended_for_buildpack_api_before_0_9(image: FakeImage) -> None:
    image.set_processes([image.process(args=["default-arg"], buildpack_api="0.8")])

    assert image.run_process("web", "user").report["argv"] == ["default-arg", "user"]


def test_extra_command_entries_are_always_passed(image: FakeImage) -> None:
    process = ProcessSpec("web", [sys.executable, "-c", REPORT, "fixed"], ["overridable"], None, True, "0.8")
    image.set_processes([process])

    assert image.run_process("web").report["argv"] == ["fixed", "overridable"]
    assert image.run_process("web", "user").report["argv"] == ["fixed", "user"]


def test_command_is_resolved_on_the_launch_path(image: FakeImage) -> None:
    tools = image.layer("bp", "tools", "bin")
    shim = tools / "bin" / "report"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -c "{REPORT}" "$@"\n')
    shim.chmod(0o755)
    image.set_order(["bp"])
    image.set_processes([ProcessSpec("web", ["report", "a"], [], None, True)])

    assert image.run_process("web").report["argv"] == ["a"]


def test_working_dir_defaults_to_the_app_dir_and_may_be_relative_to_it(image: FakeImage) -> None:
    (image.app / "sub").mkdir()
    image.set_processes(
        [image.process("web"), image.process("rel", working_dir="sub"), image.process("abs", working_dir="/tmp")]
    )

    assert image.run_process("web").report["cwd"] == str(image.app.resolve())
    assert image.run_process("rel").report["cwd"] == str((image.app / "sub").resolve())
    assert image.run_process("abs").report["cwd"] == "/tmp"


def test_direct_command_after_double_dash(image: FakeImage) -> None:
    image.env_file("bp", "layer", "env.launch/FROM_LAYER", "yes")
    image.set_order(["bp"])
    image.set_processes([image.process("web", args=["not used"])], "web")

    report = image.run(None, "--", sys.executable, "-c", REPORT, "$HOME", "two words").report

    assert report["argv"] == ["$HOME", "two words"]  # direct: no shell expansion
    assert report["cwd"] == str(image.app.resolve())
    assert report["env"]["FROM_LAYER"] == "yes"


@pytest.mark.skipif(not Path("/bin/bash").exists(), reason="the lifecycle runs user commands with /bin/bash")
def test_user_command_without_double_dash_runs_through_bash_with_profiles(image: FakeImage) -> None:
    image.env_file("bp", "layer", "env.launch/GREETING", "hello")
    image.env_file("bp", "layer", "profile.d/10-set.sh", "export FROM_PROFILE=profiled\n")
    (image.app / ".profile").write_text("export FROM_APP_PROFILE=app\n")
    image.set_order(["bp"])
    image.set_processes([image.process()])

    tokens = image.run(None, "printf", "%s|", "$GREETING", "$FROM_PROFILE", "$FROM_APP_PROFILE")
    script = image.run(None, "echo $GREETING-$FROM_PROFILE")

    assert tokens.returncode == 0, tokens.stderr
    assert tokens.stdout == "hello|profiled|app|"
    assert script.stdout == "hello-profiled\n"


def test_a_process_type_name_as_a_launcher_argument_is_a_command(image: FakeImage) -> None:
    """Platform API >= 0.10: only argv0 selects a process; `launcher web` runs a command named web."""
    image.set_processes([image.process("web")])

    result = image.run(None, "--", "web")

    assert result.returncode == 82
    assert 'exec: "web": executable file not found in $PATH' in result.stderr


def test_no_command_and_no_process_type_is_a_launch_error(image: FakeImage) -> None:
    image.set_processes([image.process("web")], "web")

    result = image.run(None)

    assert result.returncode == 82
    assert "when there is no default process a command is required" in result.stderr
    assert "/cnb/process/web" in result.stderr  # the hint names the default process's entrypoint


def test_missing_command_is_a_launch_error(image: FakeImage) -> None:
    image.set_processes([ProcessSpec("web", ["no-such-command-xyz"], [], None, True)])

    result = image.run_process("web")

    assert result.returncode == 82
    assert "no-such-command-xyz" in result.stderr


def test_exec_env_filters_processes_from_platform_api_0_15(image: FakeImage) -> None:
    image.set_processes([image.process("test", exec_env=["test"]), image.process("any", exec_env=["*"])])

    refused = image.run_process("test", env={"CNB_PLATFORM_API": "0.15"})
    allowed = image.run_process("test", env={"CNB_PLATFORM_API": "0.15", "CNB_EXEC_ENV": "test"})
    older_platform = image.run_process("test", env={"CNB_PLATFORM_API": "0.14"})

    assert refused.returncode == 82 and "process type test was not found" in refused.stderr
    assert allowed.returncode == 0 and older_platform.returncode == 0
    assert image.run_process("any", env={"CNB_PLATFORM_API": "0.15"}).returncode == 0


def test_missing_order_file_says_the_image_was_not_exported_by_us(image: FakeImage) -> None:
    (image.lifecycle / "order").unlink()

    result = image.run(None, "--", "true")

    assert result.returncode == 1
    assert "read metadata" in result.stderr


def test_missing_app_dir_is_a_launch_error(image: FakeImage) -> None:
    image.set_processes([image.process()])

    result = image.run_process("web", env={"CNB_APP_DIR": str(image.root / "nope")})

    assert result.returncode == 82
    assert "change to app directory" in result.stderr


# ------------------------------------------------------------------------------------------------ Python side


def test_process_files_source_back_to_the_exact_values(tmp_path: Path) -> None:
    tricky = ["it's", 'a "quote"', "$(touch pwned)", "new\nline", "", "back\\slash"]
    files = process_files([ProcessSpec("web", ["cmd", *tricky], tricky, "/some dir", True)], None)
    (tmp_path / "web").write_bytes(files["processes/web"])

    code = (
        '. ./web; i=1; while [ "$i" -le "$_cnb_proc_command_count" ]; do eval "printf \'%s\\0\' '
        '\\"\\$_cnb_proc_command_$i\\""; i=$((i+1)); done; printf "%s\\0" "$_cnb_proc_working_dir" '
        '"$_cnb_proc_user_args"'
    )
    out = subprocess.run(["/bin/sh", "-c", code], cwd=tmp_path, capture_output=True, check=True).stdout

    assert out.decode().split("\0")[:-1] == ["cmd", *tricky, "/some dir", "replace"]
    assert not (tmp_path / "pwned").exists()
    assert files["default-process"] == b"web\n"


def test_process_files_validate_types_and_defaults() -> None:
    web = ProcessSpec("web", ["a"], [], None, True)
    worker = ProcessSpec("worker", ["b"], [], None, True)

    with pytest.raises(PlatformError, match="invalid process type"):
        process_files([ProcessSpec("../evil", ["a"], [], None, False)], None)
    with pytest.raises(PlatformError, match="several processes are marked default"):
        process_files([web, worker], None)
    with pytest.raises(PlatformError, match="not one of the image's processes"):
        process_files([web], "other")
    with pytest.raises(PlatformError, match="defined twice"):
        process_files([web, web], None)
    assert process_files([web, worker], "worker")["default-process"] == b"worker\n"
    assert "default-process" not in process_files([ProcessSpec("web", ["a"], [], None, False)], None)


def test_user_args_rule_follows_the_buildpack_api() -> None:
    assert b"_cnb_proc_user_args=append" in process_file(ProcessSpec("w", ["a"], [], None, False, "0.8"))
    assert b"_cnb_proc_user_args=replace" in process_file(ProcessSpec("w", ["a"], [], None, False, "0.9"))
    with pytest.raises(PlatformError, match="not a version"):
        process_file(ProcessSpec("w", ["a"], [], None, False, "latest"))


def test_order_file_rejects_unescaped_ids() -> None:
    assert order_file(["a_b", "c"]) == b"a_b\nc\n"
    with pytest.raises(PlatformError, match="escaped"):
        order_file(["a/b"])


def test_launcher_script_is_installed_at_the_lifecycle_path() -> None:
    assert spec.LAUNCHER_PATH == "/cnb/lifecycle/launcher"
    assert launcher_script().startswith(b"#!/bin/sh\n")


def test_launcher_script_takes_its_exit_code_and_type_rule_from_spec() -> None:
    """The script's own copies of spec values are rewritten from spec.py, each exactly once."""
    script = launcher_script()
    assert script.count(b"\n_cnb_launch_error=") == 1
    assert b"\n_cnb_launch_error=82\n" in script  # the lifecycle's LaunchError (platform/exit.go)
    assert b"\n_cnb_type_forbidden=" + shlex.quote(spec.PROCESS_TYPE_FORBIDDEN).encode() + b"\n" in script


def test_script_parses_with_dash() -> None:
    dash = shutil.which("dash") or "/bin/sh"
    subprocess.run([dash, "-n", "-c", launcher_script().decode()], check=True)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_script_passes_shellcheck(tmp_path: Path) -> None:
    script = tmp_path / "launcher"
    script.write_bytes(launcher_script())
    result = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
