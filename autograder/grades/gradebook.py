"""Move one submission's grades between nbgrader gradebooks (a worker's or a shard's into the class's).

:func:`definition` is what grading depends on in a gradebook (assignments, notebooks, graded cells and
points): a rerun keeps the class gradebook only if the course's definition is still in it
(:func:`autograder.driver.prepare`), and a merge takes a shard only if the shard's is in the class's
(:mod:`autograder.grades.shards`).

A submission's grades travel as plain data (:func:`submission_data`) and are written with
:func:`store_submission`, which replaces whatever the class gradebook held for that student's assignment:
auto and manual scores, comments, the formgrader's flag, the submission time, the extension and the
late penalty. Values from
elsewhere are checked: only the assignment's own notebooks and cells, scores within their cell's points.
"""

import datetime
import hashlib
import json
import warnings

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning


def _url(path):
    return "sqlite:///" + path


def definition(db_path):
    """What the grading depends on in a gradebook: assignments, notebooks, graded cells and points."""
    with Gradebook(_url(db_path)) as gb:
        return {(a.name, n.name, c.name, c.max_score)
                for a in gb.assignments for n in a.notebooks for c in n.grade_cells}


def _number(value, low, high):
    """``value`` as a float within [low, high]; None stays None; anything else is 0."""
    if value is None:
        return None
    try:
        return min(max(float(value), low), high)
    except (TypeError, ValueError):
        return low


def submission_data(gb, assignment, student):
    """A submission of gradebook ``gb`` as plain data (JSON-ready)."""
    submission = gb.find_submission(assignment, student)
    person = submission.student
    return {
        "student": {"first_name": person.first_name, "last_name": person.last_name, "email": person.email,
                    "lms_user_id": person.lms_user_id},
        "timestamp": submission.timestamp.isoformat() if submission.timestamp else None,
        "extension_seconds": submission.extension.total_seconds() if submission.extension else None,
        "notebooks": {
            notebook.name: {
                "grades": {g.name: {"auto_score": g.auto_score, "manual_score": g.manual_score,
                                    "needs_manual_grade": g.needs_manual_grade} for g in notebook.grades},
                "comments": {c.name: c.manual_comment for c in notebook.comments},
                "late_submission_penalty": notebook.late_submission_penalty,
                "flagged": notebook.flagged,
            }
            for notebook in submission.notebooks
        },
    }


def store_submission(path, assignment, student, data):
    """Replace ``student``'s ``assignment`` in the gradebook at ``path`` with ``data``; returns
    ``(score, max_score, late_penalty)``. ``data`` None: the submission scores 0 (nothing was graded)."""
    data = data or {}
    with Gradebook(_url(path)) as gb:  # a session of its own: removing and re-adding in one confuses SQLAlchemy
        info = {k: v for k, v in (data.get("student") or {}).items() if isinstance(v, str) and v}
        gb.update_or_create_student(student, **info)
        try:
            gb.remove_submission(assignment, student)
        except MissingEntry:
            pass
    with Gradebook(_url(path)) as gb, warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=SAWarning)  # nbgrader's add_submission, SQLAlchemy 2
        submission = gb.add_submission(assignment, student)
        if data.get("timestamp"):
            submission.timestamp = datetime.datetime.fromisoformat(data["timestamp"]).replace(tzinfo=None)
        if data.get("extension_seconds"):
            submission.extension = datetime.timedelta(seconds=float(data["extension_seconds"]))
        for notebook in gb.find_assignment(assignment).notebooks:
            stored = (data.get("notebooks") or {}).get(notebook.name) or {}
            grades, comments = stored.get("grades") or {}, stored.get("comments") or {}
            for cell in notebook.grade_cells:
                grade = gb.find_grade(cell.name, notebook.name, assignment, student)
                values = grades.get(cell.name) or {}
                grade.auto_score = _number(values.get("auto_score", 0), 0, cell.max_score) or 0
                grade.manual_score = _number(values.get("manual_score"), 0, cell.max_score)
                grade.needs_manual_grade = bool(values.get("needs_manual_grade", False))
            submitted = gb.find_submission_notebook(notebook.name, assignment, student)
            submitted.flagged = bool(stored.get("flagged", False))
            for comment in submitted.comments:
                text = comments.get(comment.name)
                comment.manual_comment = text if isinstance(text, str) else None
            gb.db.commit()
            submitted.late_submission_penalty = _number(stored.get("late_submission_penalty"), 0,
                                                        submitted.score)
        gb.db.commit()
        submission = gb.find_submission(assignment, student)
        return submission.score, submission.max_score, submission.late_submission_penalty or 0


def extension_seconds(path):
    """``{(student, assignment): seconds}`` of the extensions granted in the gradebook at ``path``."""
    with Gradebook(_url(path)) as gb:
        return {(s.student.id, a.name): s.extension.total_seconds()
                for a in gb.assignments for s in a.submissions if s.extension}


def feedback_state(gb, assignment, student):
    """What a submission's feedback pages show from gradebook ``gb``: every cell's score (the formgrader's
    manual score over the autograder's), every comment, the late penalty; as one digest, recorded beside
    the pages when they are made (:data:`FEEDBACK_STATE`), so ``export`` knows which pages a manual grade
    made stale."""
    submission = gb.find_submission(assignment, student)
    state = {"penalty": submission.late_submission_penalty or 0, "notebooks": {
        notebook.name: {"grades": {g.name: g.score for g in notebook.grades},
                        "comments": {c.name: c.comment for c in notebook.comments}}
        for notebook in submission.notebooks}}
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()


FEEDBACK_STATE = ".gradebook-state"
"""The file in ``autograded/<student>/<assignment>/`` that holds :func:`feedback_state` of the feedback pages."""


def comments(gb, assignment, student):
    """``[(notebook, cell, comment)]``: the comments given to a submission in the formgrader (a cell's manual
    comment; nbgrader's automatic ones, such as "No response.", are left out)."""
    submission = gb.find_submission(assignment, student)
    found = []
    for notebook in sorted(submission.notebooks, key=lambda n: n.name):
        for comment in sorted(notebook.comments, key=lambda c: c.name):
            text = comment.manual_comment
            if text and text.strip():
                found.append((notebook.name, comment.name, text.strip()))
    return found
