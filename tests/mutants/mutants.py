"""The mutation kit: known-bad variants of the reference buildpack, each breaking exactly one promise.

Every mutant copies `buildpack_under_test/` to a temporary directory and edits the copy with exact
text replacements. A replacement whose anchor text is missing (or not unique) raises `MutationError`
instead of silently producing an unchanged buildpack, so a refactor of the buildpack breaks the kit
loudly (`tests/mutants/test_mutants.py` applies every mutant). The shipped buildpack has no
test-only switches: everything a mutant needs is in this file.

`expected_checks` are check names as in `report.json` (`check`, without the `[app]` part). A name
without brackets matches every variant of a check (`layer_types` matches `layer_types[role=pip]`);
a name with brackets matches exactly that variant. The matrix counts a mutant as killed by an
intended check when at least one of its expected checks fails for a reason other than a build crash.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from conformance.paths import REPO_ROOT

BUILDPACK_DIR = REPO_ROOT / "buildpack_under_test"
LIB = "lib/bpconform_python"

# The default selection: every check that builds the default app (`minimal`), plus the caching,
# reproducibility, bogus-env and upgrade checks (which build the default app with their own caches).
# Left out: the error checks (detect/invalid version/missing dependency: no mutant touches those
# paths) and the other sample apps, whose checks are the same checks as `minimal`'s.
DEFAULT_SELECTION = "minimal or test_caching or test_reproducibility or test_env_overrides or test_upgrade"


class MutationError(Exception):
    """A mutant could not be applied: its anchor text is not (exactly once) in the buildpack."""


@dataclass(frozen=True)
class Edit:
    """One exact text replacement in a file of the buildpack copy."""

    path: str
    old: str
    new: str

    def apply(self, root: Path) -> None:
        target = root / self.path
        text = target.read_text(encoding="utf-8")
        count = text.count(self.old)
        if count != 1:
            raise MutationError(
                f"{self.path}: expected the anchor text exactly once, found it {count} times:\n{self.old}"
            )
        target.write_text(text.replace(self.old, self.new), encoding="utf-8")


@dataclass(frozen=True)
class Mutant:
    """A broken variant: how to make it, and which checks must fail on it."""

    name: str
    description: str
    expected_checks: tuple[str, ...]
    edits: tuple[Edit, ...] = ()
    # Extra arguments for pytest (after `--`), for platform-side variants.
    pytest_args: tuple[str, ...] = ()
    # Profile keys to change in a copy of the reference profile: {"layers.app-deps.name": "app-venv"}.
    profile_overrides: dict[str, str] = field(default_factory=dict)
    # The pytest -k expression of the mutant's suite run.
    selection: str = DEFAULT_SELECTION
    # True when the promise is "these checks fail and nothing else does" (the lifecycle#1393 variant).
    only_expected: bool = False
    why_expected: str = ""

    @property
    def changes_buildpack(self) -> bool:
        return bool(self.edits)

    def apply(self, root: Path) -> None:
        """Apply every edit to the buildpack copy at `root` (never to the shipped buildpack)."""
        if root.resolve() == BUILDPACK_DIR.resolve():
            raise MutationError(f"refusing to mutate the shipped buildpack in {BUILDPACK_DIR}")
        for edit in self.edits:
            edit.apply(root)

    def make_copy(self, parent: Path) -> Path:
        """A mutated copy of the reference buildpack under `parent` (the original is never touched)."""
        target = parent / f"buildpack-{self.name}"
        shutil.copytree(BUILDPACK_DIR, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        self.apply(target)
        return target


def _build(old: str, new: str) -> Edit:
    return Edit(f"{LIB}/build.py", old, new)


def _deps(old: str, new: str) -> Edit:
    return Edit(f"{LIB}/dependencies.py", old, new)


def _lock_steps(old: str, new: str) -> Edit:
    return Edit(f"{LIB}/lock_steps.py", old, new)


def _lockfile(old: str, new: str) -> Edit:
    return Edit(f"{LIB}/lockfile.py", old, new)


def _sbom(old: str, new: str) -> Edit:
    return Edit(f"{LIB}/sbom.py", old, new)


# The checks of conformance/suite/test_package_managers.py a lock-file mutant runs (its own -k: the
# default selection builds no uv or Poetry app).
PACKAGE_MANAGER_CHECKS = "test_package_managers"


INSTALL_PIP_CALL = """\
        pip_layer.install_pip(
            runtime.python_executable(python_layer), python_layer, pip_dir, cache_dir, pip_version, inputs.env
        )
