"""The grader on the hostile catalogue (toy course, no TensorFlow): one class run, many checks.

Each catalogue submission's status and score are asserted from the class gradebook and grades.csv,
never from an exit code, together with what must hold whatever a submission does: its feedback exists
and shows no hidden test, the instructor's files and the other students' results are untouched, and
nothing in the grading folder is a link or a special file. See grading_toy_course.py for the cases.
"""

import csv
import glob
import hashlib
import os
import stat

import nbformat
import pytest
from nbgrader.api import Gradebook

import grading_toy_course as toy
from autograder.driver import grade_class
from autograder.results import status_table
from autograder.sandbox.sandbox import FIRST_SANDBOX_UID, Limits

LIMITS = Limits(cell_timeout=5, wall_seconds=240, memory_gb=1)
SECRET = "instructor-only: the answers of 2025"


def fingerprint(folder):
    """``{path: (mode, sha256)}`` of every entry under ``folder``, links not followed."""
    found = {}
    for directory, folders, files in os.walk(folder):
        for name in folders + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            digest = ""
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
            found[path] = (info.st_mode, digest)
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("grading")
    course, out, submissions = str(base / "course"), str(base / "out"), str(base / "submissions")
    other_checkout = str(base / "other-checkout")
    exercise = toy.make_course(course)
    secret = os.path.join(course, "instructor-secret.txt")
    with open(secret, "w") as handle:
        handle.write(SECRET)
    os.chmod(secret, 0o600)
    toy.make_course(other_checkout)  # another copy of the course on the machine, hidden tests included
    cases = toy.catalogue(exercise, course, out, other_checkout)
    toy.write_submissions(submissions, cases)
    course_before = fingerprint(course)
    os.environ["GRADER_SECRET"] = "s3cret"  # a credential in the grader's environment
    try:
        records, summary = grade_class(course, submissions, out, limits=LIMITS, jobs=2, progress=False)
    finally:
        del os.environ["GRADER_SECRET"]
    return {"course": course, "out": out, "cases": cases, "records": {r.student: r for r in records},
            "summary": summary, "course_before": course_before, "course_after": fingerprint(course),
            "submissions": submissions}


def gradebook_scores(out):
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:
        return {(s.student.id, s.assignment.name): (s.score - (s.late_submission_penalty or 0), s.max_score)
                for a in gb.assignments for s in a.submissions}


def auto_score(out, student, cell):
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:
        return gb.find_grade(cell, toy.NOTEBOOK, toy.ASSIGNMENT, student).auto_score


