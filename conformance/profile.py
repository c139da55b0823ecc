"""Profiles: what the suite expects of a Python buildpack, kept out of the checks themselves.

The checks are written in terms of *roles* ("the runtime layer", "the package manager's layer")
and message *keys* ("the runtime was invalidated"); a small TOML profile maps those to one
buildpack's id, layer names, Python/pip versions and log wording. That is what lets the same suite
gate our reference buildpack and validate a third-party one such as heroku/python.

A Profile is data: its methods return values or None and never decide a test's outcome. The suite
(`conformance.suite.requirements`) turns a gap into a skip that names the profile, and a sample
app the profile names but that does not exist into an error, so a gap can never pass as green.

The schema is validated strictly (unknown keys are errors with a "did you mean" hint), because a
misspelt key would otherwise silently turn a check into a skip. See docs/profiles.md (`bpconform docs profiles`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from conformance.data import doc_reference, sample_apps_dir
from conformance.errors import ConformanceError, did_you_mean
from conformance.tomlcompat import dump_toml, load_toml

BUILTIN_PROFILES: tuple[str, ...] = ("reference", "heroku-python")
DEFAULT_PROFILE = "reference"

# The layer roles a check can ask for; a profile maps each to a layer name and its types.
ROLES: tuple[str, ...] = ("runtime", "package-manager", "package-cache", "app-deps")

# Message keys and the placeholders their templates may use. The suite fills a placeholder with the
# re.escape'd value it knows; a placeholder it does not fill matches any text (see Profile.message).
MESSAGE_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "runtime-reused": frozenset({"version"}),
    "runtime-invalidated": frozenset({"old", "new"}),
    "package-manager-reused": frozenset({"version"}),
    "package-manager-invalidated": frozenset({"old", "new"}),
    "detect-fail": frozenset(),
    "invalid-version": frozenset({"file", "value"}),
    "missing-dependency": frozenset({"package"}),
    "runtime-discarded": frozenset({"old", "new"}),
    # One-package-manager rule and refused build variables (docs/profiles.md, "Package managers").
    "two-package-managers": frozenset(),
    "refused-variables": frozenset({"variable"}),
    "requires-python-mismatch": frozenset(),
}
# Keys a profile may leave out because another key's template says enough: `runtime-discarded`
# (the runtime layer was discarded for *some* reason, e.g. on an upgrade) defaults to the
# `runtime-invalidated` template with every placeholder matching any text.
MESSAGE_FALLBACKS: dict[str, str] = {"runtime-discarded": "runtime-invalidated"}

# Sample apps per purpose: directory names under the apps dir (default: the repo's testapps/).
DEFAULT_APPS: dict[str, str] = {
    "default": "minimal",
    "alternative-version": "pinned-311",
    "procfile": "procfile-web",
    "pip-dependency": "pip-in-requirements",
    "not-python": "not-python",
    "invalid-version": "invalid-version",
    "missing-dependency": "missing-dependency",
    "two-package-managers": "two-package-managers",
    "refused-variable": "pip-target",
    "requires-python-mismatch": "requires-python-mismatch",
}
# Purposes whose app must build successfully: the parametrisation of most checks.
BUILDABLE_PURPOSES: tuple[str, ...] = ("default", "alternative-version", "procfile", "pip-dependency")
DEFAULT_APPS_DIR = sample_apps_dir()  # the shipped sample apps (in the wheel, or the checkout)

# Lock-file package managers a profile can describe, one `[package-managers.<name>]` table each. pip
# is not among them: its layers are the `[layers]` roles.
PACKAGE_MANAGERS: tuple[str, ...] = ("poetry", "uv")
# Per package manager: the sample apps by purpose, and the message keys with their placeholders.
PACKAGE_MANAGER_APPS: tuple[str, ...] = ("main", "stale-lock", "removed-dependency")
PACKAGE_MANAGER_MESSAGES: dict[str, frozenset[str]] = {
    "venv-reused": frozenset(),
    # {reason}: filled by the suite per input change with a pattern naming the old, then the new value.
    "venv-discarded": frozenset({"reason"}),
    "stale-lock": frozenset({"file"}),
}
PACKAGE_MANAGER_KEYS: tuple[str, ...] = (
    "apps",
    "tool-layers",
    "venv",
    "absent-at-runtime",
    "dev-dependencies",
    "build-env",
    "tool-version",
    "messages",
)
LAYER_FLAGS: tuple[str, ...] = ("build", "launch", "cache")

DEFAULT_FORBIDDEN_LAUNCH_ENV: tuple[str, ...] = ("PYTHONPATH",)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_-]*)\}")
_CONSTRAINT = re.compile(r"^\s*(==|!=|>=|<=|>|<|~=)?\s*(\d+(?:\.\d+)*)\s*$")
_PYTHON_VERSION = re.compile(r"^3\.\d+(\.\d+)?$")


@dataclass(frozen=True)
class LayerRole:
    """One layer the profile promises, with the `[types]` its `<layer>.toml` must declare."""

    role: str
    name: str
    build: bool
    launch: bool
    cache: bool
    in_image: bool  # only launch layers are exported, so this always equals `launch`

    @property
    def types(self) -> dict[str, bool]:
        return {"build": self.build, "launch": self.launch, "cache": self.cache}


@dataclass(frozen=True)
class ToolVersion:
    """Where a package manager's version is pinned in the buildpack, for the tool-version change check."""

    current: str | None
    other: str | None
    source: dict[str, str] | None  # {"file", "toml-key"} or {"unsupported": reason}


