"""The grading driver on the robustness catalogue (toy course, no TensorFlow): one class run, many checks.

Each catalogue submission's expected status and score is asserted from the class gradebook and from
grades.csv, never from an exit code. See grading_toy_course.py for the cases.
"""

import csv
import glob
import os

import nbformat
import pytest
from nbgrader.api import Gradebook

import grading_toy_course as toy
from retinanet.grading.driver import grade_class
from retinanet.grading.sandbox import FIRST_SANDBOX_UID, Limits

LIMITS = Limits(cell_timeout=5, wall_seconds=240, memory_gb=1)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("grading")
    course, out, submissions = str(base / "course"), str(base / "out"), str(base / "submissions")
    exercise = toy.make_course(course)
    cases = toy.catalogue(exercise, course, out)
    toy.write_submissions(submissions, cases)
    os.environ["GRADER_SECRET"] = "s3cret"  # a credential in the grader's environment
    try:
        outcomes, summary = grade_class(course, submissions, out, limits=LIMITS, jobs=2, progress=False)
    finally:
        del os.environ["GRADER_SECRET"]
    return {"course": course, "out": out, "cases": cases, "outcomes": outcomes, "summary": summary}


def gradebook_scores(out):
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:
        return {(s.student.id, s.assignment.name): (s.score, s.max_score)
                for a in gb.assignments for s in a.submissions}


def csv_rows(out):
    with open(os.path.join(out, "grades.csv"), newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def autograded_text(out, student):
    nb = nbformat.read(os.path.join(out, "autograded", student, toy.ASSIGNMENT, toy.NOTEBOOK + ".ipynb"), 4)
    return "\n".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


CASES = sorted(toy.catalogue(toy.solution_notebook(), "/course", "/out"))


@pytest.mark.parametrize("student", CASES)
def test_each_catalogue_case_gets_its_status_and_score(graded, student):
    _, status, score = graded["cases"][student]
    assert gradebook_scores(graded["out"])[(student, toy.ASSIGNMENT)] == (score, toy.MAX_SCORE)
    row = csv_rows(graded["out"])[student]
    assert (row["assignment"], row["status"], float(row["score"]), float(row["max_score"])) == (
        toy.ASSIGNMENT, status, score, toy.MAX_SCORE)


def test_csv_has_one_row_per_student_and_the_documented_columns(graded):
    with open(os.path.join(graded["out"], "grades.csv"), newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == ["student", "assignment", "score", "max_score", "status"]
    assert sorted(row["student"] for row in rows) == CASES
    assert graded["summary"]["students"] == len(CASES)


def test_feedback_is_written_and_never_shows_hidden_tests(graded):
    pages = glob.glob(os.path.join(graded["out"], "feedback", "*", toy.ASSIGNMENT, "*.html"))
    without = set(CASES) - {page.split(os.sep)[-3] for page in pages}
    assert without == {"invalidjson", "missing", "kerneldies"}  # nothing nbgrader could render
    for page in pages:
        with open(page) as handle:
            html = handle.read()
        assert "HIDDEN TESTS" not in html and "add(-1, 1) == 0" not in html and "mul(-2, 3) == -6" not in html
    with open(os.path.join(graded["out"], "feedback", "hiddenfail", toy.ASSIGNMENT, "toy.html")) as handle:
        assert "add(-1, 1) should be 0" in handle.read()  # the failing hidden test's message is shown


def test_submissions_cannot_write_outside_their_folder(graded):
    course, out = graded["course"], graded["out"]
    for path in (course + "/escape.txt", out + "/escape.txt", "/tmp/escape-grading.txt", "/tmp/escape.txt",
                 "/escape.txt"):
        assert not os.path.exists(path), path
    assert not glob.glob(os.path.join(os.path.dirname(out), "**", "escape.txt"), recursive=True)
    text = autograded_text(out, "writesoutside")
    for target in (course + "/escape.txt", out + "/escape.txt", "../../../../escape.txt", "/escape.txt"):
        assert f"blocked {target}" in text
    # /tmp (and ~, which is under it) is the kernel's own throw-away tmpfs: writes there vanish.
    assert text.count("wrote /tmp/") == 2


def test_submissions_cannot_see_other_students_solutions_or_hidden_tests(graded):
    text = autograded_text(graded["out"], "snooping")
    assert "visible files: 0" in text  # other students, gradebooks, the course repository
    assert "own notebook bytes: 0" in text  # while it runs, its own notebook holds the hidden tests
    assert "grader secret: None" in text
    for kind in ("submitted", "autograded"):
        assert os.path.exists(os.path.join(graded["out"], kind, "correct", toy.ASSIGNMENT, "toy.ipynb"))
    assert os.path.exists(os.path.join(graded["course"], "solutions", toy.ASSIGNMENT, "toy.ipynb"))


def test_checks_are_the_course_originals(graded):
    assert "blocked PermissionError" in autograded_text(graded["out"], "teststampered")
    for student in ("teststampered", "correct"):
        used = os.path.join(graded["out"], "workers", student, toy.ASSIGNMENT, "autograded", student,
                            toy.ASSIGNMENT, "tests.py")
        with open(used) as handle:
            assert handle.read() == toy.TESTS_PY


def test_floods_are_truncated(graded):
    path = os.path.join(graded["out"], "autograded", "flood", toy.ASSIGNMENT, "toy.ipynb")
    assert os.path.getsize(path) < 100_000
    assert "Output truncated" in autograded_text(graded["out"], "flood")


def test_no_sandboxed_process_outlives_the_run(graded):
    sandbox_uids = range(FIRST_SANDBOX_UID, FIRST_SANDBOX_UID + 1000)
    left = [pid for pid in os.listdir("/proc") if pid.isdigit() and _uid(pid) in sandbox_uids]
    assert left == []


def _uid(pid):
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except FileNotFoundError:
        return None


def test_summary_reports_isolation_and_statuses(graded):
    summary = graded["summary"]
    assert summary["isolation"].startswith("namespaces")  # the suite runs as root, so the full sandbox
    expected = sum(1 for _, status, _ in graded["cases"].values() if status == "ok")
    assert summary["statuses"]["ok"] == expected