def csv_rows(out):
    with open(os.path.join(out, "grades.csv"), newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def feedback_pages(out, student):
    return glob.glob(os.path.join(out, "feedback", student, toy.ASSIGNMENT, "*"))


def autograded_text(out, student):
    nb = nbformat.read(os.path.join(out, "autograded", student, toy.ASSIGNMENT, toy.NOTEBOOK + ".ipynb"), 4)
    return "\n".join(str(o.get("text", "")) + str(o.get("data", "")) + str(o.get("evalue", ""))
                     for c in nb.cells for o in c.get("outputs", []))


CASES = sorted(toy.catalogue(toy.solution_notebook(), "/course", "/out", "/other"))


@pytest.mark.parametrize("student", CASES)
def test_each_catalogue_case(graded, student):
    """Status and score (gradebook and CSV), feedback without hidden tests, the instructor's files intact."""
    case, out = graded["cases"][student], graded["out"]
    assert gradebook_scores(out)[(student, toy.ASSIGNMENT)] == (case.score, toy.MAX_SCORE)
    row = csv_rows(out)[student]
    assert (row["assignment"], row["status"], float(row["score"]), float(row["max_score"])) == (
        toy.ASSIGNMENT, case.status, case.score, toy.MAX_SCORE), row["detail"]
    pages = feedback_pages(out, student)
    assert [os.path.basename(p) for p in pages] == [toy.NOTEBOOK + ".html"]
    with open(pages[0]) as handle:
        page = handle.read()
    absent = toy.HIDDEN_TEXTS + case.absent
    assert not [text for text in absent if text in page or text.replace('"', "&quot;") in page]
    assert SECRET not in page
    assert graded["course_after"] == graded["course_before"]  # modes and contents of every course file


def test_tricks_never_earn_points_and_are_flagged_for_review(graded):
    """The judge decided ``add``'s points: every trick paired with a wrong ``add`` scores 0 for it; every
    notebook the scan found something in is flagged for review, and no other."""
    tricks = ["monkeypatch", "defcheck", "mockcheck", "patchcode", "magiccheck", "skiptag", "odd-forgedagent",
              "odd-alwaysequal", "odd-deepnesting"] + [s for s in graded["cases"] if s.endswith("-wrong")]
    for student in tricks:
        assert auto_score(graded["out"], student, "test_add") == 0, student
    with Gradebook("sqlite:///" + os.path.join(graded["out"], "gradebook.db")) as gb:  # for the formgrader
        flagged = {s.student.id for s in gb.find_assignment(toy.ASSIGNMENT).submissions if s.notebooks[0].flagged}
    assert flagged == {s for s, c in graded["cases"].items() if c.status in ("tampering", "uses-reference")}
    assert "add(2, 3) should be 5" in autograded_text(graded["out"], "defcheck")


def test_the_catalogue_covers_every_class_of_the_red_team_findings(graded):
    """At least 90 cases: tricks (wrong and right), honest habits, leaks, sabotage, intake, limits."""
    cases = graded["cases"]
    assert len(cases) + 2 >= 90  # + the linked folder and the folder without a usable id
    for prefix, least in (("trick-", 26), ("honest-", 20), ("leak-", 3), ("odd-", 6)):
        assert len([s for s in cases if s.startswith(prefix)]) >= least, prefix


def test_hidden_tests_never_reached_the_kernel(graded):
    """The hook printed every cell the kernel ran (it was live), and no hidden test was among them; ``print(In)``
    in the learner's last cell shows the check cells as released."""
    out = graded["out"]
    nb = nbformat.read(os.path.join(out, "autograded", "hook", toy.ASSIGNMENT, toy.NOTEBOOK + ".ipynb"), 4)
    printed = "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "CELL:" in printed and not [text for text in toy.HIDDEN_TEXTS if text in printed]
    nb = nbformat.read(os.path.join(out, "autograded", "echoes", toy.ASSIGNMENT, toy.NOTEBOOK + ".ipynb"), 4)
    history = "".join(o.get("text", "") for o in toy._cell(nb, "mul").outputs)
    assert "add(-1, 1)" not in history


def test_the_judge_recorded_its_run_seed(graded):
    nb = nbformat.read(os.path.join(graded["out"], "autograded", "correct", toy.ASSIGNMENT, toy.NOTEBOOK + ".ipynb"), 4)
    assert isinstance(nb.metadata["autograder"]["run_seed"], int)


def test_refused_entries_and_every_student_accounted_for(graded):
    rows = csv_rows(graded["out"])
    assert sorted(rows) == sorted(CASES + [toy.LINKED_FOLDER, toy.ODD_FOLDER])
    for entry in (toy.LINKED_FOLDER, toy.ODD_FOLDER):
        assert (rows[entry]["status"], float(rows[entry]["score"]), float(rows[entry]["max_score"])) == (
            "refused", 0, toy.MAX_SCORE)
    assert "is not a usable student id" in rows[toy.ODD_FOLDER]["detail"]
    assert "symbolic link" in rows[toy.LINKED_FOLDER]["detail"]
    assert "symbolic link" in rows["linktosolution"]["detail"] and "named pipe" in rows["pipefile"]["detail"]
    with open(os.path.join(graded["out"], "grades.csv"), newline="") as handle:
        assert csv.DictReader(handle).fieldnames == ["student", "assignment", "score", "max_score", "late_penalty",
                                                     "submitted_at", "due_at", "status", "detail"]


def test_late_penalty_from_timestamps(graded):
    rows = csv_rows(graded["out"])
    assert (rows["late"]["submitted_at"], float(rows["late"]["late_penalty"])) == ("2030-01-02T09:00:00+00:00",
                                                                                   toy.MAX_SCORE)
    assert rows["late"]["due_at"] == "2030-01-01T00:00:00+00:00"
    assert (rows["ontime"]["submitted_at"], float(rows["ontime"]["late_penalty"])) == ("2029-12-31T23:00:00+00:00",
                                                                                       0)
    assert "unreadable timestamp" in rows["badtimestamp"]["detail"]


def test_grading_folder_holds_only_regular_files_and_folders(graded):
    out = graded["out"]
    for path, (mode, _) in fingerprint(out).items():
        assert stat.S_ISREG(mode) or stat.S_ISDIR(mode), path
        if "/workers/" not in path and stat.S_ISREG(mode):
            assert stat.S_IMODE(mode) == 0o644, path
    for student in CASES:
        assert sorted(os.listdir(os.path.join(out, "feedback", student, toy.ASSIGNMENT))) == ["toy.html"]


def test_submissions_cannot_write_outside_their_folder(graded):
    course, out = graded["course"], graded["out"]
    for path in (course + "/escape.txt", out + "/escape.txt", "/tmp/escape-grading.txt", "/escape.txt",
                 "/usr/escape.txt"):
        assert not os.path.exists(path), path
    with open("/etc/passwd") as handle:
        assert "escaped" not in handle.read()
    assert not glob.glob(os.path.join(os.path.dirname(out), "**", "escape.txt"), recursive=True)
    text = autograded_text(out, "writesoutside")
    for target in (course + "/escape.txt", out + "/escape.txt", "/escape.txt", "/etc/passwd", "/usr/escape.txt"):
        assert f"blocked {target}" in text
    assert "wrote /tmp/escape-grading.txt" in text  # its own throw-away /tmp


def test_submissions_see_only_their_own_sandbox(graded):
    text = autograded_text(graded["out"], "snooping")
    assert "visible files: 0" in text  # other students, the grading folder, the course, another checkout, ~
    assert "other processes: 0" in text  # its own PID namespace: bubblewrap's init and the kernel
    assert "own notebook files: []" in text  # the notebook (with hidden tests restored) is not in its folder
    assert "grader secret: None" in text
    assert all(name not in text for name in CASES if name not in ("snooping", "correct"))  # no other student ids
    assert os.path.exists(os.path.join(graded["out"], "autograded", "correct", toy.ASSIGNMENT, "toy.ipynb"))


def test_checks_are_the_course_originals(graded):
    assert "blocked OSError" in autograded_text(graded["out"], "teststampered")  # a read-only file system
    assert auto_score(graded["out"], "teststampered", "test_add") == 0


def test_outputs_are_capped(graded):
    for student in ("flood", "bigoutput"):
        path = os.path.join(graded["out"], "autograded", student, toy.ASSIGNMENT, "toy.ipynb")
        assert os.path.getsize(path) < 300_000, student
        assert os.path.getsize(feedback_pages(graded["out"], student)[0]) < 1_000_000, student
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


def test_summary_reports_the_sandbox_and_statuses(graded):
    summary = graded["summary"]
    assert summary["sandbox"].startswith("bubblewrap: allow-list")  # the suite runs as root: the full sandbox
    expected = sum(1 for case in graded["cases"].values() if case.status == "ok")
    assert summary["statuses"]["ok"] == expected


def _readme():
    with open(os.path.join(toy.REPOSITORY, "README.md")) as handle:
        return handle.read()


def test_readme_status_table_is_the_code_s():
    assert status_table() in _readme()


def test_the_catalogue_page_is_generated_from_the_catalogue():
    """``docs/grading-catalogue.md`` is what ``python test_suite/grading/grading_toy_course.py`` prints now."""
    import subprocess
    import sys
    printed = subprocess.run([sys.executable, os.path.join(toy.REPOSITORY, "test_suite", "grading", "grading_toy_course.py")],
                             capture_output=True, text=True, check=True).stdout
    with open(os.path.join(toy.REPOSITORY, "docs", "grading-catalogue.md")) as handle:
        assert handle.read() == printed, "regenerate: python test_suite/grading/grading_toy_course.py > docs/grading-catalogue.md"