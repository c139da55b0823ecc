"""`bpconform profile init`, part two: lock-file package managers, launch SBOMs and the failing apps
of the one-package-manager rule.

Like `profile_draft` (whose layer listing and log inference this reuses), everything here is
learnt from builds, never from the buildpack's names or source:

- `[package-managers.<uv|poetry>]`: the manager's sample app is built with the buildpack and, after
  it, the *observer* buildpack (`conformance/draft_observer`), which records what a later buildpack
  sees (its environment, and `<tool> --version` on its PATH). From that build: the tool layers
  (build-only layers the build adds, one of which holds `bin/<tool>`), the venv (the layer with a
  `pyvenv.cfg`), the tool version and the build env a later buildpack gets from the tool layer; from
  the image: the tool absent at run time, the app's declared dev group not installed. A rebuild
  gives the venv reuse line; a copy of the buildpack with another tool version (the TOML key holding
  the observed version, as for pip) gives the discard line and proves the key; the stale-lock app
  gives its error. A manager whose app the buildpack does not detect or build is left out, with a
  comment saying why, so its checks skip with a reason instead of failing.
- `[sbom] launch`: whether the images hold a CycloneDX launch SBOM for the venv layers.
- `[messages]` two-package-managers / requires-python-mismatch / refused-variables: from the
  suite's failing apps, when the buildpack does fail them; otherwise a comment says what happened.

Pure inference functions (unit-tested on recorded facts) come first, then the learning builds,
then the rendering.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.errors import ConformanceError
from conformance.profile_draft import (
    DISCARD_WORDS,
    PATH_LIKE,
    REUSE_WORDS,
    LayerFacts,
    LearntMessage,
    _copy_tree,
    _escape,
    _toml_list,
    _toml_string,
    buildpack_output,
    bumped_buildpack,
    learn_message,
    line_role,
    line_to_template,
    new_lines,
    plan_version_bump,
)

if TYPE_CHECKING:
    from conformance.profile_draft import Builder, Draft, Observed

# The suite's sample apps per manager and purpose (the names reference.toml uses), and lock files.
MANAGER_APPS: dict[str, dict[str, str]] = {
    "uv": {"main": "uv", "stale-lock": "uv-stale-lock", "removed-dependency": "uv-removed-dependency"},
    "poetry": {"main": "poetry", "stale-lock": "poetry-stale-lock", "removed-dependency": "poetry-removed-dependency"},
}
LOCK_FILES: dict[str, str] = {"uv": "uv.lock", "poetry": "poetry.lock"}
# Files that name a package manager, in the order a message usually lists them.
MANAGER_FILES: tuple[str, ...] = ("requirements.txt", "poetry.lock", "uv.lock", "Pipfile", "Pipfile.lock")
# The user variable the suite builds the refused-variable app with (conformance/suite/test_package_managers.py
# REFUSED_VARIABLE; tests/test_profile_draft.py checks the two agree).
REFUSED_VARIABLE: tuple[str, str] = ("PIP_TARGET", "/tmp/elsewhere")
# Words that name the venv in a log line (no layer name needed: "Using cached virtual environment").
VENV_WORDS: tuple[str, ...] = ("virtual environment", "virtualenv", "venv")
# A tool's own diagnostics (uv's `error:`/`hint:`, pip's `ERROR:`): not the buildpack's words.
TOOL_DIAGNOSTIC = re.compile(r"^\s*(error|warning|hint|info|note|debug)\s*:", re.IGNORECASE)
STALE_WORDS = re.compile(
    r"out[- ]of[- ]date|stale|outdated|needs? to be updated|does not match|doesn't match|changed|mismatch",
    re.IGNORECASE,
)
_VERSION = re.compile(r"(?<![\w.])(\d+\.\d+(?:\.\d+)*)(?![\w.])")
BUILDPACK_FAILED = 51

LayerRoles = Mapping[str, str]  # layer name -> the role a log line can be about ("tool", "venv")
Keywords = Mapping[str, tuple[str, ...]]  # role -> words naming it in a log line
Say = Callable[[str], None]


# ------------------------------------------------------------------------------------------------
# Inference: pure functions over layer facts, observer records, logs and app files
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolLayers:
    """The build-only layers a manager's build adds, and the evidence (or why there are none)."""

    layers: tuple[LayerFacts, ...]
    holders: tuple[str, ...]  # names of the layers holding bin/<tool>
    note: str


