"""The grading driver on an LMS export: naming, zips, a hang beyond the wall time, reruns (toy course)."""

import csv
import os
import zipfile

import nbformat
import pytest
from nbgrader.api import Gradebook

import grading_toy_course as toy
from retinanet.grading.driver import GradingError, grade_class
from retinanet.grading.intake import SubmissionError, collect
from retinanet.grading.sandbox import Limits

LIMITS = Limits(cell_timeout=120, wall_seconds=45, memory_gb=1)  # the hang meets the wall first


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as archive:
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
    export.mkdir()
    nbformat.write(toy._answer(exercise, toy.ADD, toy.MUL), str(export / "alice_12345_attempt1.ipynb"))
    _zip(export / "bob_toy.zip", {"toy/toy.ipynb": _notebook_bytes(toy._answer(exercise, toy.ADD, toy.WRONG_MUL)),
                                  "toy/.ipynb_checkpoints/toy-checkpoint.ipynb": b"{}", "__MACOSX/._toy.ipynb": b""})
    nbformat.write(toy._answer(exercise, "def add(a, b):\n    while True:\n        pass", toy.MUL),
                   str(export / "carol.ipynb"))
    (export / "dave_final.zip").write_bytes(b"this is not a zip archive")
    first, first_summary = grade_class(course, str(export), out, assignments=[toy.ASSIGNMENT], limits=LIMITS,
                                       progress=False)
    first_grades, first_csv = _grades(out), _csv(out)
    (export / "carol.ipynb").unlink()  # the rerun grades the others again; carol's grade must survive
    grade_class(course, str(export), out, assignments=[toy.ASSIGNMENT], limits=LIMITS, progress=False)
    return {"out": out, "course": course, "export": str(export), "first_csv": first_csv,
            "first_grades": first_grades, "first_summary": first_summary}


def test_lms_export_names_zips_and_broken_archives(lms):
    rows = lms["first_csv"]
    assert {s: (row["status"], float(row["score"])) for s, row in rows.items()} == {
        "alice": ("ok", 5.0), "bob": ("ok", 2.0), "carol": ("wall-timeout", 0.0), "dave": ("invalid-notebook", 0.0)}


def test_a_hang_is_killed_at_the_wall_time_without_touching_the_others(lms):
    assert lms["first_summary"]["statuses"]["wall-timeout"] == 1
    with Gradebook("sqlite:///" + os.path.join(lms["out"], "gradebook.db")) as gb:
        assert gb.find_submission(toy.ASSIGNMENT, "carol").score == 0
        assert gb.find_submission(toy.ASSIGNMENT, "alice").score == toy.MAX_SCORE


def test_rerun_is_idempotent(lms):
    assert _grades(lms["out"]) == lms["first_grades"]
    rerun = _csv(lms["out"])
    assert sorted(rerun) == ["alice", "bob", "dave"]
    assert all(rerun[s] == lms["first_csv"][s] for s in rerun)


def test_unknown_assignment_and_ambiguous_export_are_clear_errors(lms):
    with pytest.raises(GradingError, match="Unknown assignment"):
        grade_class(lms["course"], lms["export"], lms["out"] + "-x", assignments=["nope"], progress=False)
    with pytest.raises(SubmissionError, match="pass --assignment"):
        collect(lms["export"], {"a": ["x"], "b": ["y"]})


def test_student_ids_are_checked(tmp_path):
    (tmp_path / " spaced name.ipynb").write_bytes(b"{}")
    with pytest.raises(SubmissionError, match="student id"):
        collect(str(tmp_path), {"toy": ["toy"]})


def test_zip_members_are_read_in_memory_never_extracted(tmp_path):
    nb = _notebook_bytes(toy.solution_notebook())
    _zip(tmp_path / "eve.zip", {"../../outside/toy.ipynb": nb})
    (submission,) = collect(str(tmp_path), {"toy": ["toy"]})
    assert submission.notebooks == {"toy": nb} and submission.statuses == set()
    assert not (tmp_path.parent / "outside").exists()
