"""The mutation kit's own tests: every mutant really changes its copy, the matrix logic is right, and
(with Docker) a few cheap mutants are really caught by the suite with a narrow selection."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import re
from pathlib import Path

import pytest

from conformance.profile import load_profile

from . import run
from .mutants import BUILDPACK_DIR, MUTANTS, Edit, Mutant, MutationError, by_name, check_matches

SUITE_DIR = Path(__file__).resolve().parents[2] / "conformance" / "suite"
PLUGIN = Path(__file__).resolve().parents[2] / "conformance" / "plugin.py"


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def suite_check_names() -> set[str]:
    names = set()
    for module in SUITE_DIR.glob("test_*.py"):
        names |= {match.removeprefix("test_") for match in re.findall(r"^def (test_\w+)", module.read_text(), re.M)}
    return names


# ------------------------------------------------------------------------------------------------
# The mutants apply, each to a copy, and really change it
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mutant", [m for m in MUTANTS if m.changes_buildpack], ids=lambda m: m.name)
def test_mutant_changes_its_copy(mutant: Mutant, tmp_path: Path) -> None:
    before = tree_digest(BUILDPACK_DIR)
    copy = mutant.make_copy(tmp_path)
    assert tree_digest(BUILDPACK_DIR) == before, "making a mutant touched the shipped buildpack"
    assert tree_digest(copy) != before, f"{mutant.name}: the copy is identical to the shipped buildpack"
    for edit in mutant.edits:
        original = (BUILDPACK_DIR / edit.path).read_text()
        mutated = (copy / edit.path).read_text()
        assert mutated != original, f"{mutant.name}: {edit.path} unchanged"
        assert mutated.count(edit.new) >= 1 if edit.new else mutated.count(edit.old) < original.count(edit.old)
        if edit.old not in edit.new:
            assert edit.old not in mutated, f"{mutant.name}: the replaced text is still in {edit.path}"
    for source in (copy / "lib").rglob("*.py"):
        ast.parse(source.read_text(), filename=str(source))  # still valid Python: the mutant builds


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_expected_checks_are_real_suite_checks(mutant: Mutant) -> None:
    known = suite_check_names()
    assert mutant.expected_checks, f"{mutant.name} declares no check that must fail"
    for expected in mutant.expected_checks:
        assert expected.split("[", 1)[0] in known, f"{mutant.name}: no suite check named {expected!r}"


def test_mutants_each_break_one_thing() -> None:
    names = [m.name for m in MUTANTS]
    assert len(names) == len(set(names)) >= 12
    for mutant in MUTANTS:
        assert mutant.changes_buildpack != bool(mutant.pytest_args), (
            f"{mutant.name}: a mutant changes either the buildpack or a platform setting"
        )


def test_lifecycle_variant_is_a_platform_setting_the_plugin_knows() -> None:
    mutant = by_name("lifecycle-1393")
    assert mutant.only_expected and mutant.expected_checks == ("build_time_path_order", "bogus_user_env_does_not_win")
    for argument in mutant.pytest_args:
        assert argument in PLUGIN.read_text(), f"the plugin has no option {argument}"


def test_renamed_venv_mutant_gets_a_matching_profile(tmp_path: Path) -> None:
    mutant = by_name("venv-sorts-before-python")
    path = run.write_profile(mutant, tmp_path)
    assert path is not None
    profile = load_profile(path)
    assert profile.require_role("app-deps").name == "app-venv"
    assert profile.require_role("runtime").name == "python"
    copy = mutant.make_copy(tmp_path)
    assert 'VENV_LAYER = "app-venv"' in (copy / "lib/bpconform_python/build.py").read_text()
    assert "app-venv" < "python" < "venv", "the point of the mutant: the new name sorts before python"


def test_edit_refuses_a_missing_or_ambiguous_anchor(tmp_path: Path) -> None:
    (tmp_path / "f.py").write_text("a = 1\na = 1\nb = 2\n")
    with pytest.raises(MutationError, match="0 times"):
        Edit("f.py", "c = 3", "c = 4").apply(tmp_path)
    with pytest.raises(MutationError, match="2 times"):
        Edit("f.py", "a = 1", "a = 2").apply(tmp_path)
    Edit("f.py", "b = 2", "b = 3").apply(tmp_path)
    assert (tmp_path / "f.py").read_text() == "a = 1\na = 1\nb = 3\n"


def test_mutant_refuses_the_shipped_buildpack() -> None:
    with pytest.raises(MutationError, match="shipped"):
        by_name("pip-layer-launch").apply(BUILDPACK_DIR)


def test_baseline_covers_every_selection_of_the_chosen_mutants() -> None:
    default = by_name("pip-layer-launch")
    own = by_name("uv-sync-not-locked")
    assert run.baseline_selection([default]) == default.selection
    assert run.baseline_selection([default, own, by_name("venv-with-pip")]) == (
        f"({default.selection}) or ({own.selection})"
    )
    assert run.baseline_selection([]) == run.DEFAULT_SELECTION


def test_lockfile_mutants_select_the_package_manager_checks_they_expect() -> None:
    """A mutant with its own selection must select its intended checks (else it cannot be killed)."""
    for mutant in MUTANTS:
        if mutant.selection == run.DEFAULT_SELECTION:
            continue
        for expected in mutant.expected_checks:
            base = expected.split("[", 1)[0]
            words = re.findall(r"[a-z_]+", mutant.selection)
            assert any(word in base for word in words if word not in ("and", "or", "not", "uv", "minimal")), (
                f"{mutant.name}: its selection {mutant.selection!r} does not name {expected}"
            )


def test_check_matching() -> None:
    assert check_matches("layer_types", "layer_types[role=runtime]")
    assert check_matches("layer_types", "layer_types")
    assert not check_matches("layer_types", "layer_types_extra")
    assert check_matches("layer_types[role=runtime]", "layer_types[role=runtime]")
    assert not check_matches("layer_types[role=runtime]", "layer_types[role=app-deps]")


# ------------------------------------------------------------------------------------------------
# Matrix logic
# ------------------------------------------------------------------------------------------------


def record(check: str, outcome: str, reason: str = "", app: str = "minimal") -> dict[str, str]:
    return {"check": check, "app": app, "outcome": outcome, "reason": reason}


CRASH_REASON = "conformance.fixtures.BuildFailed: building minimal failed (exit 51): buildpack failed"


def test_check_states_prefer_real_failures_over_crashes() -> None:
    states = run.check_states(
        [
            record("a", "passed"),
            record("a", "failed", "boom", app="other"),
            record("b", "error", CRASH_REASON),
            record("c", "skipped"),
            record("d", "passed"),
            record("d", "skipped", app="other"),
        ]
    )
    assert {name: s.state for name, s in states.items()} == {"a": "fail", "b": "crash", "c": "skip", "d": "pass"}
    assert states["a"].reasons == ["[other] boom"]


def result_for(mutant: Mutant, records: list[dict[str, str]], baseline_failing: set[str] = frozenset()):
    result = run.MutantResult(mutant.name, mutant.description, list(mutant.expected_checks), "", {}, 1.0, 1)
    result.checks = run.check_states(records)
    run.classify(result, mutant, set(baseline_failing))
    return result


def test_classify_verdicts() -> None:
    mutant = Mutant("m", "d", ("x", "y[role=a]"))
    intended = result_for(mutant, [record("x", "failed", "assert"), record("z", "failed", "other")])
    assert intended.verdict == run.KILLED_INTENDED
    assert (
        intended.intended_failed == ["x"]
        and intended.other_failed == ["z"]
        and intended.intended_missed == ["y[role=a]"]
    )

    other = result_for(mutant, [record("x", "passed"), record("y[role=b]", "failed", "assert")])
    assert other.verdict == run.KILLED_OTHER and other.intended_missed == ["x", "y[role=a]"]

    crash_only = result_for(mutant, [record("x", "error", CRASH_REASON)])
    assert crash_only.verdict == run.KILLED_OTHER, "a crash is not a kill by the intended check"

    survived = result_for(mutant, [record("x", "passed"), record("z", "failed", "flaky")], {"z"})
    assert survived.verdict == run.SURVIVED, "a check failing on the unmodified buildpack is no kill"


def test_only_expected_flags_extra_failures() -> None:
    mutant = Mutant("m", "d", ("x",), only_expected=True)
    clean = result_for(mutant, [record("x", "failed", "assert"), record("y", "passed")])
    noisy = result_for(mutant, [record("x", "failed", "assert"), record("y", "failed", "assert")])
    assert clean.only_ok and not noisy.only_ok
    assert "(and only it)" in run.summary_rows([clean])[0][2]
    assert "(but not only it)" in run.summary_rows([noisy])[0][2]


def test_matrix_cells_and_totals() -> None:
    mutant = by_name("pip-layer-launch")
    result = result_for(
        mutant,
        [
            record("layer_types[role=package-manager]", "failed", "assert"),
            record("layer_in_image[role=package-manager]", "passed"),
            record("image_snapshot", "failed", "snapshot"),
            record("launch_env", "skipped"),
        ],
    )
    assert run.cell(result, "layer_types[role=package-manager]", mutant) == "**K**"
    assert run.cell(result, "layer_in_image[role=package-manager]", mutant) == "!"
    assert run.cell(result, "image_snapshot", mutant) == "k"
    assert run.cell(result, "launch_env", mutant) == "s"
    assert run.cell(result, "not_selected", mutant) == ""
    survivor = result_for(by_name("pip-cache-launch"), [record("launch_env", "passed")])
    assert run.totals([result, survivor]) == {
        run.KILLED_INTENDED: 1,
        run.KILLED_OTHER: 0,
        run.SURVIVED: 1,
        "total": 2,
    }
    text = run.render_text([result, survivor], None, 60.0)
    assert "2 mutants: 1 killed by an intended check, 0 killed by another check only, 1 survived" in text


def test_readme_section_is_added_once_then_replaced(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Project\n\nIntro.\n")
    run.update_readme(readme, "first body")
    run.update_readme(readme, "second body")
    text = readme.read_text()
    assert text.count(run.README_HEADING) == 1 and text.count(run.START_MARKER) == 1
    assert "second body" in text and "first body" not in text
    assert text.startswith("# Project\n\nIntro.\n")
    readme.write_text(text + "\n## Later section\n\nkept\n")
    run.update_readme(readme, "third body")
    assert readme.read_text().endswith("third body\n<!-- mutants:end -->\n\n## Later section\n\nkept\n")


def test_outputs_round_trip_through_json(tmp_path: Path) -> None:
    mutant = by_name("venv-with-pip")
    result = result_for(mutant, [record("pip_absent_at_runtime", "failed", "pip works")])
    baseline = result_for(Mutant("baseline", "b", ()), [record("pip_absent_at_runtime", "passed")])
    run.write_outputs([result], baseline, 12.0, tmp_path / "reports", None)
    data = json.loads((tmp_path / "reports" / "mutants.json").read_text())
    assert data["totals"][run.KILLED_INTENDED] == 1
    results, again_baseline, wall = run.from_json(data)
    assert results[0].verdict == result.verdict and results[0].checks == result.checks
    assert again_baseline is not None and wall == 12.0
    assert "| pip_absent_at_runtime | . | **K** |" in (tmp_path / "reports" / "mutants.md").read_text()


# ------------------------------------------------------------------------------------------------
# A few cheap mutants through the real suite (one build of the default app each)
# ------------------------------------------------------------------------------------------------

CHEAP = [
    ("pip-layer-launch", "minimal and test_layer_types", "layer_types[role=package-manager]"),
    ("venv-with-pip", "minimal and test_pip_absent_at_runtime", "pip_absent_at_runtime"),
    ("ensurepip-wheel-removed", "minimal and test_ensurepip_recovers_pip_offline", "ensurepip_recovers_pip_offline"),
    # a lock-file mutant: one failing build of the uv stale-lock app (no venv, no run)
    ("uv-sync-not-locked", "test_package_managers and uv and stale_lock", "stale_lock_fails_with_message"),
]


@pytest.mark.docker
@pytest.mark.parametrize(("name", "selection", "check"), CHEAP, ids=[c[0] for c in CHEAP])
def test_cheap_mutant_is_killed_by_its_check(name: str, selection: str, check: str, tmp_path: Path) -> None:
    mutant = dataclasses.replace(by_name(name), selection=selection)
    result = run.run_mutant(mutant, tmp_path, set())
    assert result.checks, f"the suite run of {name} produced no records (exit {result.exit_code})"
    assert result.verdict == run.KILLED_INTENDED, f"{name}: {result.verdict}; checks: {result.checks}"
    assert any(check_matches(check, failed) for failed in result.intended_failed), (
        f"{name}: {check} did not fail: {result.checks}"
    )