"""

MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        name="pip-in-python-layer",
        description="pip is installed into the python layer (the pip user base is the python layer)",
        edits=(
            _build(
                "pip_dir, cache_dir = layers_dir / PIP_LAYER, layers_dir / PIP_CACHE_LAYER",
                "pip_dir, cache_dir = python_layer, layers_dir / PIP_CACHE_LAYER",
            ),
        ),
        # Not `pip_absent_at_runtime[command=python -m pip --version]` nor `user_site_does_not_leak_pip`:
        # at run time `python` is the venv's, which does not see the runtime's site-packages.
        expected_checks=(
            "pip_absent_at_runtime[command=pip --version]",
            "pip_absent_at_runtime[command=pip3 --version]",
            "pip_version_change_invalidates_only_pip",
        ),
        why_expected="the python layer ships pip's scripts on PATH at launch, and a pip bump now rewrites the python"
        " layer; the venv's `python` still cannot import it",
    ),
    Mutant(
        name="pip-layer-launch",
        description="the pip layer is marked launch = true",
        edits=(
            _build(
                "PIP_TYPES = LayerTypes(build=True, launch=False, cache=True)",
                "PIP_TYPES = LayerTypes(build=True, launch=True, cache=True)",
            ),
        ),
        expected_checks=("layer_types[role=package-manager]", "layer_in_image[role=package-manager]"),
        why_expected="the layer's types differ from the profile and the layer appears in the image",
    ),
    Mutant(
        name="venv-sorts-before-python",
        description="the venv layer is renamed app-venv, which sorts before python (PATH order flips)",
        edits=(_build('VENV_LAYER = "venv"', 'VENV_LAYER = "app-venv"'),),
        # The profile is told the new name, so layer checks find the layer and the kill comes from
        # the order itself, not from a missing `venv` layer.
        profile_overrides={"layers.app-deps.name": "app-venv"},
        expected_checks=("launch_path_order", "build_time_path_order"),
        why_expected="with the profile renamed too, only the order is wrong: python/bin comes before app-venv/bin",
    ),
    Mutant(
        name="venv-cached",
        description="the venv is marked cache = true and a restored venv is reused instead of recreated",
        edits=(
            _build(
                "VENV_TYPES = LayerTypes(build=True, launch=True, cache=False)",
                "VENV_TYPES = LayerTypes(build=True, launch=True, cache=True)",
            ),
            _build(
                "    venv_dir = fresh_layer_dir(inputs.layers_dir, VENV_LAYER)\n",
                "    venv_dir = inputs.layers_dir / VENV_LAYER\n"
                "    if not venv_dir.is_dir():\n"
                "        venv_dir = fresh_layer_dir(inputs.layers_dir, VENV_LAYER)\n",
            ),
        ),
        expected_checks=(
            "venv_never_keeps_removed_dependency",
            "layer_types[role=app-deps]",
            "layer_in_image[role=app-deps]",
        ),
        why_expected="pip never removes packages, so the restored venv keeps the dropped requirement",
    ),
    Mutant(
        name="deps-via-pythonpath",
        description="dependencies go in with pip --target (PIP_TARGET) and are exposed through PYTHONPATH, no venv",
        edits=(
            _build(
                "    dependencies.create_venv(python, venv_dir, inputs.env)\n"
                '    write_env(venv_dir, "env", "VIRTUAL_ENV", str(venv_dir), "override")\n'
                '    write_env(venv_dir, "env.build", "PIP_PYTHON", str(venv_dir), "override")\n',
                '    (venv_dir / "packages").mkdir()\n'
                '    write_env(venv_dir, "env", "PYTHONPATH", str(venv_dir / "packages"), "override")\n',
            ),
            _build(
                "    dependencies.make_group_writable(venv_dir)\n",
                "",
            ),
            _deps("PIP_PYTHON=str(venv_dir),", 'PIP_TARGET=str(venv_dir / "packages"),'),
        ),
        expected_checks=("launch_env", "launch_path_order"),
        why_expected="PYTHONPATH is forbidden and VIRTUAL_ENV required at launch; no venv bin on PATH",
    ),
    Mutant(
        name="venv-with-pip",
        description="the venv is created with pip (no --without-pip)",
        edits=(
            _deps(
                '[str(python), "-m", "venv", "--without-pip", str(venv_dir)]',
                '[str(python), "-m", "venv", str(venv_dir)]',
            ),
        ),
        expected_checks=("pip_absent_at_runtime", "user_site_does_not_leak_pip"),
        why_expected="pip, pip3 and python -m pip all work from the venv at run time",
    ),
    Mutant(
        name="python-key-has-pip-version",
        description="the python layer's cache key includes the pip version",
        edits=(
            _build(
                "    metadata = python_layer_metadata(chosen.version, inputs.target, chosen.sha256)\n",
                "    metadata = python_layer_metadata(chosen.version, inputs.target, chosen.sha256)\n"
                '    metadata["pip-version"] = inputs.config.pip_version\n',
            ),
        ),
        expected_checks=("pip_version_change_invalidates_only_pip",),
        why_expected="a pip bump discards the cached Python (the rebuild does not say 'Using cached Python')",
    ),
    Mutant(
        name="nondeterministic-python-layer",
        description="a random file is written into the python layer when it is installed",
        edits=(
            _build(
                "        runtime.install_runtime(chosen, layer, inputs.env)\n",
                "        runtime.install_runtime(chosen, layer, inputs.env)\n"
                '        (layer / "install-id.txt").write_text(__import__("uuid").uuid4().hex)\n',
            ),
        ),
        expected_checks=("runtime_layer_reproducible", "runtime_layer_shared_between_apps"),
        why_expected="two clean builds (and two apps) get different python layer digests",
    ),
    Mutant(
        name="ensurepip-wheel-removed",
        description="the bundled ensurepip pip wheel is deleted from the python layer after pip is installed",
        edits=(
            _build(
                INSTALL_PIP_CALL,
                INSTALL_PIP_CALL
                + '        for wheel in python_layer.glob("lib/python3.*/ensurepip/_bundled/pip-*.whl"):\n'
                + "            wheel.unlink()\n",
            ),
        ),
        expected_checks=("ensurepip_recovers_pip_offline",),
        why_expected="python -m ensurepip has no wheel to install from and there is no network",
    ),
    Mutant(
        name="pip-cache-launch",
        description="the pip-cache layer is marked launch = true",
        edits=(
            _build(
                "PIP_CACHE_TYPES = LayerTypes(build=False, launch=False, cache=True)",
                "PIP_CACHE_TYPES = LayerTypes(build=False, launch=True, cache=True)",
            ),
        ),
        expected_checks=("layer_types[role=package-cache]", "layer_in_image[role=package-cache]"),
        why_expected="the layer's types differ from the profile and pip's cache ships in the image",
    ),
    Mutant(
        name="silent-cache-decisions",
        description="the reuse/invalidation log lines of the python, pip and pip-cache layers are dropped",
        edits=(
            _build("    log.line(decision.message)\n", ""),
            _build("    log.line(pip_decision.message)\n    log.line(cache_decision.message)\n", ""),
        ),
        expected_checks=(
            "rebuild_reuses_cached_layers",
            "python_version_change_invalidates_runtime",
            "pip_version_change_invalidates_only_pip",
            "upgrade_from_previous_release",
        ),
        why_expected="each of these checks requires the reuse or invalidation message in the build output",
    ),
    Mutant(
        name="uv-layer-launch",
        description="the uv layer is marked launch = true",
        edits=(
            _lock_steps(
                "UV_TYPES = LayerTypes(build=True, launch=False, cache=True)",
                "UV_TYPES = LayerTypes(build=True, launch=True, cache=True)",
            ),
        ),
        selection=f"{PACKAGE_MANAGER_CHECKS} and uv and (tool_layer or tool_absent)",
        expected_checks=(
            "tool_layer_types[manager=uv]",
            "tool_layers_not_in_image[manager=uv]",
            "tool_absent_at_runtime[manager=uv,tool=uv]",
        ),
        why_expected="the uv layer's types differ from the profile, it ships in the image and its bin/ is on PATH",
    ),
    Mutant(
        name="uv-sync-not-locked",
        description="`uv sync` runs without --locked (a stale uv.lock is silently re-resolved)",
        edits=(_lockfile('        "sync",\n        "--locked",\n', '        "sync",\n'),),
        selection=f"{PACKAGE_MANAGER_CHECKS} and uv and stale_lock",
        expected_checks=("stale_lock_fails_with_message[manager=uv]",),
        why_expected="the stale-lock app no longer fails with the profile's stale-lock message",
    ),
    Mutant(
        name="dev-group-installed",
        description="the dev dependency group is installed (uv without --no-default-groups, Poetry without"
        " --only main)",
        edits=(
            _lockfile('        "--locked",\n        "--no-default-groups",\n', '        "--locked",\n'),
            _lockfile('        "sync",\n        "--only",\n        "main",\n', '        "sync",\n'),
        ),
        selection=f"{PACKAGE_MANAGER_CHECKS} and dev_dependencies",
        expected_checks=("dev_dependencies_not_installed",),
        why_expected="idna, in the apps' dev group, is installed at run time",
    ),
    Mutant(
        name="uv-may-manage-python",
        description="uv may download and use a Python of its own (no UV_PYTHON_DOWNLOADS=never, UV_NO_MANAGED_PYTHON)",
        edits=(
            _lock_steps(
                '    write_env(uv_dir, "env.build", "UV_PYTHON_DOWNLOADS", "never", "override")\n'
                '    write_env(uv_dir, "env.build", "UV_NO_MANAGED_PYTHON", "1", "override")\n',
                "",
            ),
            _lockfile('        UV_PYTHON_DOWNLOADS="never",\n        UV_NO_MANAGED_PYTHON="1",\n', ""),
        ),
        selection=f"{PACKAGE_MANAGER_CHECKS} and uv and (build_env or runtime_python)",
        expected_checks=("tool_build_env_for_later_buildpacks[manager=uv]",),
        why_expected="a later buildpack's uv is no longer told to keep to the buildpack's Python; offline, uv's own"
        " sync still gets --python, so the venv stays on the runtime layer",
    ),
    Mutant(
        name="locked-venv-kept-on-python-change",
        description="the lock-file venv's cache key leaves out the Python version (kept when Python changes)",
        edits=(
            _lock_steps(
                '        "package-manager-version": tool_version(inputs, manager),\n'
                '        "python-version": python_version,\n',
                '        "package-manager-version": tool_version(inputs, manager),\n',
            ),
        ),
        selection=f"{PACKAGE_MANAGER_CHECKS} and uv and python_change",
        expected_checks=("python_change_discards_locked_venv[manager=uv]",),
        why_expected="the rebuild on the other Python does not say the venv was discarded because Python changed",
    ),
    Mutant(
        name="sbom-lists-pip",
        description="the venv layer's SBOM also lists pip, which is not installed there (a build-only tool)",
        edits=(
            _sbom(
                "    return document([pypi_component(name, version) for name, version in"
                " installed_distributions(venv_dir)])\n",
                "    listed = [pypi_component(name, version) for name, version in installed_distributions(venv_dir)]\n"
                '    return document([*listed, pypi_component("pip", "25.3")])\n',
            ),
        ),
        selection="launch_sbom and (minimal or uv)",
        expected_checks=("launch_sbom_lists_venv_distributions", "launch_sbom_lists_locked_venv_distributions"),
        why_expected="the exported launch SBOM of the venv lists pip 25.3, which the venv does not contain",
    ),
    Mutant(
        name="lifecycle-1393",
        description="platform side: build-time layer env applied in the pre-0.20.1 order (buildpacks/lifecycle#1393)",
        pytest_args=("--emulate-lifecycle-1393",),
        expected_checks=("build_time_path_order", "bogus_user_env_does_not_win"),
        only_expected=True,
        why_expected="only a later buildpack's build-time env is affected (PATH order, also behind a user's bogus"
        " PATH); launch is unchanged",
    ),
)


def by_name(name: str) -> Mutant:
    for mutant in MUTANTS:
        if mutant.name == name:
            return mutant
    raise KeyError(f"no mutant named {name!r}; known: {', '.join(m.name for m in MUTANTS)}")


def check_matches(expected: str, check: str) -> bool:
    """`layer_types` matches every `layer_types[...]`; `layer_types[role=x]` matches only itself."""
    if "[" in expected:
        return check == expected
    return check == expected or check.startswith(expected + "[")


def is_expected(mutant: Mutant, check: str) -> bool:
    return any(check_matches(expected, check) for expected in mutant.expected_checks)
