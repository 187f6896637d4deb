"""The grader on LMS exports: names, zips, links, a hang beyond the wall time, reruns (toy course)."""

import csv
import os
import zipfile

import nbformat
import pytest
from nbgrader.api import Gradebook

import grading_toy_course as toy
from autograder.course import GradingError
from autograder.driver import grade_class
from autograder.grades.export import export
from autograder.intake.intake import SubmissionError, collect
from autograder.results import csv_cell
from autograder.sandbox.sandbox import Limits

LIMITS = Limits(cell_timeout=120, wall_seconds=40, memory_gb=1)  # the hang meets the wall first
ODD_NAMES = ("José García_2001.ipynb", "-rf_2002.ipynb", ".._2003.ipynb")


def _zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _notebook_bytes(nb):
    return nbformat.writes(nb).encode()


def _grades(out):
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:
        return {(s.student.id, n.name, g.name): (g.auto_score, g.manual_score)
                for a in gb.assignments for s in a.submissions for n in s.notebooks for g in n.grades}


def _csv(out):
    with open(os.path.join(out, "grades.csv"), newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    base = tmp_path_factory.mktemp("lms")
    course, out, export = str(base / "course"), str(base / "out"), base / "export"
    exercise = toy.make_course(course)
    correct = _notebook_bytes(toy._answer(exercise, toy.ADD, toy.MUL))
    export.mkdir()
    nbformat.write(toy._answer(exercise, toy.ADD, toy.MUL), str(export / "alice_12345_attempt1.ipynb"))
    _zip(export / "bob_toy.zip", {"toy/toy.ipynb": _notebook_bytes(toy._answer(exercise, toy.ADD, toy.WRONG_MUL)),
                                  "toy/.ipynb_checkpoints/toy-checkpoint.ipynb": b"{}", "__MACOSX/._toy.ipynb": b""})
    nbformat.write(toy._answer(exercise, "def add(a, b):\n    while True:\n        pass", toy.MUL),
                   str(export / "carol.ipynb"))
    (export / "dave_final.zip").write_bytes(b"this is not a zip archive")
    _zip(export / "eve_bomb.zip", {"toy.ipynb": b" " * (200 * 2**20)}, zipfile.ZIP_DEFLATED)  # 200 MiB inflated
    os.symlink(export / "alice_12345_attempt1.ipynb", export / "frank.ipynb")
    os.symlink(os.path.join(course, "solutions", "toy", "toy.ipynb"), export / "mallory_sol.ipynb")
    for name in ODD_NAMES:
        (export / name).write_bytes(correct)
    first, first_summary = grade_class(course, str(export), out, assignments=[toy.ASSIGNMENT], limits=LIMITS,
                                       progress=False)
    first_grades, first_csv = _grades(out), _csv(out)
    (export / "carol.ipynb").unlink()  # the rerun grades the others again; carol's grade must survive
    grade_class(course, str(export), out, assignments=[toy.ASSIGNMENT], limits=LIMITS, progress=False)
    return {"out": out, "course": course, "export": str(export), "first_csv": first_csv,
            "first_grades": first_grades, "first_summary": first_summary}


def test_lms_export_names_zips_links_and_broken_archives(lms):
    rows = lms["first_csv"]
    assert {s: (row["status"], float(row["score"])) for s, row in rows.items() if not s.startswith(("J", "'-", "."))} \
        == {"alice": ("ok", 5.0), "bob": ("ok", 2.0), "carol": ("wall-timeout", 0.0),
            "dave": ("invalid-notebook", 0.0), "eve": ("refused", 0.0), "frank": ("refused", 0.0),
            "mallory": ("refused", 0.0)}
    assert "inflates beyond" in rows["eve"]["detail"]
    assert "symbolic link" in rows["frank"]["detail"] and "symbolic link" in rows["mallory"]["detail"]


def test_odd_names_refuse_only_themselves(lms):
    rows = lms["first_csv"]
    for name in ODD_NAMES:
        row = rows[csv_cell(name)]  # "-rf_2002.ipynb" is written "'-rf_2002.ipynb" (no spreadsheet formula)
        assert (row["status"], row["score"], row["max_score"]) == ("refused", "0", "5"), name
        assert "is not a usable student id" in row["detail"]
    assert sorted(os.listdir(os.path.join(lms["out"], "feedback"))) == sorted(
        s for s in rows if not s.startswith(("J", "'-", ".")))  # no folder named after an odd entry


def test_every_graded_student_gets_feedback(lms):
    for student in ("alice", "bob", "carol", "dave", "eve", "frank", "mallory"):
        pages = os.listdir(os.path.join(lms["out"], "feedback", student, toy.ASSIGNMENT))
        assert pages == ["toy.html"], student
    with open(os.path.join(lms["out"], "feedback", "carol", toy.ASSIGNMENT, "toy.html")) as handle:
        assert "wall-timeout" in handle.read()


def test_a_hang_is_killed_at_the_wall_time_without_touching_the_others(lms):
    assert lms["first_summary"]["statuses"]["wall-timeout"] == 1
    with Gradebook("sqlite:///" + os.path.join(lms["out"], "gradebook.db")) as gb:
        assert gb.find_submission(toy.ASSIGNMENT, "carol").score == 0
        assert gb.find_submission(toy.ASSIGNMENT, "alice").score == toy.MAX_SCORE


def test_rerun_is_idempotent_and_the_csv_keeps_the_whole_class(lms):
    assert _grades(lms["out"]) == lms["first_grades"]
    assert _csv(lms["out"]) == lms["first_csv"]  # carol, not in the rerun, keeps her row


def test_unknown_assignment_and_ambiguous_export_are_clear_errors(lms):
    with pytest.raises(GradingError, match="Unknown assignment"):
        grade_class(lms["course"], lms["export"], lms["out"] + "-x", assignments=["nope"], progress=False)
    with pytest.raises(SubmissionError, match="pass --assignment"):
        collect(lms["export"], {"a": ["x"], "b": ["y"]})


def test_a_folder_of_nothing_recognisable_is_refused_loudly(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "photos").mkdir()
    with pytest.raises(SubmissionError, match="no submissions the grader recognises"):
        collect(str(tmp_path), {"toy": ["toy"]})


def test_zip_members_are_read_in_memory_never_extracted(tmp_path):
    nb = _notebook_bytes(toy.solution_notebook())
    _zip(tmp_path / "eve.zip", {"../../outside/toy.ipynb": nb})
    (submission,), refusals = collect(str(tmp_path), {"toy": ["toy"]})
    assert submission.notebooks == {"toy": nb} and submission.statuses == set() and refusals == []
    assert not (tmp_path.parent / "outside").exists()


def test_moodle_canvas_and_blackboard_exports_are_recognised(tmp_path):
    nb = _notebook_bytes(toy.solution_notebook())
    moodle = tmp_path / "moodle"
    (moodle / "Jane Doe_3001_assignsubmission_file_").mkdir(parents=True)
    (moodle / "Jane Doe_3001_assignsubmission_file_" / "my answers.ipynb").write_bytes(nb)
    (moodle / "John Roe_3002_assignsubmission_file_").mkdir()
    _zip(moodle / "John Roe_3002_assignsubmission_file_" / "work.zip", {"toy/toy.ipynb": nb})
    (moodle / "Ann Poe_3003_assignsubmission_onlinetext_").mkdir()
    (moodle / "Ann Poe_3003_assignsubmission_onlinetext_" / "onlinetext.html").write_text("<p>hi</p>")
    submissions, refusals = collect(str(moodle), {"toy": ["toy"]})
    assert [(s.student, s.name, s.lms_id, sorted(s.notebooks)) for s in submissions] == [
        ("3001", "Jane Doe", "moodle:3001", ["toy"]), ("3002", "John Roe", "moodle:3002", ["toy"])] and refusals == []

    canvas = tmp_path / "canvas"
    canvas.mkdir()
    (canvas / "doejane_12345_67890_toy.ipynb").write_bytes(nb)
    (canvas / "roejohn_LATE_12346_67891_toy-1.ipynb").write_bytes(nb)
    submissions, _ = collect(str(canvas), {"toy": ["toy"]})
    assert [(s.student, s.lms_id, s.statuses) for s in submissions] == [  # keyed on Canvas's user id
        ("12345", "canvas:12345", set()), ("12346", "canvas:12346", {"late"})]

    blackboard = tmp_path / "blackboard"
    blackboard.mkdir()
    (blackboard / "Toy_jdoe_attempt_2030-01-02-09-30-00_toy.ipynb").write_bytes(nb)
    (blackboard / "Toy_jdoe_attempt_2030-01-02-09-30-00.txt").write_text("receipt")
    (blackboard / "Toy_jdoe_attempt_2029-12-01-10-00-00_toy.ipynb").write_bytes(b"older attempt")
    (submission,), refusals = collect(str(blackboard), {"toy": ["toy"]})
    assert (submission.student, submission.timestamp, sorted(submission.notebooks), refusals) == (
        "jdoe", "2030-01-02T09:30:00+00:00", ["toy"], [])


def test_a_moodle_export_is_graded_with_names(tmp_path):
    course, out, downloaded = str(tmp_path / "course"), str(tmp_path / "out"), tmp_path / "export"
    exercise = toy.make_course(course)
    folder = downloaded / "Jane Doe_3001_assignsubmission_file_"
    folder.mkdir(parents=True)
    nbformat.write(toy._answer(exercise, toy.ADD, toy.MUL), str(folder / "toy.ipynb"))
    records, _ = grade_class(course, str(downloaded), out, assignments=["toy"], limits=LIMITS, progress=False)
    assert [(r.student, r.score, r.status) for r in records] == [("3001", toy.MAX_SCORE, "ok")]
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:
        student = gb.find_student("3001")
        assert (student.first_name, student.last_name, student.lms_user_id) == ("Jane", "Doe", "moodle:3001")
    export(out)  # back to Moodle: the grading worksheet and the feedback files, in Moodle's names
    with open(os.path.join(out, "exports", "moodle-toy.csv"), newline="") as handle:
        (row,) = csv.DictReader(handle)
    assert (row["Identifier"], row["Full name"], row["Grade"]) == ("Participant 3001", "Jane Doe", "5")
    with zipfile.ZipFile(os.path.join(out, "exports", "moodle-feedback-toy.zip")) as archive:
        assert archive.namelist() == ["Jane Doe_3001_assignsubmission_file_/toy.html"]
