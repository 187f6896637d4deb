"""Grades and feedback out of a grading folder, for the people and systems that take them.

Scores always come from the class gradebook, so a score changed in nbgrader's formgrader counts; the
statuses and reasons come from the grader's ``records.json``. :func:`export` first applies the late
policies again to scores changed by hand, and remakes every feedback page that a manual grade or comment
made stale (:func:`refresh_feedback`), then writes, under ``OUT``:

``grades.csv``                          every submission (see :mod:`autograder.results` for the columns)
``exports/canvas.csv``                  Canvas's gradebook import. Given the gradebook exported from Canvas
                                        (``--canvas-gradebook``): that file, with each assignment's column
                                        (``<title> (<id>)``) filled for the students from Canvas's download,
                                        matched by Canvas user id (:func:`autograder.grades.lms.fill_gradebook`).
                                        Without it: ``Student, ID, SIS User ID, SIS Login ID, Section``, a
                                        column per assignment and a ``Points Possible`` row; ``ID`` is the
                                        Canvas user id of a student from Canvas's download, ``SIS Login ID``
                                        the user name of one from nbgrader's layout, Blackboard or a flat folder
``exports/moodle-<assignment>.csv``     Moodle's grading worksheet. Given the one downloaded from Moodle
                                        (``--moodle-worksheet``): that file with ``Grade`` and ``Feedback
                                        comments`` filled (:func:`autograder.grades.lms.fill_worksheet`).
                                        Without it: a worksheet in Moodle's columns for the students from
                                        Moodle's download (none for others: ``Identifier`` is Moodle's own)
``exports/feedback/<student>.zip``      the student's feedback pages, ``<assignment>/<notebook>.html``, nothing else
``exports/moodle-feedback-<assignment>.zip``  the same pages in the folders of Moodle's "upload multiple
                                        feedback files in a zip" (students from Moodle's download)

Moodle's ``Feedback comments`` carry the grader's status (when it is not ``ok``) and every comment given in
the formgrader (:func:`autograder.grades.gradebook.comments`). Every CSV is written through
:func:`autograder.results.csv_writer` (no cell a spreadsheet would run).
"""

import os
import shlex
import stat
import sys
import zipfile
from datetime import datetime, timezone

from nbgrader.api import Gradebook

from ..course import GradingError, nbgrader_api
from ..intake.layouts import lms_of
from ..intake.safefiles import TooLarge, UnsafeFile, entries, read_regular, write_new
from ..results import Record, Status, csv_writer, load_records, write_csv
from . import lms
from .gradebook import FEEDBACK_STATE, comments, feedback_state
from .schedule import reapply_late_penalties

CANVAS_COLUMNS = lms.CANVAS_COLUMNS
MAX_PAGE_BYTES = 40 * 2**20
MAX_STATE_BYTES = 200


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
    """Canvas's gradebook import without the teacher's export: ``ID`` is the Canvas user id of a student from
    Canvas's download, empty for anyone else; ``SIS Login ID`` is the student id of a student from nbgrader's
    layout, Blackboard or a flat folder (a user name, which Canvas matches to a login), empty for students
    from Moodle's or Canvas's download; Canvas matches what is left by name. A column per assignment, titled
    with the assignment's name (Canvas matches a column without ``(<id>)`` to the assignment of that title,
    else creates one)."""
    scores = {(r.student, r.assignment): r.score for r in records}
    maximum = {r.assignment: r.max_score for r in records}
    with open(path, "w", newline="") as handle:
        writer = csv_writer(handle)
        writer.writerow(CANVAS_COLUMNS + tuple(assignments))
        writer.writerow([lms.POINTS_POSSIBLE, "", "", "", ""] + [f"{maximum.get(a, 0):g}" for a in assignments])
        for student, (first, last, _, lms_id) in sorted(students.items()):
            kind, number = lms_of(lms_id)
            name = f"{last}, {first}" if first and last else student
            canvas_id = number if kind == "canvas" and number.isdigit() else ""
            login = "" if kind else student  # a hub or Blackboard user name may be the login; an LMS number is not
            writer.writerow([name, canvas_id, "", login, ""] + [
                f"{scores[(student, a)]:g}" if (student, a) in scores else "" for a in assignments])


def _comment_lines(record, given):
    """The ``Feedback comments`` of a submission: the grader's status when it is not ``ok``, then each
    formgrader comment as ``<notebook>, <cell>: <text>``."""
    lines = [] if record.status == Status.OK.value else [f"Autograder: {record.status}"]
    return lines + [f"{notebook}, {cell}: {text}" for notebook, cell, text in given]


def moodle_learners(assignment, records, students, given):
    """``{participant: (record, first, last, email, comment lines)}`` of the students from Moodle's download."""
    learners = {}
    for record in records:
        if record.assignment != assignment or record.student not in students:
            continue
        first, last, email, lms_id = students[record.student]
        kind, number = lms_of(lms_id)
        if kind == "moodle":
            lines = _comment_lines(record, given.get((record.student, assignment), []))
            learners[number] = (record, first, last, email, lines)
    return learners


