"""The rebuild history of a lock-file app: one chain of builds per package manager, shared by checks.

The venv of a uv or Poetry app is cached, so the promises are about what happens on the *next*
build: reused when nothing changed, gone stale dependencies when the lock drops one, discarded
(with the reason) when the Python version, the tool version or the package manager changes. Each
of those needs a first build and a rebuild; done one check at a time they cost two builds each.
Here they are the steps of one chain under one image name and one cache, built once per session
in this order, each step changing exactly one input against the step before:

1. `first`: the manager's main app on the profile's default Python;
2. `unchanged`: the same again (the venv must be reused);
3. `removed-dependency`: the manager's removed-dependency app (a dependency dropped from the
   project and its lock; the venv is reused and the tool must sync it away);
4. `python`: the main app on the profile's alternative Python (the venv must be discarded);
5. `tool-version`: the same with the manager's other tool version, in a copy of the buildpack;
6. `switch` (uv's chain only, when the profile has Poetry too): the Poetry main app.

A step whose input the profile does not define is left out (its check skips with that reason) and
the chain goes on from the step before. A step's build failure is kept and raised again for every
later step, as the buildpack's failure (its checks are FAILs whose reason is that build).

What a check needs of a step is taken right after the build, before the next step replaces the
image: the output, the layer records, the Python version and the venv's distributions.

The chain is per process (a session fixture's memo), so under `bpconform run --workers N`
(pytest-xdist) its checks must all run in one worker, or each worker that gets one builds the
chain again up to the step it needs. Every check that uses a chain is marked
`bpconform_chain(<manager>)` (`test_package_managers.py`; `step_of` refuses a check without the
mark), and the plugin's xdist scheduler (`conformance.scheduling`) sends all checks of one chain to
one worker as one unit, while every other check goes to any free worker as under `--dist load`.
So each chain is built once per run; the uv and Poetry chains run side by side on two workers.
(xdist's own `--dist loadgroup` would not do: pytest-xdist 3.8 renames grouped node ids through
`item._nodeid`, which pytest 9 no longer reads, so its groups are ignored.)
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from conformance.backends import AppBuilder, Build, BuildFailed, BuildOptions
from conformance.errors import HarnessError
from conformance.image import AppImage, ImageLayer
from conformance.profile import PackageManagerProfile, Profile, write_version
from conformance.tomlcompat import tomllib

STEPS: tuple[str, ...] = ("first", "unchanged", "removed-dependency", "python", "tool-version", "switch")
# The manager a uv app is switched to in the `switch` step (same image, same cache).
SWITCH: tuple[str, str] = ("uv", "poetry")

# Run in the image at launch: the Python version and the distributions in the app's venv, as JSON.
# `importlib.metadata.distributions()` over `sys.path` is what the app can import; the venv's own
# site-packages come first there, and the runtime layer has none (pip is absent at run time).
FACTS_SCRIPT = (
    "import importlib.metadata as m, json, platform, re\n"
    "names = sorted({re.sub(r'[-_.]+', '-', d.metadata['Name']).lower()\n"
    "                for d in m.distributions() if d.metadata['Name']})\n"
    "print(json.dumps({'python': platform.python_version(), 'distributions': names}))\n"
)


def normalize(name: str) -> str:
    """PEP 503 normalisation: `Foo_Bar` and `foo-bar` are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class StepResult:
    """One step of the chain as the checks see it (the image itself is replaced by the next step)."""

    step: str
    app: str
    output: str
    python: str
    distributions: frozenset[str]
    layers: dict[str, ImageLayer]
    values: dict[str, str] = field(default_factory=dict)  # what changed: old/new


@dataclass
class StepFailure:
    step: str
    failure: BuildFailed


def image_facts(image: AppImage) -> tuple[str, frozenset[str]]:
    """(Python version, normalised names of the importable distributions) of an app image at launch."""
    result = image.run(["python", "-c", FACTS_SCRIPT])
    lines = result.stdout.strip().splitlines()
    if result.exit_code != 0 or not lines:
        raise HarnessError(
            f"could not list the distributions in {image.reference}: `python -c ...` exited {result.exit_code}",
            f"the image's python must run at launch; its output: {result.output[-800:]}",
        )
    facts = json.loads(lines[-1])
    return str(facts["python"]), frozenset(facts["distributions"])


def declared_dependencies(app: Path) -> set[str]:
    """The normalised names an app's `pyproject.toml` depends on at run time ([project] and Poetry's table)."""
    path = app / "pyproject.toml"
    if not path.is_file():
        return set()
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    names = set()
    for requirement in data.get("project", {}).get("dependencies", []) or []:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", str(requirement))
        if match:
            names.add(normalize(match.group(1)))
    poetry = data.get("tool", {}).get("poetry", {}).get("dependencies", {}) or {}
    names.update(normalize(name) for name in poetry if name.lower() != "python")
    return names