def tool_layers(facts: Sequence[LayerFacts], tool: str, taken: set[str]) -> ToolLayers:
    """Layers of a manager's build that are not launch (so not in the image), have a type, are no
    `[layers]` role's layer and no venv; taken only when one of them holds `bin/<tool>`."""
    candidates = [
        f for f in facts if f.name not in taken and not f.venv and not f.types.get("launch") and any(f.types.values())
    ]
    holders = tuple(f.name for f in candidates if tool in f.executables)
    if holders:
        listed = ", ".join(f"{f.name} ({'holds bin/' + tool if f.name in holders else 'no tool'})" for f in candidates)
        return ToolLayers(tuple(candidates), holders, f"build-only layers of the {tool} build: {listed}")
    shipped = [f.name for f in facts if f.types.get("launch") and tool in f.executables]
    if shipped:
        why = f"bin/{tool} is in the launch layer {shipped[0]!r}: the tool ships in the image"
    else:
        why = f"no build-only layer of the {tool} build holds bin/{tool}"
    return ToolLayers((), (), why)


def tool_version(record: Mapping[str, Any] | None, tool: str) -> str | None:
    """The version `<tool> --version` printed for a later buildpack (`uv 0.13.9 (...)`, `Poetry (version 2.5.1)`)."""
    if not record:
        return None
    result = record.get("tools", {}).get(tool)
    if not isinstance(result, dict) or result.get("exit") != 0:
        return None
    match = _VERSION.search(str(result.get("stdout", "")))
    return match.group(1) if match else None


def observed_build_env(holders: Sequence[LayerFacts], env: Mapping[str, str]) -> dict[str, str]:
    """What the tool's own layers set for the build (env/ of a build-only layer, env.build/), with the
    value a later buildpack saw; path-like variables are the PATH checks' business."""
    names = {name for f in holders for name in f.env_build}
    return {name: env[name] for name in sorted(names) if name in env and name not in PATH_LIKE}