@dataclass(frozen=True)
class PackageManagerProfile:
    """What the buildpack promises for apps of one lock-file package manager (`[package-managers.<name>]`).

    Like the Profile, data only: a missing piece is None or empty, and the suite turns it into a skip
    whose reason names the profile key (`gap`)."""

    name: str
    profile_name: str
    apps: dict[str, str]
    tool_layers: tuple[LayerRole, ...]
    venv: LayerRole | None
    absent_at_runtime: tuple[str, ...]
    dev_dependencies: tuple[str, ...]
    tool_version: ToolVersion | None
    messages: dict[str, str]
    build_env: dict[str, str] = field(default_factory=dict)  # what a later buildpack must see

    @property
    def key(self) -> str:
        return f"package-managers.{self.name}"

    def gap(self, key: str) -> str:
        """The skip reason for a check needing `key` (dotted, under this table) that the profile lacks."""
        return f"profile {self.profile_name} has no {self.key}.{key}"

    def app(self, purpose: str) -> str | None:
        _check_known(purpose, PACKAGE_MANAGER_APPS, f"{self.key} app purpose")
        return self.apps.get(purpose)

    def message(self, key: str, **values: object) -> re.Pattern[str] | None:
        """The compiled regex for `key` with the `values` filled in (escaped), or None when absent.

        `reason` is the exception: the suite passes a ready pattern for it (see `reason_pattern`)."""
        _check_known(key, tuple(PACKAGE_MANAGER_MESSAGES), f"{self.key} message key")
        unknown = set(values) - PACKAGE_MANAGER_MESSAGES[key]
        if unknown:
            raise ValueError(f"message {key!r} takes {sorted(PACKAGE_MANAGER_MESSAGES[key])}, not {sorted(unknown)}")
        template = self.messages.get(key)
        if template is None:
            return None
        raw = {name: str(value) for name, value in values.items() if name == "reason"}
        plain = {name: str(value) for name, value in values.items() if name != "reason"}
        text = _fill_raw(template, raw, escaped_values=plain)
        return re.compile(text, re.MULTILINE)

    def tool_version_gap(self) -> str | None:
        """Why the tool-version change check cannot run, or None when it can."""
        version = self.tool_version
        if version is None:
            return self.gap("tool-version")
        if version.source is not None and "unsupported" in version.source:
            return (
                f"profile {self.profile_name}: {self.key} version cannot be changed ({version.source['unsupported']})"
            )
        if version.current is None or version.other is None:
            return f"profile {self.profile_name} names no {self.key}.tool-version current/other versions"
        if version.source is None:
            return self.gap("tool-version.version-source")
        return None


