from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from conformance.errors import PlatformError
from conformance.platform.buildpack import Buildpack, BuildpackRegistry, GroupEntry, RunTarget, Target
from conformance.platform.detect import (
    DetectRun,
    buildpack_plan_from,
    group_toml,
    plan_after_build,
    plan_toml,
    resolve_order,
)


def bp(bp_id: str, version: str = "1", *, order=(), targets=(), homepage=None) -> Buildpack:
    return Buildpack(
        path=Path("/nowhere") / bp_id,
        api="0.10",
        id=bp_id,
        version=version,
        name=bp_id,
        clear_env=False,
        targets=tuple(targets),
        order=tuple(tuple(group) for group in order),
        homepage=homepage,
    )


def e(bp_id: str, version: str | None = "1", optional: bool = False) -> GroupEntry:
    return GroupEntry(bp_id, version, optional)


PASS = DetectRun(0, "", None)
FAIL = DetectRun(100, "nothing for me here", None)


def passing(provides=(), requires=(), **extra) -> DetectRun:
    plan = {
        "provides": [{"name": n} for n in provides],
        "requires": [r if isinstance(r, dict) else {"name": r} for r in requires],
        **extra,
    }
    return DetectRun(0, "", plan)


class FakeDetect:
    """Answers detect from a table and counts the calls."""

    def __init__(self, runs: dict[str, DetectRun]):
        self.runs = runs
        self.calls: Counter[str] = Counter()

    def __call__(self, buildpack: Buildpack) -> DetectRun:
        self.calls[buildpack.id] += 1
        return self.runs[buildpack.id]


def registry(*buildpacks: Buildpack) -> BuildpackRegistry:
    return BuildpackRegistry(buildpacks)


def ids(result) -> list[str]:
    return [b.id for b in result.group]


def test_first_passing_group_wins():
    reg = registry(bp("a"), bp("b"), bp("c"))
    detect = FakeDetect({"a": FAIL, "b": PASS, "c": PASS})
    result = resolve_order([[e("a"), e("c")], [e("b"), e("c")]], reg, detect)
    assert ids(result) == ["b", "c"]
    assert [(b.id, r.exit_code) for b, r in result.outcomes] == [("a", 100), ("c", 0), ("b", 0)]


def test_each_buildpack_detects_once():
    reg = registry(bp("a"), bp("b"), bp("c"))
    detect = FakeDetect({"a": FAIL, "b": FAIL, "c": PASS})
    result = resolve_order([[e("c"), e("a")], [e("c"), e("b")], [e("c")]], reg, detect)
    assert ids(result) == ["c"]
    assert detect.calls == Counter({"a": 1, "b": 1, "c": 1})


def test_optional_buildpack_may_fail_or_error():
    reg = registry(bp("a"), bp("opt"), bp("err"))
    detect = FakeDetect({"a": PASS, "opt": FAIL, "err": DetectRun(3, "boom", None)})
    result = resolve_order([[e("opt", optional=True), e("a"), e("err", optional=True)]], reg, detect)
    assert ids(result) == ["a"]


def test_group_of_only_optional_failures_does_not_pass():
    reg = registry(bp("opt"))
    with pytest.raises(PlatformError) as info:
        resolve_order([[e("opt", optional=True)]], reg, FakeDetect({"opt": FAIL}))
    assert info.value.exit_code == 20


def test_all_fail_is_exit_20_with_report():
    reg = registry(bp("example/python"), bp("example/node"))
    detect = FakeDetect(
        {
            "example/python": DetectRun(100, "line 1\nno requirements.txt found\n", None),
            "example/node": DetectRun(100, "no package.json", None),
        }
    )
    with pytest.raises(PlatformError) as info:
        resolve_order([[e("example/python")], [e("example/node")]], reg, detect)
    err = info.value
    assert err.exit_code == 20
    assert "example/python@1: fail (exit 100)" in err.message
    assert "example/node@1: fail (exit 100)" in err.message
    assert "| no requirements.txt found" in err.message
    assert "no buildpack recognised the app" in err.hint


