"""The catalogue of typical learner mistakes: every mutant must fail its check with a message naming the cause.

Each file in ``test_suite/mistakes/`` is one mistake: a module docstring describing it, ``CHECK`` (the
``tests.py`` check that must catch it), ``KEYWORD`` (a phrase the failure message must contain) and
``arguments()`` (what the learner would pass to the check). The reference implementation passing every
check is tested in ``test_checks.py``.
"""

import importlib.util
import pathlib

import pytest

import tests

MISTAKES_DIR = pathlib.Path(__file__).parent / "mistakes"
MISTAKE_FILES = sorted(MISTAKES_DIR.glob("*.py"))


def load_mistake(path):
    spec = importlib.util.spec_from_file_location(f"mistake_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_catalogue_is_large_and_covers_every_check():
    modules = [load_mistake(path) for path in MISTAKE_FILES]
    assert len(modules) >= 20
    assert {m.CHECK for m in modules} == set(tests.__all__)
    for module in modules:
        assert module.__doc__ and module.__doc__.strip(), f"{module.__name__} needs a docstring describing the mistake"


@pytest.mark.parametrize("path", MISTAKE_FILES, ids=[p.stem for p in MISTAKE_FILES])
def test_mistake_fails_its_check_with_a_clear_message(path, capsys):
    mistake = load_mistake(path)
    check = getattr(tests, mistake.CHECK)
    with pytest.raises(AssertionError) as failure:
        check(*mistake.arguments())
    message = str(failure.value)
    assert mistake.KEYWORD in message, f"{mistake.CHECK} failed, but its message does not name the cause: {message}"
    assert "\n" not in message and len(message) < 450, f"the message should be one or two sentences: {message}"
    assert failure.value.__cause__ is None
    captured = capsys.readouterr()
    assert captured.err == "", "a check must write nothing to stderr (nbgrader would score the cell 0)"
    assert captured.out == "", "a failing check must not print its success line"
