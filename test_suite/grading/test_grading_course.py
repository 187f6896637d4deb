"""The grading driver on the real course: 01-architecture, graded in the sandbox with TensorFlow."""

import glob
import json
import os

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.driver import grade_class
from autograder.sandbox.sandbox import Limits

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSIGNMENT, NOTEBOOK = "01-architecture", "architecture"


def _grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def completed_exercise(assignment, notebook):
    """The released exercise with every solution cell filled in from the solution notebook."""
    exercise = nbformat.read(os.path.join(REPOSITORY, "exercises", assignment, notebook + ".ipynb"), 4)
    solution = nbformat.read(os.path.join(REPOSITORY, "solutions", assignment, notebook + ".ipynb"), 4)
    answers = {_grade_id(c): c.source for c in solution.cells if c.metadata.get("nbgrader", {}).get("solution")}
    completed = nbformat.from_dict(json.loads(json.dumps(exercise)))
    for cell in completed.cells:
        if _grade_id(cell) in answers:
            cell.source = "\n".join(line for line in answers[_grade_id(cell)].split("\n")
                                    if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)
    return exercise, completed


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("course-grading")
    exercise, completed = completed_exercise(ASSIGNMENT, NOTEBOOK)
    borrowed = nbformat.from_dict(json.loads(json.dumps(completed)))
    cell = next(c for c in borrowed.cells if _grade_id(c) == "get_backbone")
    cell.source = "from retinanet.backbone import get_backbone  # the reference, not the learner's own"
    for student, nb in (("correct", completed), ("untouched", exercise), ("borrowed", borrowed)):
        folder = base / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, str(folder / (NOTEBOOK + ".ipynb")))
    out = str(base / "out")
    records, _ = grade_class(REPOSITORY, str(base / "submitted"), out, limits=Limits(wall_seconds=600),
                             progress=False)
    return out, {r.student: r for r in records}


def test_correct_submission_gets_full_marks_and_untouched_gets_zero(graded):
    out, records = graded
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:
        max_score = gb.find_assignment(ASSIGNMENT).max_score
        assert max_score > 0
        assert gb.find_submission(ASSIGNMENT, "correct").score == max_score
        assert gb.find_submission(ASSIGNMENT, "untouched").score == 0
        # The scan is advice: the reference's backbone passes its check (the rest is the learner's own, correct
        # work), and the notebook is flagged for the instructor's review.
        assert gb.find_submission(ASSIGNMENT, "borrowed").score == max_score
        assert gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, "borrowed").flagged
    assert (records["correct"].status, records["untouched"].status) == ("ok", "ok")
    assert records["borrowed"].status == "uses-reference"


def hidden_test_lines():
    """The lines of the assignment's hidden tests (longer than 12 characters)."""
    solution = nbformat.read(os.path.join(REPOSITORY, "solutions", ASSIGNMENT, NOTEBOOK + ".ipynb"), 4)
    lines = [line.strip() for c in solution.cells if "### BEGIN HIDDEN TESTS" in c.source
             for line in c.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0].splitlines()
             if len(line.strip()) > 12]
    assert lines, "the assignment is expected to have hidden tests"
    return lines


def test_course_feedback_hides_hidden_tests(graded):
    out, _ = graded
    hidden = hidden_test_lines()
    pages = glob.glob(os.path.join(out, "feedback", "*", ASSIGNMENT, "*.html"))
    assert len(pages) == 3
    for page in pages:
        with open(page) as handle:
            html = handle.read()
        assert not [line for line in hidden if line in html or line.replace('"', "&quot;") in html]
