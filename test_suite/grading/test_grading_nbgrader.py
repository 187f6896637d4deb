"""Plain nbgrader from the course root, with the project's config: the documented path fills the gradebook
(``make exercises``: ``nbgrader generate_assignment`` + ``autograder schedule``), then ``nbgrader
autograde``, ``generate_feedback`` and ``export`` work, sandboxed, with due dates and the late policy."""

import csv
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from test_grading_course import ASSIGNMENT, NOTEBOOK, REPOSITORY, completed_exercise, hidden_test_lines

BIN = os.path.dirname(sys.executable)
SCHEDULE = f'''
c.Schedule.due = {{"{ASSIGNMENT}": "2030-01-01 00:00:00 UTC"}}
c.Schedule.late_policy = {{"{ASSIGNMENT}": "50% per day"}}
'''


def run(command, cwd):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"]})
    assert result.returncode == 0, f"{command}: {result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A copy of the course (its config, grader, checks and first assignment), released and graded with nbgrader."""
    root = tmp_path_factory.mktemp("nbgrader-course")
    shutil.copy(os.path.join(REPOSITORY, "tests.py"), root)
    # The grader, as in the repository: nbgrader_config.py loads autograder/grading/autograde_config.py, and
    # `python -m autograder` run here finds the package in the current folder (as from the repository's root).
    shutil.copytree(os.path.join(REPOSITORY, "autograder"), root / "autograder",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(REPOSITORY, "solutions", ASSIGNMENT), root / "solutions" / ASSIGNMENT)
    with open(os.path.join(REPOSITORY, "nbgrader_config.py")) as handle:
        (root / "nbgrader_config.py").write_text(handle.read() + SCHEDULE)
    run([os.path.join(BIN, "nbgrader"), "generate_assignment", ASSIGNMENT, "--force"], root)  # make exercises
    run([sys.executable, "-m", "autograder", "schedule"], root)
    exercise, completed = completed_exercise(ASSIGNMENT, NOTEBOOK)
    # Alice pasted a copy of the FPN check below it: nbgrader grades one of the two, as DeduplicateIds means.
    index = next(i for i, c in enumerate(completed.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "check_fpn")
    copy = nbformat.from_dict(json.loads(json.dumps(completed.cells[index])))
    copy.id = "alice-copied-check"
    completed.cells.insert(index + 1, copy)
    for student, nb, timestamp in (("alice", completed, "2030-01-01 20:00:00 UTC"), ("bob", exercise, "")):
        folder = root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, str(folder / (NOTEBOOK + ".ipynb")))
        if timestamp:
            (folder / "timestamp.txt").write_text(timestamp)
    graded = run([os.path.join(BIN, "nbgrader"), "autograde", ASSIGNMENT], root)
    (root / "autograde.log").write_text(graded.stdout + graded.stderr)
    run([os.path.join(BIN, "nbgrader"), "generate_feedback", ASSIGNMENT], root)
    run([os.path.join(BIN, "nbgrader"), "export", "--to", "nbgrader-grades.csv"], root)
    return root


