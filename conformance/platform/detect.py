"""Order resolution and the build plan: which group of buildpacks builds the app, and what each receives.

This is the lifecycle's detector as pure logic. Running `bin/detect` is the caller's job (a container);
it hands us a `run_detect(buildpack) -> DetectRun` callable. The rules mirrored from the lifecycle:

- groups of an order are tried in turn; the first that passes wins;
- a composite buildpack is replaced, in place, by each group of its own order followed by the rest of
  the enclosing group; an optional composite whose groups all fail is skipped;
- a buildpack id already in the group being built is not run twice;
- exit 0 passes, 100 fails, anything else (or an invalid plan) is an error; optional buildpacks may
  fail or error without failing the group, but a group needs at least one passing buildpack;
- the build plan must resolve: every `requires` is met by a `provides` of the same or an earlier
  buildpack, every `provides` is consumed by a `requires` of the same or a later one; the
  `[[or]]` alternatives of each buildpack are tried in order (earlier buildpacks vary slowest);
  optional buildpacks whose plan cannot be met are dropped;
- no group passes: exit 20, or 21 when some buildpack errored; any other detect failure: 22.

Unlike the lifecycle, iteration is deterministic (it walks Go maps), and detect runs sequentially.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.errors import PlatformError
from conformance.platform import env as cnb_env
from conformance.platform import safefs, spec
from conformance.platform.build_container import BuildContainer
from conformance.platform.buildpack import (
    DEFAULT_EXEC_ENV,
    Buildpack,
    BuildpackRegistry,
    GroupEntry,
    RunTarget,
    bin_problem,
    buildpack_dir,
    interface_env,
)
from conformance.platform.log import BuildLog
from conformance.platform.workdir import WorkDirs
from conformance.tomlcompat import TOMLDecodeError, tomllib

CODE_PASS = 0
CODE_FAIL = 100


OUTPUT_TAIL_LINES = 8

Order = Sequence[Sequence[GroupEntry]]


@dataclass
class DetectRun:
    """What one `bin/detect` did: exit code, combined output, and the plan TOML it wrote (parsed)."""

    exit_code: int
    output: str
    plan: dict | None = None
    error: str | None = None  # set by the platform: why a run counts as an error besides its exit code

    @classmethod
    def from_plan_file(cls, exit_code: int, output: str, plans_dir: Path, name: str, shown: str = "") -> DetectRun:
        """A run with the plan `bin/detect` wrote to `<plans_dir>/<name>`, read without following a
        link (a buildpack can write the plans dir): a link or malformed plan makes the run an error."""
        if exit_code != CODE_PASS:
            return cls(exit_code, output, None)
        shown = shown or name
        try:
            data = safefs.read_file(plans_dir, name, shown=f"the build plan {shown}")
        except safefs.UnsafePath as exc:
            return cls(-1, output, None, error=exc.message)
        if not data:
            return cls(exit_code, output, None)
        try:
            return cls(exit_code, output, tomllib.loads(data.decode("utf-8")))
        except (TOMLDecodeError, UnicodeDecodeError) as exc:
            return cls(-1, output, None, error=f"malformed build plan {shown}: {exc}")

    @property
    def status(self) -> str:
        if self.exit_code == CODE_PASS:
            return "pass"
        if self.exit_code == CODE_FAIL:
            return "fail"
        return "error"


@dataclass(frozen=True)
class Require:
    name: str
    metadata: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "metadata": dict(self.metadata)}


@dataclass(frozen=True)
class PlanSections:
    """One alternative of a detect plan: the top-level sections or one `[[or]]` entry."""

    provides: tuple[str, ...] = ()
    requires: tuple[Require, ...] = ()


@dataclass
class PlanEntry:
    """One entry of the resolved plan (`plan.toml`): who provides a dependency and who asked for it."""

    name: str
    providers: list[Buildpack] = field(default_factory=list)
    requires: list[Require] = field(default_factory=list)


@dataclass
class DetectResult:
    group: list[Buildpack]
    plan: dict[str, list[dict]]  # buildpack id -> its buildpack plan entries ({"name", "metadata"})
    outcomes: list[tuple[Buildpack, DetectRun]]
    entries: list[PlanEntry] = field(default_factory=list)

    def buildpack_plan(self, buildpack: Buildpack | str) -> dict[str, list[dict]]:
        """The TOML document written to `CNB_BP_PLAN_PATH` for that buildpack's build."""
        bp_id = buildpack if isinstance(buildpack, str) else buildpack.id
        return {"entries": [dict(e) for e in self.plan.get(bp_id, [])]}


