"""Machine-made mutants: a seeded sample of ``benchmarks/mutation.py``'s mutants, each given to its check.

Every sampled mutant of the reference solution that changes what the learner's function computes must make
its check fail with a message (``AssertionError``): not pass (a survivor), not crash inside the check (an
error), not hang (a timeout). A mutant that passes its check and computes the same as the reference on the
tool's random valid inputs, or is hand-confirmed in ``EQUIVALENT``, is equivalent and needs nothing. The
whole set runs with ``make mutants`` (→ ``benchmarks/mutation.json``); this sample keeps CI within minutes.
"""

import importlib.util
import pathlib

import pytest

pytestmark = pytest.mark.backends("tensorflow")  # the tool's worker processes import the checks (TensorFlow)

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE_SIZE, SAMPLE_SEED = 300, 22


def _load_tool():
    spec = importlib.util.spec_from_file_location("mutation_tool", ROOT / "benchmarks" / "mutation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOL = _load_tool()
MUTANTS = TOOL.all_mutants()
SAMPLE = TOOL.sample(MUTANTS, SAMPLE_SIZE, SAMPLE_SEED)


def test_mutant_ids_are_unique_and_every_check_has_mutants():
    ids = [mutant["id"] for mutant in MUTANTS]
    assert len(ids) == len(set(ids))
    assert {mutant["check"] for mutant in MUTANTS} == set(TOOL.UNITS)
    assert {mutant["check"] for mutant in SAMPLE} == set(TOOL.UNITS)


def test_hand_confirmed_equivalents_name_existing_mutants():
    unknown = sorted(set(TOOL.EQUIVALENT) - {mutant["id"] for mutant in MUTANTS})
    assert not unknown, f"EQUIVALENT names mutants that no longer exist: {unknown}"


@pytest.fixture(scope="module")
def results():
    return TOOL.run_all(TOOL.baselines() + SAMPLE, jobs=2)


@pytest.mark.parametrize("baseline", TOOL.baselines(), ids=lambda b: b["check"])
def test_the_unmutated_unit_passes_its_check_and_its_probe(baseline, results):
    """The tool's own ground: the reference, compiled as the mutants are, passes, and the probe finds it equal
    to itself (deterministic), so a killed mutant is killed by its change."""
    result = results[baseline["id"]]
    assert result["status"] == "passed", result
    assert result["probe"].startswith("no difference"), result


@pytest.mark.parametrize("mutant", SAMPLE, ids=[f"{m['check']}-{m['id']}" for m in SAMPLE])
def test_sampled_mutant_is_killed_with_a_message(mutant, results):
    result = results[mutant["id"]]
    change = f"{mutant['line']}: {TOOL.change(mutant['original'], mutant['mutated'])}"
    if result["status"] == "equivalent":
        return
    assert result["status"] != "survived", (
        f"{mutant['check']} passes the mutant {mutant['id']} ({change}), which differs from the reference: "
        f"{result.get('witness')}")
    assert result["status"] != "error", f"{mutant['check']} crashed on the mutant {mutant['id']} ({change}): " \
                                        f"{result.get('message')} at {result.get('where')}"
    assert result["status"] != "timeout", f"{mutant['check']} ran past the time limit on {mutant['id']} ({change})"
    assert result["status"] in ("killed", "stillborn"), result