def write_version(
    buildpack_dir: Path, source: Mapping[str, str], version: str, *, where: str, profile: Profile
) -> None:
    """Set the TOML key `source` names (`file`, `toml-key`) to `version`, in a *copy* of the buildpack."""
    target = buildpack_dir / source["file"]
    data = load_toml(target, what="buildpack file")
    keys = source["toml-key"].split(".")
    table: Any = data
    for key in keys[:-1]:
        table = table.get(key) if isinstance(table, dict) else None
        if not isinstance(table, dict):
            break
    if not isinstance(table, dict) or keys[-1] not in table:
        raise ConformanceError(
            f"{target} has no key {source['toml-key']} (profile {profile.name}, {where})",
            f"fix {where}.toml-key in {profile.path}",
        )
    table[keys[-1]] = version
    dump_toml(data, target)


def reason_pattern(old: object, new: object) -> str:
    """What `{reason}` in a venv-discarded template becomes: any text on one line that names the old
    value and then the new one ("The Python version has changed from 3.13.5 to 3.11.2"). The wording
    is the buildpack's; that it names both values, in that order, is the rule."""
    return f"[^\\n]*?{re.escape(str(old))}[^\\n]*?{re.escape(str(new))}"


def _fill_raw(template: str, raw: Mapping[str, str], *, escaped_values: Mapping[str, str]) -> str:
    """fill_template, except that the values in `raw` go in as patterns (not escaped)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in raw:
            return raw[name]
        if name in escaped_values:
            return re.escape(escaped_values[name])
        return ".+?"

    return _PLACEHOLDER.sub(replace, template)


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path
    buildpack_id: str
    roles: dict[str, LayerRole]
    python_default: str
    python_alternative: str | None
    version_file: str
    pip_current: str | None
    pip_other: str | None
    pip_version_source: dict | None
    messages: dict[str, str]
    launch_env_required: tuple[str, ...]
    launch_env_forbidden: tuple[str, ...]
    apps: dict[str, str]
    volatile_metadata: tuple[str, ...]
    buildpack_version: str | None = None
    normalise_patch_versions: bool = True
    apps_dir: Path = field(default=DEFAULT_APPS_DIR)
    description: str = ""
    package_managers: dict[str, PackageManagerProfile] = field(default_factory=dict)
    sbom_launch: bool | None = None  # [sbom] launch; None: the profile says nothing about SBOMs

    # -- layers --------------------------------------------------------------------------------

    @property
    def layers_dir_name(self) -> str:
        """The buildpack's directory under `<layers>`: its id with `/` replaced by `_` (CNB rule)."""
        return self.buildpack_id.replace("/", "_")

    def role(self, role: str) -> LayerRole | None:
        role = role.replace("_", "-")
        _check_known(role, ROLES, "layer role")
        return self.roles.get(role)

    def require_role(self, role: str) -> LayerRole:
        """The role's layer; ProfileGap (not a pytest outcome) when the profile has none.

        Kept for callers that have already established the role exists; checks use
        `conformance.suite.requirements.need_role`, which skips with the reason instead."""
        found = self.role(role)
        if found is None:
            raise ProfileGap(f"profile {self.name} has no {role} layer")
        return found

    def layer_names(self) -> dict[str, str]:
        """layer name -> role, for reading an image's layers back into roles."""
        return {layer.name: layer.role for layer in self.roles.values()}

    def package_manager(self, name: str) -> PackageManagerProfile | None:
        """The `[package-managers.<name>]` table, or None when the buildpack does not promise it."""
        _check_known(name, PACKAGE_MANAGERS, "package manager")
        return self.package_managers.get(name)

    # -- messages ------------------------------------------------------------------------------

    def message_template(self, key: str) -> str | None:
        """The profile's template for `key`, or its documented fallback (MESSAGE_FALLBACKS), or None."""
        key = key.replace("_", "-")
        _check_known(key, tuple(MESSAGE_PLACEHOLDERS), "message key")
        template = self.messages.get(key)
        if template is None and key in MESSAGE_FALLBACKS:
            fallback = self.messages.get(MESSAGE_FALLBACKS[key])
            template = None if fallback is None else fill_template(fallback, {}, escape=False)
        return template

    def message(self, key: str, **values: object) -> re.Pattern[str] | None:
        """The compiled regex for `key`, its placeholders filled with the escaped `values`; None when
        the profile has no such message.

        A placeholder the caller gives no value for becomes a non-greedy wildcard, so a check that
        only knows the new version can still demand the rest of the wording.
        """
        key = key.replace("_", "-")
        template = self.message_template(key)
        unknown = set(values) - MESSAGE_PLACEHOLDERS[key]
        if unknown:
            raise ValueError(f"message {key!r} takes {sorted(MESSAGE_PLACEHOLDERS[key])}, not {sorted(unknown)}")
        if template is None:
            return None
        return re.compile(fill_template(template, {k: str(v) for k, v in values.items()}), re.MULTILINE)

    # -- versions ------------------------------------------------------------------------------

    def pip_bump_gap(self) -> str | None:
        """Why the pip version bump check cannot run with this profile, or None when it can."""
        source = self.pip_version_source
        if source is not None and "unsupported" in source:
            return f"profile {self.name}: pip version cannot be changed ({source['unsupported']})"
        if self.pip_current is None or self.pip_other is None:
            return f"profile {self.name} names no [pip] current/other versions"
        if source is None:
            return f"profile {self.name} does not say where the buildpack's pip version is set"
        return None

    def pip_versions(self) -> tuple[str, str] | None:
        """(current, other) for the pip bump check, or None (see `pip_bump_gap` for why)."""
        if self.pip_bump_gap() is not None or self.pip_current is None or self.pip_other is None:
            return None
        return self.pip_current, self.pip_other

    def set_pip_version(self, buildpack_dir: Path, version: str) -> None:
        """Rewrite the pip version in a *copy* of the buildpack, where the profile says it lives."""
        gap = self.pip_bump_gap()
        if gap is not None:
            raise ProfileGap(gap)
        write_version(buildpack_dir, self.pip_version_source or {}, version, where="[pip] version-source", profile=self)

    def buildpack_version_matches(self, version: str) -> bool:
        """Whether `version` satisfies the profile's `[buildpack] version` constraint (none = any)."""
        if not self.buildpack_version:
            return True
        return all(_satisfies(version, op, bound) for op, bound in parse_constraint(self.buildpack_version))

    # -- apps ----------------------------------------------------------------------------------

    def app(self, purpose: str) -> str | None:
        purpose = purpose.replace("_", "-")
        _check_known(purpose, tuple(DEFAULT_APPS), "app purpose")
        return self.apps.get(purpose)

    def app_path(self, purpose: str) -> Path | None:
        """Where the profile's app for `purpose` should be (apps_dir / name), or None when the profile
        names none. Whether it exists is for the caller to judge: a named app that is missing is an
        error, never a skip."""
        name = self.app(purpose)
        return self.apps_dir / name if name else None

    def buildable_apps(self) -> tuple[str, ...]:
        """Distinct app names that must build, in a stable order: what most checks run over."""
        names = [self.apps.get(purpose) for purpose in BUILDABLE_PURPOSES]
        return tuple(dict.fromkeys(name for name in names if name))