def test_an_error_and_no_pass_is_exit_21():
    reg = registry(bp("a"), bp("b"))
    detect = FakeDetect({"a": DetectRun(1, "Traceback: oops", None), "b": FAIL})
    with pytest.raises(PlatformError) as info:
        resolve_order([[e("a")], [e("b")]], reg, detect)
    assert info.value.exit_code == 21
    assert "a@1: error (exit 1)" in info.value.message
    assert "| Traceback: oops" in info.value.message
    assert "bin/detect" in info.value.hint


def test_error_in_a_group_does_not_stop_a_later_group():
    reg = registry(bp("a"), bp("b"))
    result = resolve_order([[e("a")], [e("b")]], reg, FakeDetect({"a": DetectRun(2, "", None), "b": PASS}))
    assert ids(result) == ["b"]


def test_unknown_buildpack_is_exit_22():
    with pytest.raises(PlatformError) as info:
        resolve_order([[e("missing")]], registry(bp("a")), FakeDetect({}))
    assert info.value.exit_code == 22


def test_empty_order():
    with pytest.raises(PlatformError, match="order is empty") as info:
        resolve_order([], registry(), FakeDetect({}))
    assert info.value.exit_code == 20


# --- build plan ------------------------------------------------------------------------------------


def test_plan_entries_go_to_the_provider():
    reg = registry(bp("python"), bp("pip"))
    detect = FakeDetect(
        {
            "python": passing(provides=["python"], requires=[{"name": "python", "metadata": {"version": "3.13"}}]),
            "pip": passing(requires=[{"name": "python", "metadata": {"build": True}}]),
        }
    )
    result = resolve_order([[e("python"), e("pip")]], reg, detect)
    assert ids(result) == ["python", "pip"]
    assert result.plan == {
        "python": [
            {"name": "python", "metadata": {"version": "3.13"}},
            {"name": "python", "metadata": {"build": True}},
        ],
        "pip": [],
    }
    assert result.buildpack_plan("pip") == {"entries": []}
    assert plan_toml(result) == {
        "entries": [
            {
                "providers": [{"id": "python", "version": "1"}],
                "requires": [
                    {"name": "python", "metadata": {"version": "3.13"}},
                    {"name": "python", "metadata": {"build": True}},
                ],
            }
        ]
    }


def test_require_before_provide_fails():
    reg = registry(bp("user"), bp("provider"))
    detect = FakeDetect({"user": passing(requires=["python"]), "provider": passing(provides=["python"])})
    with pytest.raises(PlatformError) as info:
        resolve_order([[e("user"), e("provider")]], reg, detect)
    assert info.value.exit_code == 20
    assert "user@1 requires python which no earlier buildpack provides" in info.value.message
    assert "build plans do not fit together" in info.value.hint


def test_unused_provide_fails_but_optional_provider_is_dropped():
    reg = registry(bp("a"), bp("b"))
    detect = FakeDetect({"a": passing(provides=["x"]), "b": PASS})
    with pytest.raises(PlatformError, match="a@1 provides x which no later buildpack requires"):
        resolve_order([[e("a"), e("b")]], reg, detect)
    result = resolve_order([[e("a", optional=True), e("b")]], reg, detect)
    assert ids(result) == ["b"]


def test_optional_requirer_without_provider_is_dropped():
    reg = registry(bp("main"), bp("extra"))
    detect = FakeDetect({"main": PASS, "extra": passing(requires=["node"])})
    result = resolve_order([[e("main"), e("extra", optional=True)]], reg, detect)
    assert ids(result) == ["main"]
    assert result.plan == {"main": []}


def test_a_provide_after_the_last_require_is_unused():
    reg = registry(bp("a"), bp("b"), bp("c"))
    detect = FakeDetect({"a": passing(provides=["x"]), "b": passing(requires=["x"]), "c": passing(provides=["x"])})
    with pytest.raises(PlatformError, match="c@1 provides x which no later buildpack requires"):
        resolve_order([[e("a"), e("b"), e("c")]], reg, detect)


