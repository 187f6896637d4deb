"""The catalogue of typical learner mistakes: every mutant must fail its check with the message of its cause.

Each file in ``test_suite/checks/mistakes/`` is one mistake: a module docstring describing it, ``CHECK`` (the
check that must catch it), ``CAUSE`` (the key of the :class:`course_checks.harness.Cause` whose message it
must get), ``KEYWORD`` (a phrase that message must contain) and ``arguments()`` (what the learner would
pass to the check). Every cause the checks can report is triggered by at least one mutant, so each row of
each diagnosis table is tested. The reference passing every check is tested in ``test_checks.py``.
"""

import importlib.util
import pathlib

import pytest

import tests
from course_checks.harness import CAUSES

MISTAKES_DIR = pathlib.Path(__file__).parent / "mistakes"
MISTAKE_FILES = sorted(MISTAKES_DIR.glob("*.py"))


def load_mistake(path):
    spec = importlib.util.spec_from_file_location(f"mistake_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MISTAKES = {path.stem: load_mistake(path) for path in MISTAKE_FILES}


def test_every_mistake_is_described_and_names_a_known_cause():
    for name, mistake in MISTAKES.items():
        assert mistake.__doc__ and mistake.__doc__.strip(), f"{name} needs a docstring describing the mistake"
        assert mistake.CHECK in tests.__all__, f"{name}: unknown check {mistake.CHECK}"
        assert mistake.CAUSE in CAUSES, f"{name}: unknown cause {mistake.CAUSE}"
        assert mistake.CAUSE.split(".")[0] == CAUSES[mistake.CAUSE].key.split(".")[0]


def test_every_cause_is_triggered_by_a_mistake():
    """Each row of every diagnosis table (and every other failure message) has its mutant."""
    untested = sorted(set(CAUSES) - {mistake.CAUSE for mistake in MISTAKES.values()})
    assert not untested, f"causes without a mutant in test_suite/checks/mistakes/: {untested}"


def test_every_check_has_mistakes():
    checked = {mistake.CHECK for mistake in MISTAKES.values()}
    assert checked == set(tests.__all__)


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_mistake_fails_its_check_with_its_cause(name, capsys):
    mistake = MISTAKES[name]
    check = getattr(tests, mistake.CHECK)
    with pytest.raises(AssertionError) as failure:
        check(*mistake.arguments())
    message = str(failure.value)
    found = getattr(failure.value, "cause", None)
    assert found == mistake.CAUSE, f"{mistake.CHECK} blamed {found} instead of {mistake.CAUSE}: {message}"
    assert mistake.KEYWORD in message, f"the message does not contain {mistake.KEYWORD!r}: {message}"
    assert "\n" not in message and len(message) < 450, f"the message should be one or two sentences: {message}"
    assert failure.value.__cause__ is None
    captured = capsys.readouterr()
    assert captured.err == "", "a check must write nothing to stderr (nbgrader would score the cell 0)"
    assert captured.out == "", "a failing check must not print its success line"