def write_moodle(path, assignment, records, students, given=None, worksheet=None, tz="UTC", now=None):
    """``exports/moodle-<assignment>.csv``: the teacher's ``worksheet`` filled in, or a worksheet of Moodle's
    columns for the students from Moodle's download; None when there is neither. Returns the participants
    the grader graded that the worksheet lacks."""
    learners = moodle_learners(assignment, records, students, given or {})
    if worksheet:
        grades = {n: (r.score, r.max_score, lines, f"{first} {last}".strip())
                  for n, (r, first, last, _, lines) in learners.items()}
        _, missing = lms.fill_worksheet(worksheet, path, grades)
        return missing
    if not learners:
        return None
    rows = []
    for number, (record, first, last, email, lines) in learners.items():
        submitted = datetime.fromisoformat(record.submitted_at) if record.submitted_at else None
        rows.append((number, f"{first} {last}".strip(), email, record.status, record.score, record.max_score,
                     submitted, lines))
    lms.new_worksheet(path, rows, now or datetime.now(timezone.utc), tz)
    return []


def canvas_grades(records, students, assignments):
    """``{assignment: {canvas user id: (score, max score)}}`` of the students from Canvas's download."""
    grades = {assignment: {} for assignment in assignments}
    for record in records:
        kind, number = lms_of(students[record.student][3]) if record.student in students else ("", "")
        if kind == "canvas" and record.assignment in grades:
            grades[record.assignment][number] = (record.score, record.max_score)
    return grades


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


def record_feedback_state(out, student, assignment):
    """Write :func:`autograder.grades.gradebook.feedback_state` of the class gradebook (the submission's
    feedback pages were just made from it) beside its autograded notebooks, which only the instructor sees
    (``autograded/<student>/<assignment>/.gradebook-state``; a merge of shards carries it along)."""
    folder = os.path.join(out, "autograded", student, assignment)
    if not _has_notebooks(folder):
        return  # a status page, which shows no score
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:
        state = feedback_state(gb, assignment, student)
    write_new(os.path.join(folder, FEEDBACK_STATE), state.encode())


def _has_notebooks(folder):
    try:
        return any(name.endswith(".ipynb") and stat.S_ISREG(mode) for name, mode in entries(folder))
    except OSError:
        return False


def stale_feedback(out):
    """``[(student, assignment)]`` whose feedback pages no longer show the class gradebook: a score or
    comment changed in the formgrader since they were made (or no record of what they showed). Only
    submissions with autograded notebooks (the pages nbgrader makes); a status page shows no score."""
    stale = []
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                student = submission.student.id
                autograded = os.path.join(out, "autograded", student, assignment.name)
                if not _has_notebooks(autograded):
                    continue
                try:
                    shown = read_regular(os.path.join(autograded, FEEDBACK_STATE), MAX_STATE_BYTES).decode(
                        errors="replace")
                except (UnsafeFile, TooLarge):
                    shown = ""
                if shown != feedback_state(gb, assignment.name, student):
                    stale.append((student, assignment.name))
    return stale


def refresh_feedback(out, regenerate=True):
    """Remake the stale feedback pages (:func:`stale_feedback`) with ``nbgrader generate_feedback`` in the
    grading folder (the course's learner view and safe exporter, no kernel); returns the submissions
    remade. With ``regenerate`` False, or when nbgrader fails, :class:`GradingError` names the command."""
    stale = stale_feedback(out)
    if stale and not regenerate:
        raise GradingError(f"{len(stale)} feedback page(s) do not show the gradebook's current scores and comments "
                           f"(graded by hand since), e.g. {stale[0][0]}'s {stale[0][1]}; run: "
                           + _feedback_command(out, *stale[0]) + " (for each), or export without --no-regenerate")
    api = nbgrader_api(out) if stale else None
    for student, assignment in stale:
        # nbgrader --force empties the folder: keep the status page of a notebook that has no autograded one
        folder = os.path.join(out, "feedback", student, assignment)
        autograded = os.path.join(out, "autograded", student, assignment)
        kept = {name: read_regular(os.path.join(folder, name), MAX_PAGE_BYTES)
                for name, mode in (entries(folder) if os.path.isdir(folder) else [])
                if name.endswith(".html") and stat.S_ISREG(mode)
                and not os.path.isfile(os.path.join(autograded, name[: -len(".html")] + ".ipynb"))}
        outcome = api.generate_feedback(assignment, student, force=True)
        os.makedirs(folder, exist_ok=True)
        for name, data in kept.items():
            write_new(os.path.join(folder, name), data)
        if not outcome.get("success"):
            raise GradingError(f"nbgrader generate_feedback failed for {student}'s {assignment}: "
                               f"{(outcome.get('error') or '').strip()[-300:]}; run: "
                               + _feedback_command(out, student, assignment))
        record_feedback_state(out, student, assignment)
    return stale