def test_every_provider_receives_all_requires_of_its_entry():
    reg = registry(bp("a"), bp("b"), bp("c"), bp("d"))
    detect = FakeDetect(
        {
            "a": passing(provides=["x"]),
            "b": passing(requires=["x"]),
            "c": passing(provides=["x"]),
            "d": passing(requires=["x"]),
        }
    )
    result = resolve_order([[e("a"), e("b"), e("c"), e("d")]], reg, detect)
    both = [{"name": "x", "metadata": {}}, {"name": "x", "metadata": {}}]
    assert result.plan == {"a": both, "b": [], "c": both, "d": []}
    assert [p["id"] for p in plan_toml(result)["entries"][0]["providers"]] == ["a", "c"]


def test_or_alternatives_are_tried_in_order():
    reg = registry(bp("python"), bp("app"))
    detect = FakeDetect(
        {
            # first alternative provides "conda" which nobody wants; the [[or]] one provides python
            "python": passing(provides=["conda"], **{"or": [{"provides": [{"name": "python"}]}]}),
            "app": passing(requires=["python"]),
        }
    )
    result = resolve_order([[e("python"), e("app")]], reg, detect)
    assert ids(result) == ["python", "app"]
    assert result.plan["python"] == [{"name": "python", "metadata": {}}]


def test_earlier_alternative_preferred_when_both_fit():
    reg = registry(bp("p"), bp("app"))
    detect = FakeDetect(
        {
            "p": passing(
                provides=["x"], requires=[{"name": "x", "metadata": {"alt": 0}}], **{"or": [{"provides": []}]}
            ),
            "app": PASS,
        }
    )
    result = resolve_order([[e("p"), e("app")]], reg, detect)
    assert result.plan["p"] == [{"name": "x", "metadata": {"alt": 0}}]


def test_optional_with_or_keeps_trying_alternatives_before_dropping():
    reg = registry(bp("opt"), bp("main"))
    detect = FakeDetect(
        {
            "opt": passing(
                requires=["nothing"], **{"or": [{"provides": [{"name": "y"}], "requires": [{"name": "y"}]}]}
            ),
            "main": PASS,
        }
    )
    result = resolve_order([[e("opt", optional=True), e("main")]], reg, detect)
    # the first alternative fails; the [[or]] one is self-consistent, so opt stays in the group
    assert ids(result) == ["opt", "main"]
    assert result.plan["opt"] == [{"name": "y", "metadata": {}}]


@pytest.mark.parametrize(
    ("plan", "needle"),
    [
        ({"provides": [{}]}, "provides[0] has no name"),
        ({"requires": {"name": "x"}}, "requires must be an array of tables"),
        ({"requires": [{"name": "x", "version": "1"}]}, "metadata.version"),
        ({"requires": [{"name": "x", "metadata": "v1"}]}, "metadata must be a table"),
        ({"or": [{"requires": [{"name": ""}]}]}, "or[0].requires[0] has no name"),
    ],
)
def test_malformed_plan_is_a_buildpack_error(plan, needle):
    reg = registry(bp("bad"))
    with pytest.raises(PlatformError) as info:
        resolve_order([[e("bad")]], reg, FakeDetect({"bad": DetectRun(0, "", plan)}))
    assert info.value.exit_code == 21
    assert "bad@1: error" in info.value.message
    assert needle in info.value.message