def normalize(name: str) -> str:
    """PEP 503: `Foo_Bar` and `foo-bar` are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(text: str) -> str | None:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", text)
    return normalize(match.group(1)) if match else None


def declared_dev_dependencies(app: Path, manager: str) -> list[str]:
    """The dev group the app declares: uv's `[dependency-groups] dev` (and the older `[tool.uv]
    dev-dependencies`), Poetry's `[tool.poetry.group.dev.dependencies]` (and `dev-dependencies`)."""
    from conformance.tomlcompat import load_toml

    path = app / "pyproject.toml"
    if not path.is_file():
        return []
    try:
        data = load_toml(path)
    except ConformanceError:
        return []
    names: list[str | None] = []
    if manager == "uv":
        names += [_requirement_name(str(r)) for r in data.get("dependency-groups", {}).get("dev", []) or []]
        names += [_requirement_name(str(r)) for r in data.get("tool", {}).get("uv", {}).get("dev-dependencies", [])]
    else:
        poetry = data.get("tool", {}).get("poetry", {})
        group = poetry.get("group", {}).get("dev", {}).get("dependencies", {}) or {}
        names += [normalize(n) for n in group] + [normalize(n) for n in poetry.get("dev-dependencies", {}) or {}]
    return sorted({n for n in names if n and n != "python"})


def reason_template(line: str, old: str, new: str) -> str | None:
    """`Discarding cached virtual environment since: The uv version has changed from A to B` ->
    `Discarding cached virtual environment since: {reason}`: the words before the reason, which the
    suite fills per change with a pattern naming the old then the new value. The reason starts after
    the last `: ` (or `since `/`because `) before the old value; None if the line does not name old
    then new."""
    start = line.find(old)
    if start < 0 or line.find(new, start + len(old)) < 0:
        return None
    head = line[:start]
    cut = head.rfind(": ")
    if cut >= 0:
        head = head[: cut + 2]
    else:
        marker = max((head.rfind(word) + len(word) for word in (" since ", " because ") if word in head), default=-1)
        if marker < 0:
            return None  # no separator: the reason's own words would become the template
        head = head[:marker]
    if not head.strip():
        return None
    return _escape(head) + "{reason}"


def learn_reason(
    key: str, fresh: Sequence[str], layers: LayerRoles, keywords: Keywords, old: str, new: str
) -> LearntMessage | None:
    """The venv discard line of a change from `old` to `new`, as a `{reason}` template."""
    about = [ln for ln in fresh if line_role(ln, layers, keywords) == "venv" and old in ln and new in ln]
    about.sort(key=lambda ln: 0 if DISCARD_WORDS.search(ln) else 1)
    for line in about:
        template = reason_template(line, old, new)
        if template is not None:
            return LearntMessage(key, template, line, tuple(about[1:]))
    return None


def _own_lines(lines: Sequence[str]) -> list[str]:
    """The buildpack's own lines: not a tool's diagnostics, not indented (a tool's listing)."""
    return [
        ln.strip() for ln in lines if ln.strip() and not TOOL_DIAGNOSTIC.match(ln) and not ln.startswith((" ", "\t"))
    ]


def _heading_before(lines: Sequence[str], line: str) -> str | None:
    """An error heading right before `line` (`[Error: ...]` or a line with 'error'), if any."""
    index = lines.index(line)
    if index == 0:
        return None
    previous = lines[index - 1]
    if re.match(r"^\[.*\]$", previous) or re.search(r"\berror\b", previous, re.IGNORECASE):
        return previous
    return None


def stale_lock_message(lines: Sequence[str], lock: str) -> LearntMessage | str:
    """The buildpack's line naming the stale lock file (its own words, not the tool's `error:`)."""
    own = _own_lines(lines)
    naming = [ln for ln in own if lock in ln]
    if not naming:
        return f"no line of the failed build, other than the tool's own, names {lock}"
    naming.sort(key=lambda ln: (0 if STALE_WORDS.search(ln) else 1, 0 if re.search("error", ln, re.I) else 1))
    chosen = naming[0]
    return LearntMessage("stale-lock", line_to_template(chosen, {"file": lock}), chosen, tuple(naming[1:]))


def files_message(key: str, lines: Sequence[str], words: Sequence[str]) -> LearntMessage | str:
    """The buildpack's line naming every one of `words` (the files it objects to), cut after the last
    of them is first named, with the error heading before it if there is one."""
    own = _own_lines(lines)
    naming = [ln for ln in own if all(word in ln for word in words)]
    if not naming:
        return f"no line of the failed build names all of {', '.join(words)}"
    chosen = naming[0]
    end = max(chosen.find(word) + len(word) for word in words)
    template = _escape(chosen[:end])
    heading = _heading_before(own, chosen)
    if heading is not None:
        template = f"(?s){_escape(heading)}.*?{template}"
    return LearntMessage(key, template, chosen, tuple(naming[1:]))


def variable_message(lines: Sequence[str], variable: str, value: str) -> LearntMessage | str:
    """The buildpack's line naming the refused variable: `{variable}`, cut before its value."""
    own = _own_lines(lines)
    naming = [ln for ln in own if re.search(rf"(?<![A-Z0-9_]){re.escape(variable)}(?![A-Z0-9_])", ln)]
    if not naming:
        return f"no line of the failed build names {variable}"
    chosen = naming[0]
    at = re.search(rf"(?<![A-Z0-9_]){re.escape(variable)}(?![A-Z0-9_])", chosen)
    assert at is not None
    end = at.end() + (1 if chosen[at.end() : at.end() + 1] == "=" else 0)
    template = _escape(chosen[: at.start()]) + "{variable}" + _escape(chosen[at.end() : end])
    heading = _heading_before(own, chosen)
    if heading is not None:
        template = f"(?s){_escape(heading)}.*?{template}"
    return LearntMessage("refused-variables", template, chosen, tuple(naming[1:]))


def sbom_verdict(listings: Mapping[str, list[str] | None]) -> tuple[bool | None, str]:
    """`[sbom] launch` from the launch SBOM files seen per venv (what -> files, None = not looked at):
    true when a venv has `sbom.cdx.json` (the suite reads CycloneDX), false when none has any SBOM."""
    seen = {what: files for what, files in listings.items() if files is not None}
    if not seen:
        return None, "no image was looked at for launch SBOMs"
    with_cdx = [what for what, files in seen.items() if "sbom.cdx.json" in files]
    other = {what: files for what, files in seen.items() if files and "sbom.cdx.json" not in files}
    if with_cdx:
        lacking = [what for what in seen if what not in with_cdx]
        note = f"a CycloneDX launch SBOM (sbom.cdx.json) was exported for the {', '.join(with_cdx)}"
        if lacking:
            note += f"; NOTE none for the {', '.join(lacking)}: its SBOM check will fail"
        return True, note
    if other:
        where = "; ".join(f"{what}: {', '.join(files)}" for what, files in other.items())
        return False, f"launch SBOMs in other formats only ({where}); the suite reads CycloneDX (sbom.cdx.json)"
    return False, f"no launch SBOM was exported for the {', '.join(seen)}"


# ------------------------------------------------------------------------------------------------
# The drafts of the new tables
# ------------------------------------------------------------------------------------------------


@dataclass
class ManagerDraft:
    """What profile init found for one lock-file package manager (`[package-managers.<name>]`)."""

    name: str
    why_not: str = ""  # non-empty: the table is left out, with this reason
    apps: dict[str, str] = field(default_factory=dict)
    apps_note: str = ""
    tool_layers: list[tuple[str, dict[str, bool]]] = field(default_factory=list)
    tool_layers_note: str = ""
    venv: tuple[str, dict[str, bool]] | None = None
    venv_note: str = ""
    absent: list[str] = field(default_factory=list)
    absent_note: str = ""
    dev: list[str] = field(default_factory=list)
    dev_note: str = ""
    build_env: dict[str, str] = field(default_factory=dict)
    build_env_note: str = ""
    current: str | None = None
    other: str | None = None
    source: dict[str, str] | None = None
    version_note: str = ""
    messages: dict[str, LearntMessage] = field(default_factory=dict)
    message_notes: dict[str, str] = field(default_factory=dict)


@dataclass
class ManagersDraft:
    """The package-manager part of a Draft."""

    managers: dict[str, ManagerDraft] = field(default_factory=dict)
    sbom_launch: bool | None = None
    sbom_note: str = ""
    sbom_listings: dict[str, list[str] | None] = field(default_factory=dict)  # what -> SBOM files seen


# Run at launch in an app image: the importable distributions, whether `tool` is on PATH or
# importable, and the launch SBOM files per layer of the buildpack (argv: tool, sbom dir).
IMAGE_FACTS = (
    "import importlib.metadata as m, importlib.util, json, os, re, shutil, sys\n"
    "tool, sbom = sys.argv[1], sys.argv[2]\n"
    "names = sorted({re.sub(r'[-_.]+', '-', d.metadata['Name']).lower() for d in m.distributions()"
    " if d.metadata['Name']})\n"
    "try:\n"
    "    spec = importlib.util.find_spec(tool) is not None\n"
    "except (ImportError, ValueError):\n"
    "    spec = False\n"
    "sboms = {}\n"
    "if os.path.isdir(sbom) and not os.path.islink(sbom):\n"
    "    for layer in sorted(os.listdir(sbom)):\n"
    "        path = os.path.join(sbom, layer)\n"
    "        if os.path.isdir(path) and not os.path.islink(path):\n"
    "            sboms[layer] = sorted(os.listdir(path))\n"
    "print(json.dumps({'distributions': names, 'which': shutil.which(tool), 'importable': spec, 'sboms': sboms}))\n"
)


def image_facts(builder: Builder, tool: str) -> dict[str, Any] | None:
    escaped = builder.descriptor.id.replace("/", "_")
    return builder.image_json(IMAGE_FACTS, tool, f"/layers/sbom/launch/{escaped}")


def sbom_files(facts: Mapping[str, Any] | None, layer: str) -> list[str] | None:
    if facts is None:
        return None
    return list(facts.get("sboms", {}).get(layer, []))


# ------------------------------------------------------------------------------------------------
# Learning: the builds
# ------------------------------------------------------------------------------------------------


def learn_managers(builder: Builder, draft: Draft, apps_dir: Path, say: Callable[[str], None]) -> None:
    """Every lock-file manager the suite knows, then the SBOM verdict from every venv looked at."""
    from conformance.profile import PACKAGE_MANAGERS

    if draft.managers is None:
        draft.managers = ManagersDraft()
    result = draft.managers
    for name in PACKAGE_MANAGERS:
        if name not in MANAGER_APPS:
            result.managers[name] = ManagerDraft(name, why_not=f"profile init has no sample apps for {name}")
    for name in [
        n for n in MANAGER_APPS if n in PACKAGE_MANAGERS
    ]:  # uv first: Poetry's first build then discards uv's venv
        result.managers[name] = learn_manager(builder, draft, name, apps_dir, say)
    result.sbom_launch, result.sbom_note = sbom_verdict(result.sbom_listings)


def learn_manager(
    builder: Builder, draft: Draft, name: str, apps_dir: Path, say: Callable[[str], None]
) -> ManagerDraft:
    """The manager's main app built (with the observer), rebuilt, built with another tool version, and
    its stale-lock app; each step fills what it shows and says why when it cannot."""
    pm = ManagerDraft(name)
    apps = MANAGER_APPS[name]
    main = apps_dir / apps["main"]
    if not main.is_dir():
        pm.why_not = f"the sample app {main} does not exist"
        return pm
    bp = builder.descriptor
    say(f"profile init: building {main.name} to learn the {name} table")
    first = builder.build(_copy_tree(main, builder.scratch("apps") / f"{name}-main"), inspect=False, observe=True)
    if not first.ok:
        if first.exit_code == 20:
            pm.why_not = f"{bp.id} does not detect the {name} app {main.name} (no group passed detection)"
        else:
            pm.why_not = f"the {name} app {main.name} did not build with {bp.id}: {first.message}"
        return pm
    facts_in_image = image_facts(builder, name)
    pm.apps = {purpose: app for purpose, app in apps.items() if (apps_dir / app).is_dir()}
    missing = sorted(set(apps.values()) - set(pm.apps.values()))
    pm.apps_note = f"the suite's {name} sample apps" + (f" (not found: {', '.join(missing)})" if missing else "")

    _infer_layers(draft, pm, first)
    _infer_runtime(pm, main, facts_in_image)
    if pm.venv is not None:
        draft.managers.sbom_listings[f"venv of the {name} app"] = sbom_files(facts_in_image, pm.venv[0])

    holders = [f for f in first.layers if f.name in {layer for layer, _ in pm.tool_layers}]
    env = (first.observer or {}).get("env", {})
    pm.current = tool_version(first.observer, name)
    if first.observer is None:
        pm.build_env_note = "the observer's record is missing from the image, so the build env was not seen"
    else:
        holding = [f for f in holders if name in f.executables]
        pm.build_env = observed_build_env(holding, env)
        pm.build_env_note = (
            f"set by the {', '.join(f.name for f in holding)} layer's build env files, as a later buildpack saw them"
            if pm.build_env
            else "the tool's layer sets no build-time variable a later buildpack sees"
        )

    layers = {layer: "tool" for layer, _ in pm.tool_layers}
    if pm.venv is not None:
        layers[pm.venv[0]] = "venv"
    keywords = {"venv": VENV_WORDS, "tool": (name, pm.current or "")}
    baseline = buildpack_output(first.output, bp.id, bp.version)
    rebuilt = _learn_reuse(builder, pm, main, baseline, layers, keywords, say)
    _learn_tool_version(builder, draft, pm, main, rebuilt, layers, keywords, say)
    _learn_stale_lock(builder, draft, pm, apps_dir, say)
    # the switch from the previous manager's venv (uv before Poetry) is a free discard line: check the template on it
    _check_on_switch(pm, draft, baseline, layers, keywords)
    return pm


def _infer_layers(draft: Draft, pm: ManagerDraft, first: Observed) -> None:
    taken = {guess.layer for guess in draft.roles.roles.values() if guess.role != "app-deps"}
    found = tool_layers(first.layers, pm.name, taken)
    pm.tool_layers_note = found.note
    pm.tool_layers = [(f.name, {k: v for k, v in f.types.items() if v}) for f in found.layers]
    venvs = [f for f in first.layers if f.venv]
    if venvs:
        pm.venv = (venvs[0].name, {k: v for k, v in venvs[0].types.items() if v})
        pm.venv_note = f"{venvs[0].name} holds pyvenv.cfg in the {pm.name} build"
        if len(venvs) > 1:
            pm.venv_note += f"; also possible: {', '.join(f.name for f in venvs[1:])}"
    else:
        pm.venv_note = f"no layer of the {pm.name} build holds a pyvenv.cfg"


def _infer_runtime(pm: ManagerDraft, app: Path, image: Mapping[str, Any] | None) -> None:
    if image is None:
        pm.absent_note = pm.dev_note = "`python` did not run at launch in the image, so nothing was seen there"
        return
    tool = pm.name
    if not pm.tool_layers:
        pm.absent_note = f"{tool} is in no build-only layer ({pm.tool_layers_note})"
    elif image.get("which") or image.get("importable"):
        where = image.get("which") or f"import {tool}"
        pm.absent_note = f"{tool} is present at run time ({where}): the tool-absent check would fail, so it is left out"
    else:
        pm.absent = [tool]
        pm.absent_note = f"at launch `{tool}` is not on PATH and `import {tool}` finds nothing"
    declared = declared_dev_dependencies(app, pm.name)
    installed = set(image.get("distributions", []))
    if not declared:
        pm.dev_note = f"the {app.name} app declares no dev group in pyproject.toml"
        return
    leaked = sorted(set(declared) & installed)
    pm.dev = [d for d in declared if d not in installed]
    pm.dev_note = f"the {app.name} app's dev group ({', '.join(declared)}) is not installed at run time"
    if leaked:
        pm.dev_note = f"NOTE the dev group's {', '.join(leaked)} is installed at run time, so it is left out"


def _learn_reuse(
    builder: Builder,
    pm: ManagerDraft,
    main: Path,
    baseline: list[str],
    layers: LayerRoles,
    keywords: Keywords,
    say: Say,
) -> list[str]:
    """The rebuild's new line about the venv; returns the rebuild's lines (the next step's baseline)."""
    bp = builder.descriptor
    say(f"profile init: rebuilding {main.name} to learn the {pm.name} venv reuse line")
    again = builder.build(_copy_tree(main, builder.scratch("apps") / f"{pm.name}-again"), inspect=False)
    if not again.ok:
        pm.message_notes["venv-reused"] = f"the rebuild of {main.name} failed: {again.message}"
        return baseline
    rebuilt = buildpack_output(again.output, bp.id, bp.version)
    fresh = new_lines(baseline, rebuilt)
    learnt = learn_message("venv-reused", fresh, "venv", layers, keywords, {}, REUSE_WORDS)
    if learnt is None:
        pm.message_notes["venv-reused"] = "no line new in the rebuild says the venv was reused"
    else:
        pm.messages["venv-reused"] = learnt
    return rebuilt


def _learn_tool_version(
    builder: Builder,
    draft: Draft,
    pm: ManagerDraft,
    main: Path,
    before: list[str],
    layers: LayerRoles,
    keywords: Keywords,
    say: Say,
) -> None:
    """A copy of the buildpack with another tool version in the one TOML key holding the observed one:
    the tool must report the new version, and the venv discard line must name old and new."""
    key, tool, bp = "venv-discarded", pm.name, builder.descriptor
    if pm.current is None:
        pm.version_note = f"`{tool} --version` printed no version for a later buildpack (observer record)"
        pm.message_notes[key] = pm.version_note
        return
    bump = plan_version_bump(tool, pm.current, draft.buildpack_dir, builder.wheelhouse, online=builder.online)
    if isinstance(bump, str):
        pm.version_note = bump
        pm.message_notes[key] = bump
        return
    other, source = bump.other, bump.source
    bumped = bumped_buildpack(draft.buildpack_dir, builder.scratch("buildpacks"), tool, bump)
    say(f"profile init: rebuilding {main.name} with {tool} {other} ({bump.file} {bump.toml_key})")
    app = _copy_tree(main, builder.scratch("apps") / f"{tool}-{other}")
    observed = builder.build(app, bumped, inspect=False, observe=True)
    if not observed.ok:
        pm.version_note = f"a build with {tool} {other} failed: {observed.message}"
        pm.message_notes[key] = pm.version_note
        return
    got = tool_version(observed.observer, tool)
    if got != other:
        pm.version_note = f"setting {source['toml-key']} = {other} in {source['file']} gave {tool} {got}, not {other}"
        pm.message_notes[key] = pm.version_note
        return
    pm.other, pm.source = other, source
    pm.version_note = (
        f"`{tool} --version` printed {pm.current} for a later buildpack; {pm.current} is written in {source['file']}"
        f" {source['toml-key']}, and a copy with {other} there gave {tool} {other}"
    )
    fresh = new_lines(before, buildpack_output(observed.output, bp.id, bp.version))
    learnt = learn_reason(key, fresh, layers, keywords, pm.current, other)
    if learnt is None:
        pm.message_notes[key] = f"no new line of that build names the venv discarded from {pm.current} to {other}"
    else:
        pm.messages[key] = learnt


def _check_on_switch(
    pm: ManagerDraft, draft: Draft, baseline: list[str], layers: LayerRoles, keywords: Keywords
) -> None:
    """The first build of the second manager's app discarded the first manager's venv: if that line
    names the switch, the learnt `{reason}` template must match it (else the template is too narrow)."""
    learnt = pm.messages.get("venv-discarded")
    previous = [m for m in draft.managers.managers.values() if m.name != pm.name and not m.why_not]
    if learnt is None or not previous:
        return
    old = previous[-1].name
    from conformance.profile import fill_template, reason_pattern

    switch = [ln for ln in baseline if old in ln and pm.name in ln and line_role(ln, layers, keywords) == "venv"]
    if not switch:
        return
    pattern = re.compile(fill_template(learnt.template.replace("{reason}", reason_pattern(old, pm.name)), {}))
    if not any(pattern.search(line) for line in switch):
        pm.message_notes["venv-discarded-switch"] = (
            f"NOTE the template does not match the switch line {switch[0]!r}: the reasons are worded apart"
        )


def _learn_stale_lock(builder: Builder, draft: Draft, pm: ManagerDraft, apps_dir: Path, say: Say) -> None:
    key, lock = "stale-lock", LOCK_FILES[pm.name]
    app = apps_dir / MANAGER_APPS[pm.name]["stale-lock"]
    if not app.is_dir():
        pm.message_notes[key] = f"the sample app {app} does not exist"
        return
    say(f"profile init: building {app.name} to learn the stale-lock message")
    observed = builder.build(_copy_tree(app, builder.scratch("apps") / f"fail-{app.name}"), inspect=False)
    if observed.ok:
        pm.message_notes[key] = (
            f"the sample app {app.name} (a {lock} out of date) built successfully instead of failing"
        )
        return
    if observed.exit_code != BUILDPACK_FAILED:
        pm.message_notes[key] = f"the {app.name} build exited {observed.exit_code}, not 51: {observed.message}"
        return
    bp = builder.descriptor
    learnt = stale_lock_message(buildpack_output(observed.output, bp.id, bp.version), lock)
    if isinstance(learnt, str):
        pm.message_notes[key] = learnt
    else:
        pm.messages[key] = learnt


# profile_draft.RULE_MESSAGES: message key -> the [apps] purpose of the app that must fail.
FAILING_APPS: dict[str, str] = {
    "two-package-managers": "two-package-managers",
    "requires-python-mismatch": "requires-python-mismatch",
    "refused-variables": "refused-variable",
}


def learn_failing_apps(builder: Builder, draft: Draft, apps_dir: Path, say: Callable[[str], None]) -> None:
    """Build the suite's apps that must fail by the one-package-manager rule and take the buildpack's
    own explanation; a buildpack that builds them anyway gets a comment saying so (its checks skip)."""
    from conformance.profile import DEFAULT_APPS

    bp = builder.descriptor
    for key, purpose in FAILING_APPS.items():
        app = apps_dir / DEFAULT_APPS[purpose]
        if not app.is_dir():
            draft.message_notes[key] = f"the sample app {app} does not exist"
            continue
        user_env = dict([REFUSED_VARIABLE]) if key == "refused-variables" else None
        how = f" with {REFUSED_VARIABLE[0]}={REFUSED_VARIABLE[1]}" if user_env else ""
        say(f"profile init: building {app.name}{how} to learn the {key} message")
        observed = builder.build(
            _copy_tree(app, builder.scratch("apps") / f"fail-{app.name}"), inspect=False, user_env=user_env
        )
        if observed.ok:
            draft.message_notes[key] = (
                f"the sample app {app.name}{how} built successfully instead of failing: {bp.id} does not refuse it,"
                " so the check is skipped"
            )
            continue
        if observed.exit_code != BUILDPACK_FAILED:
            draft.message_notes[key] = f"the {app.name} build exited {observed.exit_code}, not 51: {observed.message}"
            continue
        lines = buildpack_output(observed.output, bp.id, bp.version)
        if key == "refused-variables":
            learnt = variable_message(lines, *REFUSED_VARIABLE)
        elif key == "two-package-managers":
            learnt = files_message(key, lines, [f for f in MANAGER_FILES if (app / f).is_file()])
        else:
            learnt = files_message(key, lines, [draft.version_file or ".python-version", "pyproject.toml"])
        if isinstance(learnt, str):
            draft.message_notes[key] = learnt
        else:
            draft.messages[key] = replace(learnt, output="\n".join(lines))


# ------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------

MANAGER_MESSAGE_HELP: dict[str, str] = {
    "venv-reused": "a rebuild with no change reuses the venv",
    "venv-discarded": "a change of Python, tool version or package manager discards the venv, naming the reason",
    "stale-lock": "the build fails on a lock file out of date with pyproject.toml ({file})",
}


def _flags_inline(flags: Mapping[str, bool]) -> str:
    inner = ", ".join(f"{name} = true" for name in ("build", "launch", "cache") if flags.get(name))
    return "{ " + inner + " }" if inner else "{}"


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml_string(name)


def render_managers(result: ManagersDraft, add: Callable[[str], None], *, learnt: bool) -> None:
    add("")
    add('# Lock-file package managers (`bpconform docs profiles`, "Package managers"): each table was learnt')
    add("# from a build of the suite's sample app, followed by an observer buildpack recording what a later")
    add("# buildpack sees.")
    if not learnt:
        add("# TODO not tried (--no-learn): [package-managers.uv], [package-managers.poetry] and [sbom] are left out,")
        add("# so their checks are skipped until you write them (`bpconform docs profiles`).")
        return
    for name, pm in result.managers.items():
        add("")
        if pm.why_not:
            add(f"# [package-managers.{name}] is left out: {pm.why_not}.")
            add(f"# Its checks are skipped (the profile does not promise {name}); write it by hand if the buildpack")
            add("# supports it with other sample apps (`bpconform docs profiles`).")
            continue
        _render_manager(pm, add)
    add("")
    add("[sbom]")
    if result.sbom_launch is None:
        add(f"# TODO {result.sbom_note}")
        add("# launch = true")
    else:
        add(f"# {result.sbom_note}.")
        add(f"launch = {'true' if result.sbom_launch else 'false'}")


def _render_manager(pm: ManagerDraft, add: Callable[[str], None]) -> None:
    add(f"[package-managers.{pm.name}]")
    add(f"# {pm.apps_note}.")
    add("apps = { " + ", ".join(f"{_key(k)} = {_toml_string(v)}" for k, v in pm.apps.items()) + " }")
    if pm.tool_layers:
        add(f"# {pm.tool_layers_note}; [types] from <layer>.toml.")
        add("tool-layers = { " + ", ".join(f"{_key(n)} = {_flags_inline(f)}" for n, f in pm.tool_layers) + " }")
    else:
        add(f"# TODO tool-layers: {pm.tool_layers_note}.")
        add("# tool-layers = { ... }")
    if pm.venv is not None:
        add(f"# {pm.venv_note}.")
        flags = ", ".join(f"{k} = true" for k in ("build", "launch", "cache") if pm.venv[1].get(k))
        add(f"venv = {{ name = {_toml_string(pm.venv[0])}{', ' + flags if flags else ''} }}")
    else:
        add(f"# TODO venv: {pm.venv_note}.")
        add('# venv = { name = "...", build = true, launch = true, cache = true }')
    _render_list(add, "absent-at-runtime", pm.absent, pm.absent_note)
    _render_list(add, "dev-dependencies", pm.dev, pm.dev_note)
    if pm.build_env:
        add(f"# {pm.build_env_note}.")
        add("build-env = { " + ", ".join(f"{_key(k)} = {_toml_string(v)}" for k, v in pm.build_env.items()) + " }")
    else:
        add(f"# build-env: not written: {pm.build_env_note}.")
    if pm.current and pm.other and pm.source:
        add(f"# {pm.version_note}.")
        source = ", ".join(f"{_key(k)} = {_toml_string(v)}" for k, v in pm.source.items())
        add(
            f"tool-version = {{ current = {_toml_string(pm.current)}, other = {_toml_string(pm.other)},"
            f" version-source = {{ {source} }} }}"
        )
    else:
        add(f"# TODO tool-version: {pm.version_note}.")
        add("# Without other + version-source the tool-version check is skipped.")
        if pm.current:
            add(f"tool-version = {{ current = {_toml_string(pm.current)} }}")
        add('# tool-version = { current = "...", other = "...",')
        add('#   version-source = { file = "buildpack.toml", toml-key = "..." } }')
    add("")
    add(f"[package-managers.{pm.name}.messages]")
    for key, help_text in MANAGER_MESSAGE_HELP.items():
        learnt = pm.messages.get(key)
        if learnt is None:
            add(f"# TODO {key} ({help_text}): {pm.message_notes.get(key, 'not observed')}")
            add(f"# {key} = '...'")
            continue
        add(f"# {help_text}; from the line: {learnt.line}")
        for other in learnt.alternatives[:3]:
            add(f"#   other candidate line: {other}")
        if key == "venv-discarded" and "venv-discarded-switch" in pm.message_notes:
            add(f"# {pm.message_notes['venv-discarded-switch']}")
        add(f"{key} = {_toml_string(learnt.template)}")


def _render_list(add: Callable[[str], None], key: str, values: Sequence[str], note: str) -> None:
    if values:
        add(f"# {note}.")
        add(f"{key} = {_toml_list(values)}")
    else:
        add(f"# TODO {key}: {note}.")
        add(f"# {key} = [...]")