# ------------------------------------------------------------------------------------------------
# Templates and constraints
# ------------------------------------------------------------------------------------------------


def fill_template(template: str, values: Mapping[str, str], *, escape: bool = True) -> str:
    """Replace `{name}` placeholders; regex quantifiers like `{2}` or `{1,3}` are left alone.

    A placeholder without a value becomes `.+?`; with `escape=False` values are put in as they are
    (for building one template from another)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return re.escape(values[name]) if escape else values[name]
        return ".+?"

    return _PLACEHOLDER.sub(replace, template)


def template_placeholders(template: str) -> set[str]:
    return set(_PLACEHOLDER.findall(template))


def parse_constraint(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """`">=0.1, <1"` -> [(">=", (0, 1)), ("<", (1,))]; a bare version means `==`."""
    result = []
    for part in text.split(","):
        match = _CONSTRAINT.match(part)
        if not match:
            raise ValueError(f"not a version constraint: {part.strip()!r}")
        result.append((match.group(1) or "==", _version_tuple(match.group(2))))
    return result


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(piece) for piece in text.split("."))


def _satisfies(version: str, op: str, bound: tuple[int, ...]) -> bool:
    numbers = re.match(r"\d+(?:\.\d+)*", version.strip())
    if not numbers:
        return False
    have = _version_tuple(numbers.group(0))
    width = max(len(have), len(bound))
    left = have + (0,) * (width - len(have))
    right = bound + (0,) * (width - len(bound))
    if op == "~=":
        prefix = bound[:-1] if len(bound) > 1 else bound
        return left >= right and have[: len(prefix)] == prefix
    return {
        "==": left == right,
        "!=": left != right,
        ">=": left >= right,
        "<=": left <= right,
        ">": left > right,
        "<": left < right,
    }[op]


class ProfileGap(LookupError):
    """Something a caller asked for that the profile does not define (a role, a message, versions)."""


def _check_known(value: str, known: tuple[str, ...], what: str) -> None:
    if value not in known:
        raise ValueError(f"unknown {what} {value!r}{did_you_mean(value, known)}; known: {', '.join(known)}")


# ------------------------------------------------------------------------------------------------
# Loading and validation
# ------------------------------------------------------------------------------------------------


class _Validator:
    """Walks the raw TOML with the schema, raising one ConformanceError naming file and key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str, hint: str = "") -> None:  # -> NoReturn
        raise ConformanceError(
            f"profile {self.path}: {key}: {problem}",
            hint or f"the profile schema: {doc_reference('profiles')}",
        )

    def table(self, data: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.fail(key, f"must be a table, not {_type_name(data)}")
        for name in data:
            if name not in allowed:
                where = f"{key}.{name}" if key else name
                self.fail(
                    where,
                    f"unknown key{did_you_mean(name, allowed)}",
                    f"allowed here: {', '.join(allowed)} (see {doc_reference('profiles')})",
                )
        return data

    def string(self, data: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.fail(f"{where}.{key}" if where else key, "is required")
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            self.fail(f"{where}.{key}" if where else key, f"must be a non-empty string, not {value!r}")
        return value

    def boolean(self, data: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.fail(f"{where}.{key}", f"must be true or false, not {value!r}")
        return value

    def strings(self, data: Mapping[str, Any], key: str, where: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            self.fail(f"{where}.{key}", f"must be a list of non-empty strings, not {value!r}")
        return tuple(value)


def _type_name(value: Any) -> str:
    return {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "a list"}.get(
        type(value), type(value).__name__
    )


TOP_LEVEL_KEYS = (
    "name",
    "description",
    "apps-dir",
    "buildpack",
    "layers",
    "python",
    "pip",
    "messages",
    "launch-env",
    "snapshot",
    "apps",
    "package-managers",
    "sbom",
)


def parse_profile(data: Mapping[str, Any], path: Path) -> Profile:
    """Build a Profile from parsed TOML, validating every key and type."""
    check = _Validator(path)
    top = check.table(dict(data), "", TOP_LEVEL_KEYS)
    name = check.string(top, "name", "") or path.stem
    description = check.string(top, "description", "") or ""

    buildpack = check.table(top.get("buildpack"), "buildpack", ("id", "version"))
    if "buildpack" not in top:
        check.fail("buildpack", "is required", 'add [buildpack] with id = "<your buildpack id>"')
    buildpack_id = check.string(buildpack, "id", "buildpack", required=True)
    buildpack_version = check.string(buildpack, "version", "buildpack")
    if buildpack_version:
        try:
            parse_constraint(buildpack_version)
        except ValueError as exc:
            check.fail("buildpack.version", str(exc), 'write a constraint such as ">=0.1, <1" or "0.1.0"')

    roles = _parse_roles(check, top.get("layers"))
    python = check.table(top.get("python"), "python", ("default", "alternative", "version-file"))
    if "python" not in top:
        check.fail("python", "is required", 'add [python] with default = "3.13"')
    python_default = check.string(python, "default", "python", required=True)
    python_alternative = check.string(python, "alternative", "python")
    for key, value in (("default", python_default), ("alternative", python_alternative)):
        if value is not None and not _PYTHON_VERSION.match(value):
            check.fail(f"python.{key}", f"{value!r} is not a Python version like 3.13 or 3.13.5")
    if python_alternative is not None and python_alternative == python_default:
        check.fail("python.alternative", "must differ from python.default (it is used to test a version change)")
    version_file = check.string(python, "version-file", "python") or ".python-version"

    pip_current, pip_other, pip_source = _parse_pip(check, top.get("pip"))
    messages = _parse_messages(check, top.get("messages"))

    launch_env = check.table(top.get("launch-env"), "launch-env", ("required", "forbidden"))
    required = check.strings(launch_env, "required", "launch-env", ())
    forbidden = check.strings(launch_env, "forbidden", "launch-env", DEFAULT_FORBIDDEN_LAUNCH_ENV)
    both = sorted(set(required) & set(forbidden))
    if both:
        check.fail("launch-env", f"{', '.join(both)} both required and forbidden")

    snapshot = check.table(top.get("snapshot"), "snapshot", ("volatile-metadata", "normalise-patch-versions"))
    volatile = check.strings(snapshot, "volatile-metadata", "snapshot", ())
    normalise_patch = check.boolean(snapshot, "normalise-patch-versions", "snapshot", True)

    apps_dir_text = check.string(top, "apps-dir", "")
    apps_dir = (path.parent / apps_dir_text).resolve() if apps_dir_text else DEFAULT_APPS_DIR
    apps = _parse_apps(check, top.get("apps"))
    package_managers = _parse_package_managers(check, top.get("package-managers"), name, roles)
    sbom = check.table(top.get("sbom"), "sbom", ("launch",))
    sbom_launch = check.boolean(sbom, "launch", "sbom", False) if "launch" in sbom else None

    return Profile(
        name=name,
        path=path,
        buildpack_id=buildpack_id,
        roles=roles,
        python_default=python_default,
        python_alternative=python_alternative,
        version_file=version_file,
        pip_current=pip_current,
        pip_other=pip_other,
        pip_version_source=pip_source,
        messages=messages,
        launch_env_required=required,
        launch_env_forbidden=forbidden,
        apps=apps,
        volatile_metadata=volatile,
        buildpack_version=buildpack_version,
        normalise_patch_versions=normalise_patch,
        apps_dir=apps_dir,
        description=description,
        package_managers=package_managers,
        sbom_launch=sbom_launch,
    )


def _parse_roles(check: _Validator, data: Any) -> dict[str, LayerRole]:
    layers = check.table(data, "layers", ROLES)
    roles: dict[str, LayerRole] = {}
    seen: dict[str, str] = {}
    for role, raw in layers.items():
        where = f"layers.{role}"
        entry = check.table(raw, where, ("name", "build", "launch", "cache"))
        name = check.string(entry, "name", where, required=True)
        if name in ("build", "launch", "store"):
            check.fail(f"{where}.name", f"{name!r} is a reserved layer name in the CNB spec")
        if name in seen:
            check.fail(f"{where}.name", f"layer {name!r} is already the {seen[name]} layer")
        seen[name] = role
        launch = check.boolean(entry, "launch", where, False)
        roles[role] = LayerRole(
            role=role,
            name=name,
            build=check.boolean(entry, "build", where, False),
            launch=launch,
            cache=check.boolean(entry, "cache", where, False),
            in_image=launch,
        )
    return roles


def _parse_flags(check: _Validator, raw: Any, where: str, role: str, name: str) -> LayerRole:
    entry = check.table(raw, where, LAYER_FLAGS)
    launch = check.boolean(entry, "launch", where, False)
    return LayerRole(
        role=role,
        name=name,
        build=check.boolean(entry, "build", where, False),
        launch=launch,
        cache=check.boolean(entry, "cache", where, False),
        in_image=launch,
    )


def _check_layer_name(check: _Validator, name: str, where: str, seen: dict[str, str], owner: str) -> None:
    if name in ("build", "launch", "store"):
        check.fail(where, f"{name!r} is a reserved layer name in the CNB spec")
    if name in seen and seen[name] != owner:
        check.fail(where, f"layer {name!r} is already the {seen[name]} layer")
    seen[name] = owner


def _parse_package_managers(
    check: _Validator, data: Any, profile_name: str, roles: Mapping[str, LayerRole]
) -> dict[str, PackageManagerProfile]:
    """`[package-managers.<name>]`: one table per lock-file manager the buildpack supports."""
    tables = check.table(data, "package-managers", PACKAGE_MANAGERS)
    # A tool layer may not reuse a [layers] role's name; the venv may (it is the same layer for every app).
    layer_roles = {layer.name: f"{role} role" for role, layer in roles.items()}
    return {name: _parse_package_manager(check, raw, name, profile_name, layer_roles) for name, raw in tables.items()}


def _parse_package_manager(
    check: _Validator, raw: Any, name: str, profile_name: str, layer_roles: Mapping[str, str]
) -> PackageManagerProfile:
    where = f"package-managers.{name}"
    table = check.table(raw, where, PACKAGE_MANAGER_KEYS)
    apps_table = check.table(table.get("apps"), f"{where}.apps", PACKAGE_MANAGER_APPS)
    apps: dict[str, str] = {}
    for purpose, value in apps_table.items():
        if value is False:
            continue  # the profile opts out, as in [apps]: the checks needing this app are skipped
        if not isinstance(value, str) or not value or "/" in value:
            check.fail(f"{where}.apps.{purpose}", f"must be an app directory name or false, not {value!r}")
        apps[purpose] = value

    seen = dict(layer_roles)
    tool_layers = []
    raw_tools = check.table(table.get("tool-layers"), f"{where}.tool-layers", tuple(table.get("tool-layers") or ()))
    for layer_name, flags in raw_tools.items():
        at = f"{where}.tool-layers.{layer_name}"
        if not isinstance(layer_name, str) or not layer_name.strip():
            check.fail(at, "a tool layer needs a non-empty name")
        _check_layer_name(check, layer_name, at, seen, f"{where} tool")
        layer = _parse_flags(check, flags, at, f"{name}-tool", layer_name)
        if layer.launch:
            check.fail(
                f"{at}.launch",
                "a tool layer must not be launch = true: the suite's promise is that the tool is absent at run time",
                "leave the layer out of tool-layers if your buildpack ships the tool in the image",
            )
        tool_layers.append(layer)

    venv = None
    if "venv" in table:
        venv_table = check.table(table["venv"], f"{where}.venv", ("name", *LAYER_FLAGS))
        venv_name = check.string(venv_table, "name", f"{where}.venv", required=True) or ""
        # The venv may share the app-deps role's name (the same layer for every app), not a tool layer's.
        tools_only = {layer.name: f"{where} tool" for layer in tool_layers}
        _check_layer_name(check, venv_name, f"{where}.venv.name", tools_only, f"{where} venv")
        flags = {key: value for key, value in venv_table.items() if key != "name"}
        venv = _parse_flags(check, flags, f"{where}.venv", f"{name}-venv", venv_name)

    absent = check.strings(table, "absent-at-runtime", where, ())
    dev = check.strings(table, "dev-dependencies", where, ())
    tool_version = _parse_tool_version(check, table.get("tool-version"), f"{where}.tool-version")
    raw_env = table.get("build-env")
    env_table = check.table(raw_env, f"{where}.build-env", tuple(raw_env) if isinstance(raw_env, dict) else ())
    build_env: dict[str, str] = {}
    for variable, value in env_table.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable) or not isinstance(value, str):
            check.fail(f"{where}.build-env.{variable}", f'must be NAME = "value" (a string), not {value!r}')
        build_env[variable] = value
    messages = _parse_templates(check, table.get("messages"), f"{where}.messages", PACKAGE_MANAGER_MESSAGES)
    return PackageManagerProfile(
        name=name,
        profile_name=profile_name,
        apps=apps,
        tool_layers=tuple(tool_layers),
        venv=venv,
        absent_at_runtime=absent,
        dev_dependencies=dev,
        tool_version=tool_version,
        messages=messages,
        build_env=build_env,
    )


def _parse_tool_version(check: _Validator, data: Any, where: str) -> ToolVersion | None:
    if data is None:
        return None
    table = check.table(data, where, ("current", "other", "version-source"))
    current = check.string(table, "current", where)
    other = check.string(table, "other", where)
    if current is not None and current == other:
        check.fail(f"{where}.other", f"must differ from {where}.current (it is used to test a version change)")
    return ToolVersion(
        current, other, _parse_version_source(check, table.get("version-source"), f"{where}.version-source")
    )


def _parse_version_source(check: _Validator, raw: Any, where: str) -> dict | None:
    """`{ file, toml-key }` (a TOML key in a buildpack file) or `{ unsupported = "<reason>" }`."""
    if raw is None:
        return None
    source = check.table(raw, where, ("file", "toml-key", "unsupported"))
    if "unsupported" in source:
        reason = check.string(source, "unsupported", where, required=True)
        if len(source) > 1:
            check.fail(where, 'give either unsupported = "<reason>" or file + toml-key, not both')
        return {"unsupported": reason}
    file = check.string(source, "file", where, required=True)
    toml_key = check.string(source, "toml-key", where, required=True)
    if Path(file).is_absolute() or ".." in Path(file).parts:
        check.fail(f"{where}.file", f"{file!r} must be a path inside the buildpack directory")
    if not all(toml_key.split(".")):
        check.fail(f"{where}.toml-key", f"{toml_key!r} is not a dotted key like metadata.pip-version")
    return {"file": file, "toml-key": toml_key}


def _parse_pip(check: _Validator, data: Any) -> tuple[str | None, str | None, dict | None]:
    pip = check.table(data, "pip", ("current", "other", "version-source"))
    current = check.string(pip, "current", "pip")
    other = check.string(pip, "other", "pip")
    if current is not None and current == other:
        check.fail("pip.other", "must differ from pip.current (it is used to test a pip version change)")
    return current, other, _parse_version_source(check, pip.get("version-source"), "pip.version-source")


def _parse_messages(check: _Validator, data: Any) -> dict[str, str]:
    return _parse_templates(check, data, "messages", MESSAGE_PLACEHOLDERS)


def _parse_templates(
    check: _Validator, data: Any, table: str, placeholders: Mapping[str, frozenset[str]]
) -> dict[str, str]:
    raw = check.table(data, table, tuple(placeholders))
    messages: dict[str, str] = {}
    for key, template in raw.items():
        where = f"{table}.{key}"
        if not isinstance(template, str) or not template:
            check.fail(where, f"must be a non-empty regex string, not {template!r}")
        unknown = template_placeholders(template) - placeholders[key]
        if unknown:
            allowed = ", ".join(f"{{{name}}}" for name in sorted(placeholders[key])) or "none"
            check.fail(where, f"unknown placeholder {{{sorted(unknown)[0]}}}", f"placeholders allowed here: {allowed}")
        try:
            re.compile(fill_template(template, {}))
        except re.error as exc:
            check.fail(where, f"not a valid regular expression: {exc}", "escape literal ( ) . [ with a backslash")
        messages[key] = template
    return messages


def _parse_apps(check: _Validator, data: Any) -> dict[str, str]:
    raw = check.table(data, "apps", tuple(DEFAULT_APPS))
    apps = dict(DEFAULT_APPS)
    for purpose, value in raw.items():
        if value is False:
            apps.pop(purpose)  # the profile opts out: checks needing this app are skipped
        elif isinstance(value, str) and value and "/" not in value:
            apps[purpose] = value
        else:
            check.fail(f"apps.{purpose}", f"must be an app directory name or false, not {value!r}")
    return apps


def load_profile(name_or_path: str | Path) -> Profile:
    """A built-in profile by name, or a profile file by path."""
    text = str(name_or_path)
    if text in BUILTIN_PROFILES:
        resource = resources.files("conformance").joinpath("profiles", f"{text}.toml")
        with resources.as_file(resource) as path:
            return parse_profile(load_toml(path, what="profile"), Path(path))
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConformanceError(
            f"unknown profile {text!r}{did_you_mean(text, BUILTIN_PROFILES)}: not a built-in profile nor a file",
            f"use one of {', '.join(BUILTIN_PROFILES)} or the path of a profile .toml"
            f" (see {doc_reference('profiles')})",
        )
    return parse_profile(load_toml(path, what="profile"), path.resolve())
