"""Grades and feedback out of a grading folder, for the people and systems that take them.

Scores always come from the class gradebook, so a score changed in nbgrader's formgrader counts; the
statuses and reasons come from the grader's ``records.json``. :func:`export` writes, under ``OUT``:

``grades.csv``                          every submission (see :mod:`autograder.results` for the columns)
``exports/canvas.csv``                  Canvas's gradebook import: ``Student, ID, SIS User ID, SIS Login ID,
                                        Section``, then one column of points per assignment, and a
                                        ``Points Possible`` row (name the columns as your Canvas assignments)
``exports/moodle-<assignment>.csv``     Moodle's grading worksheet upload: ``Identifier, Full name, Email
                                        address, Grade, Maximum grade, Feedback comments``
``exports/feedback/<student>.zip``      the student's feedback pages, ``<assignment>/<notebook>.html``, nothing else
``exports/moodle-feedback-<assignment>.zip``  the same pages in the folders of Moodle's "upload multiple
                                        feedback files in a zip" (students that came from a Moodle export)

Every CSV is written through :func:`autograder.results.csv_writer` (no cell a spreadsheet would run).
"""

import os
import stat
import zipfile
from datetime import timezone

from nbgrader.api import Gradebook

from ..intake.safefiles import TooLarge, UnsafeFile, entries, read_regular
from ..results import Record, Status, csv_writer, load_records, write_csv

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
MOODLE_COLUMNS = ("Identifier", "Full name", "Email address", "Grade", "Maximum grade", "Feedback comments")
MAX_PAGE_BYTES = 40 * 2**20


def _iso(moment):
    return moment.replace(tzinfo=timezone.utc).isoformat() if moment else ""


def class_records(out, never_graded=True):
    """One :class:`Record` per submission in the class gradebook, and one per refused entry; with
    ``never_graded``, also one per submission a stopped run never graded and no earlier run did either
    (``not-graded``, in ``records.json`` only: the gradebook holds no entry for it, and the LMS exports leave it
    out rather than upload a 0)."""
    records, refusals = load_records(os.path.join(out, "records.json"))
    rows = []
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:
        maximum = {a.name: a.max_score for a in gb.assignments}
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                kept = records.pop((submission.student.id, assignment.name), None)
                penalty = submission.late_submission_penalty or 0
                rows.append(Record(
                    submission.student.id, assignment.name, submission.score - penalty, submission.max_score,
                    penalty, _iso(submission.timestamp), _iso(submission.duedate) if assignment.duedate else "",
                    kept.statuses if kept else [Status.OK], kept.detail if kept else ""))
    if never_graded:
        for record in records.values():
            if Status.NOT_GRADED in record.statuses and record.assignment in maximum:
                record.score, record.late_penalty, record.max_score = 0, 0, maximum[record.assignment]
                rows.append(record)
    for refusal in refusals.values():
        refusal.max_score = maximum.get(refusal.assignment, refusal.max_score)
        rows.append(refusal)
    return rows


def write_grades(out):
    """``OUT/grades.csv`` from the class gradebook and the grader's records."""
    write_csv(os.path.join(out, "grades.csv"), class_records(out))


def _students(out):
    """``{student id: (first name, last name, email, lms id)}`` of the class gradebook."""
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:
        return {s.id: (s.first_name or "", s.last_name or "", s.email or "", s.lms_user_id or "")
                for s in gb.students}


def write_canvas(path, records, students, assignments):
    scores = {(r.student, r.assignment): r.score for r in records}
    maximum = {r.assignment: r.max_score for r in records}
    with open(path, "w", newline="") as handle:
        writer = csv_writer(handle)
        writer.writerow(CANVAS_COLUMNS + tuple(assignments))
        writer.writerow(["Points Possible", "", "", "", ""] + [f"{maximum.get(a, 0):g}" for a in assignments])
        for student, (first, last, _, lms_id) in sorted(students.items()):
            name = f"{last}, {first}" if first and last else student
            writer.writerow([name, lms_id, "", student, ""] + [
                f"{scores[(student, a)]:g}" if (student, a) in scores else "" for a in assignments])


def write_moodle(path, assignment, records, students):
    with open(path, "w", newline="") as handle:
        writer = csv_writer(handle)
        writer.writerow(MOODLE_COLUMNS)
        for record in sorted(records, key=lambda r: r.student):
            if record.assignment != assignment or record.student not in students:
                continue
            first, last, email, lms_id = students[record.student]
            identifier = f"Participant {lms_id}" if lms_id else record.student
            comments = "" if record.status == Status.OK.value else f"Autograder: {record.status}"
            writer.writerow([identifier, f"{first} {last}".strip() or record.student, email,
                             f"{record.score:g}", f"{record.max_score:g}", comments])


def feedback_pages(out, student):
    """``{"<assignment>/<notebook>.html": bytes}``: the student's feedback pages (regular files only)."""
    pages = {}
    folder = os.path.join(out, "feedback", student)
    for assignment, mode in entries(folder) if os.path.isdir(folder) else []:
        if not stat.S_ISDIR(mode):
            continue
        for name, _ in entries(os.path.join(folder, assignment)):
            if name.endswith(".html"):
                try:
                    pages[f"{assignment}/{name}"] = read_regular(os.path.join(folder, assignment, name),
                                                                 MAX_PAGE_BYTES)
                except (UnsafeFile, TooLarge):
                    continue
    return pages


def _zip(path, members):
    with zipfile.ZipFile(path + ".partial", "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(members.items()):
            archive.writestr(name, data)
    os.replace(path + ".partial", path)


def export(out):
    """Write every export of the grading folder ``out``; returns the paths written."""
    exports = os.path.join(out, "exports")
    os.makedirs(os.path.join(exports, "feedback"), exist_ok=True)
    write_grades(out)
    students = _students(out)
    # not entries with unusable names, nor submissions that were never graded
    records = [r for r in class_records(out, never_graded=False) if r.student in students]
    assignments = sorted({r.assignment for r in records})
    written = [os.path.join(out, "grades.csv"), os.path.join(exports, "canvas.csv")]
    write_canvas(written[-1], records, students, assignments)
    for assignment in assignments:
        written.append(os.path.join(exports, f"moodle-{assignment}.csv"))
        write_moodle(written[-1], assignment, records, students)
    moodle_feedback = {assignment: {} for assignment in assignments}
    for student, (first, last, _, lms_id) in sorted(students.items()):
        pages = feedback_pages(out, student)
        if pages:
            written.append(os.path.join(exports, "feedback", student + ".zip"))
            _zip(written[-1], pages)
        for name, data in pages.items():
            assignment, page = name.split("/", 1)
            if first and last and lms_id and assignment in moodle_feedback:
                moodle_feedback[assignment][f"{first} {last}_{lms_id}_assignsubmission_file_/{page}"] = data
    for assignment, members in moodle_feedback.items():
        if members:
            written.append(os.path.join(exports, f"moodle-feedback-{assignment}.zip"))
            _zip(written[-1], members)
    return written