def parse_detect_plan(plan: Any, buildpack: Buildpack) -> list[PlanSections]:
    """The alternatives a buildpack offered: top-level sections first, then each `[[or]]`.

    Raises `ValueError` naming the offending key; the resolver turns it into an errored run.
    """
    if plan is None:
        return [PlanSections()]
    if not isinstance(plan, dict):
        raise ValueError("the build plan must be a TOML table")
    alternatives = [_parse_sections(plan, "")]
    others = plan.get("or", [])
    if not isinstance(others, list) or not all(isinstance(o, dict) for o in others):
        raise ValueError("or must be an array of tables ([[or]])")
    alternatives.extend(_parse_sections(other, f"or[{i}].") for i, other in enumerate(others))
    return alternatives


def _parse_sections(table: dict[str, Any], where: str) -> PlanSections:
    provides = table.get("provides", [])
    requires = table.get("requires", [])
    for key, value in (("provides", provides), ("requires", requires)):
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise ValueError(f"{where}{key} must be an array of tables ([[{key}]])")
    names = []
    for i, item in enumerate(provides):
        names.append(_entry_name(item, f"{where}provides[{i}]"))
    parsed_requires = []
    for i, item in enumerate(requires):
        label = f"{where}requires[{i}]"
        name = _entry_name(item, label)
        if "version" in item:
            raise ValueError(f'{label} ({name}) has a top-level "version" key: use metadata.version instead')
        metadata = item.get("metadata", {})
        if not isinstance(metadata, dict):
            raise ValueError(f"{label}.metadata must be a table")
        parsed_requires.append(Require(name, metadata))
    return PlanSections(tuple(names), tuple(parsed_requires))


def _entry_name(item: dict[str, Any], label: str) -> str:
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{label} has no name")
    return name


class _GroupFailed(Exception):
    """A group (or order) did not pass; `errored` when some non-optional buildpack errored."""

    def __init__(self, errored: bool) -> None:
        super().__init__("errored" if errored else "failed")
        self.errored = errored


@dataclass
class _Member:
    """A buildpack taking part in a group being tried."""

    buildpack: Buildpack
    optional: bool


@dataclass
class _Option:
    member: _Member
    sections: PlanSections
    optional: bool  # only the last alternative of an optional buildpack may drop it