def test_from_plan_file(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text('[[provides]]\nname = "python"\n')
    assert DetectRun.from_plan_file(0, "out", plan.parent, plan.name).plan == {"provides": [{"name": "python"}]}
    assert DetectRun.from_plan_file(100, "", plan.parent, plan.name).plan is None
    plan.write_text("[[provides]\n")
    run = DetectRun.from_plan_file(0, "out", plan.parent, plan.name)
    assert run.exit_code == -1
    assert "malformed build plan" in run.error


# --- composites ------------------------------------------------------------------------------------


def test_composite_expands_with_the_rest_of_the_group():
    meta = bp("meta", order=[[e("python"), e("pip", optional=True)], [e("node")]])
    reg = registry(meta, bp("python"), bp("pip"), bp("node"), bp("procfile"))
    detect = FakeDetect({"python": FAIL, "pip": PASS, "node": PASS, "procfile": PASS})
    result = resolve_order([[e("meta"), e("procfile")]], reg, detect)
    assert ids(result) == ["node", "procfile"]
    assert detect.calls["procfile"] == 1


def test_optional_composite_is_skipped_when_none_of_its_groups_pass():
    meta = bp("meta", order=[[e("python")]])
    reg = registry(meta, bp("python"), bp("procfile"))
    detect = FakeDetect({"python": FAIL, "procfile": PASS})
    result = resolve_order([[e("meta", optional=True), e("procfile")]], reg, detect)
    assert ids(result) == ["procfile"]
    with pytest.raises(PlatformError):
        resolve_order([[e("meta"), e("procfile")]], reg, detect)


def test_nested_composites_and_dedup_by_id():
    inner = bp("inner", order=[[e("a"), e("b")]])
    outer = bp("outer", order=[[e("a"), e("inner")]])
    reg = registry(inner, outer, bp("a"), bp("b"))
    detect = FakeDetect({"a": PASS, "b": PASS})
    result = resolve_order([[e("outer")]], reg, detect)
    assert ids(result) == ["a", "b"]  # "a" from inner is not added twice
    assert detect.calls == Counter({"a": 1, "b": 1})


def test_cyclic_composites_are_an_error():
    reg = registry(bp("x", order=[[e("y")]]), bp("y", order=[[e("x")]]))
    with pytest.raises(PlatformError, match="x@1 -> y@1 -> x@1") as info:
        resolve_order([[e("x")]], reg, FakeDetect({}))
    assert info.value.exit_code == 22


# --- targets and output files ----------------------------------------------------------------------


def test_non_optional_buildpack_for_another_target_errors_without_running():
    arm_only = bp("arm", targets=[Target(os="linux", arch="arm64")])
    reg = registry(arm_only, bp("any"))
    detect = FakeDetect({"arm": PASS, "any": PASS})
    target = RunTarget("linux", "amd64", "debian", "12")
    with pytest.raises(PlatformError) as info:
        resolve_order([[e("arm")]], reg, detect, target=target)
    assert info.value.exit_code == 21
    assert "does not support the run image target linux/amd64 debian 12" in info.value.message
    assert detect.calls["arm"] == 0
    assert ids(resolve_order([[e("arm")], [e("any")]], reg, detect, target=target)) == ["any"]


def test_group_toml_shape():
    reg = registry(bp("a", homepage="https://a.example"), bp("b", "2.0"))
    result = resolve_order([[e("a"), e("b", "2.0", optional=True)]], reg, FakeDetect({"a": PASS, "b": PASS}))
    assert group_toml(result) == {
        "group": [
            {"id": "a", "version": "1", "api": "0.10", "homepage": "https://a.example"},
            {"id": "b", "version": "2.0", "api": "0.10"},
        ]
    }


def test_entry_without_version_uses_the_only_registered_one():
    reg = registry(bp("a", "3.1.4"))
    result = resolve_order([[e("a", None)]], reg, FakeDetect({"a": PASS}))
    assert result.group[0].version == "3.1.4"


def test_met_entries_are_not_passed_to_later_providers():
    reg = registry(bp("a"), bp("b"), bp("c"), bp("d"))
    detect = FakeDetect(
        {
            "a": passing(provides=["x"]),
            "b": passing(requires=["x"]),
            "c": passing(provides=["x"]),
            "d": passing(requires=["x"]),
        }
    )
    result = resolve_order([[e("a"), e("b"), e("c"), e("d")]], reg, detect)
    assert buildpack_plan_from(result.entries, "c") == result.buildpack_plan("c")
    # "a" met x (nothing in its build.toml [[unmet]]): "c" no longer receives it
    remaining = plan_after_build(result.entries, met=["x"])
    assert buildpack_plan_from(remaining, "c") == {"entries": []}
    # "a" declared x unmet: "c" still gets it
    assert buildpack_plan_from(plan_after_build(result.entries, met=[]), "c")["entries"]