class LockfileHistory:
    """The chain of one manager's builds (see the module docstring); steps are built on first use."""

    def __init__(
        self,
        builder: AppBuilder,
        profile: Profile,
        manager: PackageManagerProfile,
        find_app: Callable[[str], Path],
        scratch: Path,
    ) -> None:
        self.builder, self.profile, self.manager = builder, profile, manager
        self.find_app, self.scratch = find_app, scratch
        self.results: dict[str, StepResult] = {}
        self.skipped: dict[str, str] = {}
        self.failure: StepFailure | None = None
        self.outputs: list[tuple[str, str]] = []  # (label, output) of every step built so far
        self._done = 0
        self._previous: Build | None = None
        self._last: StepResult | None = None
        self._python = profile.python_default
        self._buildpacks: list[Path] | None = None  # None: the buildpacks under test

    # -- what a check asks -------------------------------------------------------------------------

    def step(self, name: str) -> StepResult | str:
        """The step's result, or why the profile could not make it (a skip reason); raises the chain's
        BuildFailed when this or an earlier step failed to build."""
        target = STEPS.index(name)
        while self._done <= target and self.failure is None:
            self._take(STEPS[self._done])
            self._done += 1
        if self.failure is not None and STEPS.index(self.failure.step) <= target:
            raise self.failure.failure
        if name in self.skipped:
            return self.skipped[name]
        return self.results[name]

    # -- making the steps --------------------------------------------------------------------------

    def _take(self, step: str) -> None:
        why = self._gap(step)
        if why is not None:
            self.skipped[step] = why
            return
        try:
            self.results[step] = self._build(step)
        except BuildFailed as failure:
            self.outputs.append((f"{self.manager.name} history, step {step} (failed)", failure.output))
            self.failure = StepFailure(step, failure)

    def _gap(self, step: str) -> str | None:
        manager, profile = self.manager, self.profile
        if step != "first" and "first" in self.skipped:
            return self.skipped["first"]
        if step == "first" and not manager.app("main"):
            return manager.gap("apps.main")
        if step == "removed-dependency" and not manager.app("removed-dependency"):
            return manager.gap("apps.removed-dependency")
        if step == "python" and profile.python_alternative is None:
            return f"profile {profile.name} names no alternative Python version (python.alternative)"
        if step == "tool-version":
            return manager.tool_version_gap()
        if step == "switch":
            if manager.name != SWITCH[0]:
                return f"the package-manager switch is checked from {SWITCH[0]} to {SWITCH[1]}"
            target = profile.package_manager(SWITCH[1])
            if target is None:
                return f"profile {profile.name} has no package-managers.{SWITCH[1]} to switch to"
            if not target.app("main"):
                return target.gap("apps.main")
        return None

    def _build(self, step: str) -> StepResult:
        manager, values = self.manager, {}
        app_name = manager.app("main") or ""
        if step == "removed-dependency":
            app_name = manager.app("removed-dependency") or ""
        elif step == "python":
            self._python = self.profile.python_alternative or self._python
        elif step == "tool-version":
            self._buildpacks = [self._tool_version_buildpack(), *self.builder.settings.buildpacks[1:]]
            version = manager.tool_version
            assert version is not None and version.current and version.other  # _gap said so
            values = {"old": version.current, "new": version.other}
        elif step == "switch":
            target = self.profile.package_manager(SWITCH[1])
            assert target is not None
            app_name = target.app("main") or ""
            values = {"old": SWITCH[0], "new": SWITCH[1]}
        app = self._app_copy(step, app_name)
        options = BuildOptions.of(buildpacks=self._buildpacks, with_probe=False, label=f"{manager.name}-history")
        if self._previous is None:
            build = self.builder.build_with(app, options)
        else:
            build = self.builder.rebuild(self._previous, app, options)
        self._previous = build
        self.outputs.append((f"{manager.name} history, step {step}", build.output))
        python, distributions = image_facts(build.image)
        if step == "python":
            values = {"old": self._last.python if self._last else "", "new": python}
        layers = {layer.name: layer for layer in build.image.layers(self.profile.buildpack_id)}
        self._last = StepResult(step, app_name, build.output, python, distributions, layers, values)
        return self._last

    def _app_copy(self, step: str, name: str) -> Path:
        """A private copy of the app for this step, pinned to the chain's current Python version."""
        target = self.scratch / f"{self.manager.name}-{STEPS.index(step)}-{step}"
        shutil.copytree(self.find_app(name), target, symlinks=True)
        (target / self.profile.version_file).write_text(f"{self._python}\n")
        return target

    def _tool_version_buildpack(self) -> Path:
        version = self.manager.tool_version
        assert version is not None and version.source is not None and version.other is not None
        target = self.scratch / f"buildpack-{self.manager.name}-{version.other}"
        shutil.copytree(self.builder.settings.buildpacks[0], target, symlinks=True)
        where = f"{self.manager.key}.tool-version.version-source"
        write_version(target, version.source, version.other, where=where, profile=self.profile)
        return target