class _Resolver:
    def __init__(
        self,
        registry: BuildpackRegistry,
        run_detect: Callable[[Buildpack], DetectRun],
        target: RunTarget | None,
    ) -> None:
        self.registry = registry
        self.run_detect = run_detect
        self.target = target
        self.runs: dict[tuple[str, str], DetectRun] = {}
        self.plans: dict[tuple[str, str], list[PlanSections]] = {}
        self.outcomes: list[tuple[Buildpack, DetectRun]] = []
        self.notes: list[str] = []
        self.expanding: list[tuple[str, str]] = []

    # --- order and group walking -------------------------------------------------------------

    def detect_order(
        self, order: Order, done: list[_Member], rest: Sequence[GroupEntry], optional: bool
    ) -> tuple[list[_Member], list[PlanEntry]]:
        errored = False
        for group in order:
            try:
                return self.detect_group([*group, *rest], done)
            except _GroupFailed as failed:
                errored = errored or failed.errored
        if optional:
            return self.detect_group(list(rest), done)
        raise _GroupFailed(errored)

    def detect_group(self, group: Sequence[GroupEntry], done: list[_Member]) -> tuple[list[_Member], list[PlanEntry]]:
        done = list(done)
        for index, entry in enumerate(group):
            if any(member.buildpack.id == entry.id for member in done):
                continue
            buildpack = self.lookup(entry)
            if buildpack.is_composite:
                return self.expand_composite(buildpack, entry, done, group[index + 1 :])
            done.append(_Member(buildpack, entry.optional))
            self.ensure_run(buildpack, entry)
        return self.resolve(done)

    def expand_composite(
        self, buildpack: Buildpack, entry: GroupEntry, done: list[_Member], rest: Sequence[GroupEntry]
    ) -> tuple[list[_Member], list[PlanEntry]]:
        if buildpack.key in self.expanding:
            cycle = " -> ".join(f"{i}@{v}" for i, v in [*self.expanding, buildpack.key])
            raise PlatformError(
                f"composite buildpacks include each other: {cycle}",
                "remove the cycle from the [[order]] of one of these buildpacks",
                exit_code=spec.ExitCode.DETECT_ERROR,
            )
        self.expanding.append(buildpack.key)
        try:
            return self.detect_order(buildpack.order, done, rest, entry.optional)
        finally:
            self.expanding.pop()

    def lookup(self, entry: GroupEntry) -> Buildpack:
        try:
            return self.registry.get(entry.id, entry.version)
        except PlatformError as exc:
            raise PlatformError(exc.message, exc.hint, exit_code=spec.ExitCode.DETECT_ERROR) from None

    def ensure_run(self, buildpack: Buildpack, entry: GroupEntry) -> None:
        if buildpack.key in self.runs:
            return
        if self.target is not None and not entry.optional and not self._supports_target(buildpack):
            # Like the lifecycle, a non-optional buildpack for another target is an error without
            # running; an optional one is still run (its detect decides).
            run = DetectRun(-1, "", None, error=f"does not support the run image target {self._target_text()}")
        else:
            run = self._validated(buildpack, self.run_detect(buildpack))
        self.runs[buildpack.key] = run
        self.outcomes.append((buildpack, run))

    def _supports_target(self, buildpack: Buildpack) -> bool:
        t = self.target
        assert t is not None
        return buildpack.supports(t.os, t.arch, t.distro_name, t.distro_version, t.arch_variant)

    def _target_text(self) -> str:
        t = self.target
        assert t is not None
        return f"{t.os}/{t.arch} {t.distro_name} {t.distro_version}"

    def _validated(self, buildpack: Buildpack, run: DetectRun) -> DetectRun:
        if run.exit_code != CODE_PASS:
            return run
        try:
            self.plans[buildpack.key] = parse_detect_plan(run.plan, buildpack)
        except ValueError as exc:
            return DetectRun(-1, run.output, run.plan, error=f"invalid build plan: {exc}")
        return run

    # --- resolving one group -------------------------------------------------------------------

    def resolve(self, done: list[_Member]) -> tuple[list[_Member], list[PlanEntry]]:
        passed: list[_Member] = []
        detected = True
        errored = False
        for member in done:
            run = self.runs[member.buildpack.key]
            if run.exit_code == CODE_PASS and run.error is None:
                passed.append(member)
                continue
            if run.exit_code != CODE_FAIL:
                errored = True
            detected = detected and member.optional
        if not detected:
            raise _GroupFailed(errored)
        if not passed:
            raise _GroupFailed(False)

        alternatives = [
            [_Option(member, sections, member.optional and i == len(options) - 1) for i, sections in enumerate(options)]
            for member in passed
            for options in [self.plans[member.buildpack.key]]
        ]
        for trial in itertools.product(*alternatives):
            outcome = self.run_trial(list(trial))
            if outcome is not None:
                return outcome
        raise _GroupFailed(False)

    def run_trial(self, trial: list[_Option]) -> tuple[list[_Member], list[PlanEntry]] | None:
        while True:
            entries, unmet_requires, unused_provides = _dependency_map(trial)
            problems = [(o, f"requires {n} which no earlier buildpack provides") for n, o in unmet_requires]
            problems += [(o, f"provides {n} which no later buildpack requires") for n, o in unused_provides]
            if not problems:
                break
            for option, problem in problems:
                if not option.optional:
                    self._note(f"{option.member.buildpack} {problem}")
                    return None
            dropped = {id(option) for option, _ in problems}
            for option, problem in problems:
                self._note(f"{option.member.buildpack} (optional) {problem}: skipped")
            trial = [option for option in trial if id(option) not in dropped]
        if not trial:
            return None
        return [option.member for option in trial], entries

    def _note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)