def _feedback_command(out, student, assignment):
    nbgrader = os.path.join(os.path.dirname(sys.executable), "nbgrader")
    return (f"cd {shlex.quote(out)} && {shlex.quote(nbgrader)} generate_feedback {shlex.quote(assignment)} "
            f"--student {shlex.quote(student)} --force")


def export(out, moodle_worksheets=None, canvas_gradebook=None, canvas_columns=None, tz="UTC", regenerate=True,
           config=None):
    """Write every export of the grading folder ``out``; returns ``(paths written, notes)``: the notes say
    what an LMS file lacked (a student the grader graded who is not in the teacher's worksheet or gradebook,
    an assignment without a Canvas column) and which feedback pages were remade.

    ``moodle_worksheets``: ``{assignment: path}`` of grading worksheets downloaded from Moodle;
    ``canvas_gradebook``: the gradebook exported from Canvas, with ``canvas_columns`` (``{assignment:
    column}``) where an assignment's column is not titled with its name; ``tz``: the time zone of Moodle's
    times (``c.Schedule.lms_timezone``); ``config``: the course's, whose late policies are applied again to
    the current scores (:func:`autograder.grades.schedule.reapply_late_penalties`) first."""
    notes = []
    if config is not None:
        try:
            changed = reapply_late_penalties("sqlite:///" + os.path.join(out, "gradebook.db"), config)
        except ValueError as error:
            raise GradingError(f"{error} (nbgrader_config.py)") from None
        notes += [f"late penalty recomputed from the score given by hand: {s}'s {a}" for s, a in changed]
    notes += [f"feedback remade from the gradebook as it is now: {s}'s {a}" for s, a in refresh_feedback(out, regenerate)]
    exports = os.path.join(out, "exports")
    os.makedirs(os.path.join(exports, "feedback"), exist_ok=True)
    write_grades(out)
    students = _students(out)
    # not entries with unusable names, nor submissions that were never graded
    records = [r for r in class_records(out, never_graded=False) if r.student in students]
    assignments = sorted({r.assignment for r in records})
    unknown = sorted(set(moodle_worksheets or {}) - set(assignments))
    if unknown:
        raise GradingError(f"--moodle-worksheet for {unknown}, which the grading folder has no grades of "
                           f"(it has {assignments})")
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:
        given = {(r.student, r.assignment): comments(gb, r.assignment, r.student) for r in records}
    written = [os.path.join(out, "grades.csv"), os.path.join(exports, "canvas.csv")]
    if canvas_gradebook:
        try:
            used, missing, unplaced = lms.fill_gradebook(canvas_gradebook, written[-1],
                                                         canvas_grades(records, students, assignments), canvas_columns)
        except (OSError, ValueError) as error:
            raise GradingError(f"--canvas-gradebook: {error}") from None
        notes += [f"canvas.csv: {a} → column {c!r}" for a, c in sorted(used.items())]
        notes += [f"canvas.csv: Canvas user {u} ({a}) is not in the gradebook" for a, u in missing]
        notes += [f"canvas.csv: no column for {a} (name it with --canvas-column {a}=COLUMN)" for a in unplaced]
    else:
        write_canvas(written[-1], records, students, assignments)
    for assignment in assignments:
        path = os.path.join(exports, f"moodle-{assignment}.csv")
        try:
            missing = write_moodle(path, assignment, records, students, given, (moodle_worksheets or {}).get(assignment),
                                   tz)
        except (OSError, ValueError) as error:
            raise GradingError(f"--moodle-worksheet for {assignment}: {error}") from None
        if missing is not None:
            written.append(path)
            notes += [f"moodle-{assignment}.csv: Participant {n} is not in the worksheet, or under another name "
                      "(not filled)" for n in missing]
    moodle_feedback = {assignment: {} for assignment in assignments}
    for student, (first, last, _, lms_id) in sorted(students.items()):
        pages = feedback_pages(out, student)
        if pages:
            written.append(os.path.join(exports, "feedback", student + ".zip"))
            _zip(written[-1], pages)
        kind, number = lms_of(lms_id)
        for name, data in pages.items():
            assignment, page = name.split("/", 1)
            if kind == "moodle" and assignment in moodle_feedback:
                prefix = f"{first} {last}".strip().replace("_", " ") or "Participant"
                moodle_feedback[assignment][f"{prefix}_{number}_assignsubmission_file_/{page}"] = data
    for assignment, members in moodle_feedback.items():
        if members:
            written.append(os.path.join(exports, f"moodle-feedback-{assignment}.zip"))
            _zip(written[-1], members)
    return written, notes