def test_nbgrader_export_has_the_scores_and_the_late_penalty(course):
    with open(course / "nbgrader-grades.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    alice, bob = rows["alice"], rows["bob"]
    assert (float(alice["raw_score"]), float(alice["late_submission_penalty"]), float(alice["score"])) == (10, 5, 5)
    assert alice["duedate"].startswith("2030-01-01 00:00:00")
    assert (float(bob["raw_score"]), float(bob["score"]), float(bob["max_score"])) == (0, 0, 10)


def test_plain_nbgrader_runs_the_guarded_sandboxed_execution(course):
    nb = nbformat.read(str(course / "autograded" / "alice" / ASSIGNMENT / (NOTEBOOK + ".ipynb")), 4)
    meta = nb.metadata["autograder"]
    assert (meta["guarded"], meta["kernel"], type(meta["run_seed"])) == (True, "ok", int)  # the judge's inputs
    checks = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert [c.metadata["autograder"].get("hidden_tests") for c in checks if "autograder" in c.metadata].count(
        "passed") == 1  # the one check cell with hidden tests ran them, after the learner's cells


def test_plain_nbgrader_feedback_never_shows_hidden_tests(course):
    pages = glob.glob(str(course / "feedback" / "*" / ASSIGNMENT / "*.html"))
    assert len(pages) == 2
    hidden = hidden_test_lines()
    for page in pages:
        with open(page) as handle:
            html = handle.read()
        assert not [line for line in hidden if line in html or line.replace('"', "&quot;") in html]


def test_plain_autograde_reports_no_changed_cell_of_clean_submissions(course):
    """Neither submission edited a check cell: nbgrader's log has no "Attribute 'checksum' for cell … has changed"
    (nbgrader's own OverwriteCells logs it for every check cell with hidden tests, jupyter/nbgrader#1961)."""
    log = (course / "autograde.log").read_text()
    assert "Autograding" in log and "has changed" not in log, log[-3000:]


def _overwrite(course, preprocessor, notebook):
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    preprocessor.log = logging.getLogger(f"overwrite-{id(preprocessor)}")
    preprocessor.log.addHandler(handler)
    resources = {"nbgrader": {"notebook": NOTEBOOK, "assignment": ASSIGNMENT,
                              "db_url": f"sqlite:///{course / 'gradebook.db'}"}}
    notebook, _ = preprocessor.preprocess(notebook, resources)
    return notebook, [message for message in records if "has changed" in message]


def test_overwrite_cells_restores_hidden_tests_quietly_and_still_reports_an_edited_check(course):
    """The cause: the gradebook stores a check cell's checksum before nbgrader removes its hidden tests. The
    course's OverwriteCells puts the hidden tests back without a warning; an edited check is still reported."""
    from nbgrader.preprocessors import OverwriteCells as NbgraderOverwriteCells

    from autograder.grading.overwrite import OverwriteCells

    released = course / "exercises" / ASSIGNMENT / (NOTEBOOK + ".ipynb")
    _, warnings = _overwrite(course, NbgraderOverwriteCells(), nbformat.read(str(released), 4))
    assert warnings and all("Attribute 'checksum'" in w for w in warnings)  # nbgrader's own: the false alarm
    restored, warnings = _overwrite(course, OverwriteCells(), nbformat.read(str(released), 4))
    assert warnings == []
    assert any("### BEGIN HIDDEN TESTS" in cell.source for cell in restored.cells)  # hidden tests back, to run
    edited = nbformat.read(str(released), 4)
    check = next(c for c in edited.cells if c.metadata.get("nbgrader", {}).get("locked")
                 and c.metadata["nbgrader"].get("grade") and "TEST_" in c.source)
    check.source = "pass  # the learner's own check\n" + check.source
    restored, warnings = _overwrite(course, OverwriteCells(), edited)
    grade_id = check.metadata["nbgrader"]["grade_id"]
    assert [w for w in warnings if grade_id in w and "Attribute 'checksum'" in w]
    assert "the learner's own check" not in "".join(cell.source for cell in restored.cells)


def test_the_gradebook_revision_read_in_process_is_the_one_alembic_heads_prints():
    """autograder.course.alembic_head replaces nbgrader's run of the ``alembic heads`` program: same answer."""
    from autograder import course

    environment = dict(os.environ, PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]))
    printed = subprocess.run([sys.executable, "-c", "from nbgrader.api import get_alembic_version as g; print(g())"],
                             env=environment, capture_output=True, text=True, check=True).stdout.strip()
    assert printed and course.alembic_head() == printed


def _dotted_names(value):
    """Every string in a config value (sections, lists, dict values) that reads like a dotted Python name."""
    if isinstance(value, dict):
        return [name for item in value.values() for name in _dotted_names(item)]
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in _dotted_names(item)]
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", value):
        return [value]
    return []


def test_every_class_the_config_names_is_where_the_name_says():
    """nbgrader's config names its steps by dotted strings (``autograder.grading.execute.GuardedExecute``):
    each one, as the course's nbgrader_config.py loads autograder/grading/autograde_config.py, resolves; a name
    of the grader's is the class's (or function's) own module and name; and every preprocessor, exporter and
    late-penalty plugin the grader defines is named there."""
    import importlib
    import inspect
    import pkgutil

    from nbconvert.exporters import Exporter
    from nbconvert.preprocessors import Preprocessor
    from nbgrader.plugins import LateSubmissionPlugin
    from traitlets.utils.importstring import import_item

    import autograder
    from autograder.course import load_config

    names = set(_dotted_names(load_config(REPOSITORY)))
    ours = {name for name in names if name.startswith("autograder.")}
    assert len(ours) >= 7 and {name.split(".")[0] for name in names} == {"autograder", "nbgrader", "nbconvert"}
    for name in names:
        item = import_item(name)
        assert inspect.isclass(item) or inspect.isfunction(item), name
        if name in ours:
            assert f"{item.__module__}.{item.__qualname__}" == name
    steps = set()
    for info in pkgutil.walk_packages(autograder.__path__, "autograder."):
        if info.name.endswith(".autograde_config"):  # a config file, not a module
            continue
        module = importlib.import_module(info.name)
        steps |= {f"{module.__name__}.{cls.__qualname__}" for cls in vars(module).values()
                  if inspect.isclass(cls) and cls.__module__ == module.__name__
                  and issubclass(cls, (Preprocessor, Exporter, LateSubmissionPlugin))}
    assert steps and steps <= ours, steps - ours