def _dependency_map(
    trial: list[_Option],
) -> tuple[list[PlanEntry], list[tuple[str, _Option]], list[tuple[str, _Option]]]:
    """Walk the trial in order, matching each requires to the provides seen so far.

    Provides of a buildpack count for its own requires; a provides is consumed by the next
    requires of that name, and every later requires of the name shares the accumulated providers.
    """
    entries: dict[str, PlanEntry] = {}
    pending: dict[str, list[_Option]] = {}
    unmet: list[tuple[str, _Option]] = []
    for option in trial:
        for name in option.sections.provides:
            pending.setdefault(name, []).append(option)
        for require in option.sections.requires:
            entry = entries.setdefault(require.name, PlanEntry(require.name))
            waiting = pending.pop(require.name, [])
            entry.providers.extend(o.member.buildpack for o in waiting)
            if entry.providers:
                entry.requires.append(require)
            else:
                unmet.append((require.name, option))
    unused = [(name, option) for name, options in pending.items() for option in options]
    resolved = [entry for entry in entries.values() if entry.requires]
    return resolved, unmet, unused


def resolve_order(
    order: Order,
    registry: BuildpackRegistry,
    run_detect: Callable[[Buildpack], DetectRun],
    *,
    target: RunTarget | None = None,
) -> DetectResult:
    """Find the first group of `order` that passes detection, and its build plan."""
    resolver = _Resolver(registry, run_detect, target)
    if not order or not any(order):
        raise PlatformError(
            "the order is empty: there is no buildpack to detect with",
            "give the platform at least one buildpack (or an order.toml with [[order.group]] entries)",
            exit_code=spec.ExitCode.FAILED_DETECTION,
        )
    try:
        members, entries = resolver.detect_order(order, [], [], False)
    except _GroupFailed as failed:
        raise _detection_error(resolver, failed.errored) from None
    group = [member.buildpack for member in members]
    return DetectResult(
        group=group,
        plan=_buildpack_plans(group, entries),
        outcomes=resolver.outcomes,
        entries=entries,
    )


def _buildpack_plans(group: list[Buildpack], entries: list[PlanEntry]) -> dict[str, list[dict]]:
    """What each buildpack receives: every require of each entry it is a provider of."""
    plans: dict[str, list[dict]] = {bp.id: [] for bp in group}
    for entry in entries:
        for provider_id in dict.fromkeys(p.id for p in entry.providers):
            plans[provider_id].extend(require.as_dict() for require in entry.requires)
    return plans


def _detection_error(resolver: _Resolver, errored: bool) -> PlatformError:
    lines = ["no buildpack group passed detection"]
    if resolver.outcomes:
        lines.append("buildpacks that ran detect:")
        for buildpack, run in resolver.outcomes:
            lines.append(f"  {buildpack}: {_describe(run)}")
            lines.extend(f"    | {line}" for line in _tail(run.output))
    if resolver.notes:
        lines.append("build plan:")
        lines.extend(f"  {note}" for note in resolver.notes)
    if errored:
        hint = (
            "a buildpack's bin/detect failed with an error (exit code other than 0 or 100) or wrote an invalid "
            "plan: fix the buildpack using its output above"
        )
        return PlatformError("\n".join(lines), hint, exit_code=spec.ExitCode.FAILED_DETECTION_WITH_ERRORS)
    if resolver.notes and all(run.exit_code == CODE_PASS for _, run in resolver.outcomes):
        hint = "the buildpacks passed detect but their build plans do not fit together: see 'build plan' above"
    else:
        hint = "no buildpack recognised the app: check the app dir contains what the buildpacks detect"
        if resolver.notes:
            hint += " (and see 'build plan' above for groups whose plans did not fit)"
    return PlatformError("\n".join(lines), hint, exit_code=spec.ExitCode.FAILED_DETECTION)


def _describe(run: DetectRun) -> str:
    text = f"{run.status} (exit {run.exit_code})" if run.exit_code >= 0 else "error"
    return f"{text}: {run.error}" if run.error else text


def _tail(output: str) -> list[str]:
    lines = [line for line in output.rstrip().splitlines() if line.strip()]
    return lines[-OUTPUT_TAIL_LINES:]


def group_toml(result: DetectResult) -> dict[str, Any]:
    """The lifecycle's `group.toml`: the passing buildpacks with their API (and homepage)."""
    group = []
    for bp in result.group:
        element: dict[str, Any] = {"id": bp.id, "version": bp.version, "api": bp.api}
        if bp.homepage:
            element["homepage"] = bp.homepage
        group.append(element)
    return {"group": group}


def plan_toml(result: DetectResult) -> dict[str, Any]:
    """The lifecycle's `plan.toml`: each dependency with its providers and the requires it met."""
    return {
        "entries": [
            {
                "providers": [{"id": bp.id, "version": bp.version} for bp in entry.providers],
                "requires": [require.as_dict() for require in entry.requires],
            }
            for entry in result.entries
        ]
    }


def plan_after_build(entries: list[PlanEntry], met: Sequence[str]) -> list[PlanEntry]:
    """The plan left for later buildpacks once one has met `met` (its plan entry names minus `[[unmet]]`).

    The lifecycle drops every entry with a require of a met name, so a later provider of the same
    dependency does not receive it again.
    """
    met_names = set(met)
    return [entry for entry in entries if not any(r.name in met_names for r in entry.requires)]


def buildpack_plan_from(entries: list[PlanEntry], buildpack: Buildpack | str) -> dict[str, list[dict]]:
    """The `CNB_BP_PLAN_PATH` document for a buildpack, from the (possibly filtered) plan entries."""
    bp_id = buildpack if isinstance(buildpack, str) else buildpack.id
    found = [entry for entry in entries if any(p.id == bp_id for p in entry.providers)]
    return {"entries": [require.as_dict() for entry in found for require in entry.requires]}


# ------------------------------------------------------------------------------------------------
# The detect phase: running each bin/detect in the build container
# ------------------------------------------------------------------------------------------------


def detect(
    buildpacks: list[Buildpack],
    container: BuildContainer,
    dirs: WorkDirs,
    base_env: dict[str, str],
    target: RunTarget,
    log: BuildLog,
    *,
    exec_env: str = DEFAULT_EXEC_ENV,
) -> DetectResult:
    """Resolve the one order the given buildpacks make, running bin/detect as the build user."""
    registry = BuildpackRegistry(buildpacks)
    order = ((*(GroupEntry(bp.id, bp.version) for bp in buildpacks),),)
    platform_env = cnb_env.read_platform_env(dirs.platform / "env")

    def run_detect(bp: Buildpack) -> DetectRun:
        plan_name = f"detect-{bp.escaped_id}.toml"
        plan_path = container.fresh_plan(plan_name)
        env = cnb_env.build_env(base_env, platform_env, [], clear_env=bp.clear_env)
        env.update(
            interface_env(
                bp,
                "detect",
                plan_path=plan_path,
                target=target,
                exec_env=exec_env,
            )
        )
        output = BuildLog.quiet()  # kept for the error report, capped like the build log
        exit_code = container.run_as_build_user(
            [f"{buildpack_dir(bp)}/bin/detect", spec.PLATFORM_DIR, plan_path],
            env,
            output,
            what=f"bin/detect of {bp.id} {bp.version}",
            exit_code=spec.ExitCode.DETECT_ERROR,
        )
        if exit_code not in (CODE_PASS, CODE_FAIL):
            problem = bin_problem(bp, "detect")
            if problem is not None:  # the lifecycle's exec error: code -1, an error (buildpack/detect.go:192-198)
                return DetectRun(-1, output.text, None, error=f"bin/detect could not be run: {problem}")
        return DetectRun.from_plan_file(exit_code, output.text, dirs.plans, plan_name, plan_path)

    result = resolve_order(order, registry, run_detect, target=target)
    for bp in result.group:
        log.line(f"{bp.id} {bp.version}")
    return result
