"""The grade files of Moodle and Canvas, as their own code reads and writes them.

**Moodle's grading worksheet** (an assignment's *Download grading worksheet* / *Upload grading worksheet*,
the ``assignfeedback_offline`` plugin). Moodle writes it with ``assign_grading_table`` in download mode
(moodle/moodle mod/assign/gradingtable.php): the columns ``Identifier`` (``get_string('recordid',
'assign')``), ``Full name``, the identity fields (``Email address`` by default), ``Status``, ``Grade``,
``Maximum Grade`` (``maxgrade``), ``Grade can be changed``, ``Last modified (submission)``
(``lastmodifiedsubmission``), one column per submission plugin's text field (``Online text``), ``Last modified
(grade)`` (``lastmodifiedgrade``) and one per feedback plugin's text field (``Feedback comments``, the
comments plugin); an ``Identifier`` is ``Participant <n>`` (``hiddenuser`` + ``get_uniqueid_for_user``, the
number Moodle's submission download puts in its folder names); a time is ``userdate()`` in the downloading
teacher's time zone, ``%A, %d %B %Y, %I:%M %p`` (lang/en/langconfig.php ``strftimedaydatetime``, day and
hour without a leading zero: ``Monday, 7 December 2026, 9:05 PM``), ``-`` when there is none; the status of
a student with an extension ends in ``Extension granted until: <time>`` (``userextensiondate``).

Moodle reads it back with ``assignfeedback_offline_grade_importer`` (mod/assign/feedback/offline/
importgradeslib.php): the file is refused unless it has the columns ``Identifier``, ``Grade`` and ``Last
modified (grade)``; a row is matched by the number after ``Participant ``; the grade is read with
``unformat_float``; ``Last modified (grade)`` goes through PHP's ``strtotime``, and
mod/assign/feedback/offline/locallib.php (``process_import_grades``) skips a row whose grade was changed in
Moodle more than a minute after that time (unless the teacher ticks "Ignore modified"), a grade equal to
Moodle's, an empty or negative one, or one above the assignment's maximum; a feedback column is matched
by its header (``Feedback comments``), its text stored as the comment (HTML). So the grader fills a
worksheet the teacher downloaded (:func:`fill_worksheet`) and leaves ``Last modified (grade)`` as Moodle
wrote it (the conflict check keeps working); a worksheet it writes itself (:func:`new_worksheet`) has the
export's time there.

**Canvas's gradebook CSV** (Grades → Export / Import). Canvas reads it with ``GradebookImporter``
(instructure/canvas-lms lib/gradebook_importer.rb): the header must begin ``Student, ID`` and end its
student columns with ``Section`` (``SIS User ID``, ``SIS Login ID``, ``Integration ID``, ``Root Account``
may sit between); a student is found by ``ID`` (the Canvas user id), else by ``SIS User ID``, else by ``SIS
Login ID``, else by name; an assignment column is ``<title> (<id>)`` (``Assignment.title_and_id``), else
matched by its whole title, else a new assignment is created; a row whose first cell holds ``Points
Possible`` sets the points, rows of only ``Muted``/``Manual Posting`` are skipped; the delimiter is ``,`` or
``;``; columns such as ``Current Score`` are ignored. :func:`fill_gradebook` fills the teacher's export.
"""

import csv
import html
import io
import os
import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..results import csv_writer

# Moodle (lang/en/assign.php, lang/en/moodle.php, lang/en/assignfeedback_comments.php), English strings.
IDENTIFIER, FULL_NAME, EMAIL, STATUS = "Identifier", "Full name", "Email address", "Status"
GRADE, MAXIMUM, CHANGEABLE = "Grade", "Maximum Grade", "Grade can be changed"
SUBMITTED, GRADED, COMMENTS = "Last modified (submission)", "Last modified (grade)", "Feedback comments"
WORKSHEET_COLUMNS = (IDENTIFIER, FULL_NAME, EMAIL, STATUS, GRADE, MAXIMUM, CHANGEABLE, SUBMITTED, GRADED,
                     COMMENTS)
REQUIRED = (IDENTIFIER, GRADE, GRADED)  # importgradeslib.php init(): without them the upload is refused
PARTICIPANT = "Participant "  # get_string('hiddenuser', 'assign')
EXTENSION = re.compile(r"Extension granted until:\s*(?P<time>.+?)\s*$")  # userextensiondate
MOODLE_TIME = "%A, %d %B %Y, %I:%M %p"  # strftimedaydatetime
NO_TIME = "-"

# Canvas (lib/gradebook_importer.rb)
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_STUDENT_COLUMNS = {"Student", "LastName", "FirstName", "ID", "SIS User ID", "SIS Login ID", "Section",
                          "Integration ID", "Root Account"}  # GRADEBOOK_IMPORTER_RESERVED_NAMES
CANVAS_TITLE_AND_ID = re.compile(r"^(?P<title>.*?)\s*\((?P<id>\d+)\)\s*$")
POINTS_POSSIBLE = "Points Possible"


def zone(name):
    """The ``ZoneInfo`` of an IANA time zone name; ValueError for an unknown one."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}") from error


def parse_moodle_time(text, tz):
    """A time as Moodle's worksheet writes it (``userdate``), read in ``tz``: an aware UTC datetime, or None
    for ``-`` or an empty cell; ValueError for anything else. ISO 8601 is accepted too."""
    text = (text or "").strip().lstrip("'")
    if text in ("", NO_TIME):
        return None
    for form in (MOODLE_TIME, "%d %B %Y, %I:%M %p"):
        try:
            moment = datetime.strptime(text, form)
            break
        except ValueError:
            continue
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text[:60]!r} is not a time as Moodle writes it ({MOODLE_TIME!r})") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(tz) if isinstance(tz, str) else tz)
    return moment.astimezone(timezone.utc)


def format_moodle_time(moment, tz):
    """``moment`` (aware) as Moodle's ``userdate`` writes it in ``tz``: ``Monday, 7 December 2026, 9:05 PM``."""
    local = moment.astimezone(zone(tz) if isinstance(tz, str) else tz)
    return f"{local:%A}, {local.day} {local:%B %Y}, {local.hour % 12 or 12}:{local:%M %p}"


def participant(identifier):
    """The number of a worksheet ``Identifier`` (``Participant 2001`` → ``2001``), or None."""
    text = (identifier or "").strip().lstrip("'")
    number = text[len(PARTICIPANT):] if text.startswith(PARTICIPANT) else ""
    return number if number.isdigit() else None


def _read_csv(path):
    with open(path, newline="", encoding="utf-8-sig") as handle:
        text = handle.read()
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    return delimiter, list(csv.reader(io.StringIO(text), delimiter=delimiter))


def read_worksheet(path):
    """``(header, rows)`` of a Moodle grading worksheet; ValueError if Moodle would refuse it."""
    _, rows = _read_csv(path)
    if not rows:
        raise ValueError(f"{path}: empty, not a Moodle grading worksheet")
    header, body = rows[0], [row for row in rows[1:] if any(cell.strip() for cell in row)]
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        raise ValueError(f"{path}: not a Moodle grading worksheet: no {', '.join(repr(m) for m in missing)} "
                         f"column (Moodle's importer needs {', '.join(REQUIRED)}); download it from the "
                         "assignment's View all submissions → Download grading worksheet")
    return header, [row + [""] * (len(header) - len(row)) for row in body]


def worksheet_times(path, tz):
    """``{participant: (submitted, extended due date)}`` of a Moodle grading worksheet (aware UTC datetimes
    or None): ``Last modified (submission)`` and the ``Extension granted until:`` of its ``Status``."""
    header, rows = read_worksheet(path)
    index = {name: header.index(name) for name in (IDENTIFIER, SUBMITTED, STATUS) if name in header}
    times = {}
    for row in rows:
        number = participant(row[index[IDENTIFIER]])
        if number is None:
            continue
        submitted = parse_moodle_time(row[index[SUBMITTED]], tz) if SUBMITTED in index else None
        extension = EXTENSION.search(row[index[STATUS]]) if STATUS in index else None
        times[number] = (submitted, parse_moodle_time(extension["time"], tz) if extension else None)
    return times


def points(score, max_score, lms_max):
    """``score`` of ``max_score`` as points of the LMS's maximum ``lms_max`` (unchanged when they agree),
    two decimals at most, as text."""
    if lms_max and max_score and abs(lms_max - max_score) > 1e-9:
        score = score * lms_max / max_score
    return f"{round(score, 2):g}"


def _number(text):
    try:
        return float((text or "").strip().replace(",", "."))
    except ValueError:
        return None


def comments_html(lines):
    """Feedback comments (plain text lines) as the HTML Moodle stores a comment in."""
    return "<br>".join(html.escape(line).replace("\n", "<br>") for line in lines if line)


def _same_name(ours, theirs):
    """Whether the name of Moodle's download (``_`` made spaces) is the worksheet's ``Full name``."""
    return " ".join(ours.replace("_", " ").split()).casefold() == " ".join(theirs.replace("_", " ").split()).casefold()


def fill_worksheet(source, destination, grades):
    """Write ``destination``: the worksheet ``source`` with ``grades`` (``{participant: (score, max score,
    [comment lines], name)}``) in ``Grade`` (scaled to the worksheet's ``Maximum Grade``) and ``Feedback
    comments`` (when it has that column; lines replace Moodle's comment, none keep it); every other cell,
    column and row as Moodle wrote it. A row whose ``Full name`` is not the name of Moodle's download (a
    group's folder, whose number is a group's, or the worksheet of another assignment) is left alone.
    Returns ``(filled participants, participants of grades not filled)``."""
    header, rows = read_worksheet(source)
    index = {name: i for i, name in enumerate(header)}
    filled = set()
    for row in rows:
        number = participant(row[index[IDENTIFIER]])
        if number not in grades:
            continue
        score, max_score, lines, name = grades[number]
        if name and FULL_NAME in index and not _same_name(name, row[index[FULL_NAME]].lstrip("'")):
            continue
        lms_max = _number(row[index[MAXIMUM]]) if MAXIMUM in index else None
        row[index[GRADE]] = points(score, max_score, lms_max)
        if COMMENTS in index and lines:
            row[index[COMMENTS]] = comments_html(lines)
        filled.add(number)
    _write(destination, header, rows, ",")
    return filled, sorted(set(grades) - filled)


def new_worksheet(destination, learners, now, tz):
    """Write a grading worksheet in Moodle's own columns (:data:`WORKSHEET_COLUMNS`) for ``learners``
    (``[(participant, full name, email, status, score, max score, submitted, [comment lines])]``);
    ``Last modified (grade)`` is ``now``, so Moodle's importer takes every grade."""
    rows = []
    for number, name, email, status, score, max_score, submitted, lines in sorted(learners, key=lambda l: int(l[0])):
        rows.append([PARTICIPANT + number, name, email, status, points(score, max_score, None), f"{max_score:g}",
                     "Yes", format_moodle_time(submitted, tz) if submitted else NO_TIME, format_moodle_time(now, tz),
                     comments_html(lines)])
    _write(destination, list(WORKSHEET_COLUMNS), rows, ",")


def _write(path, header, rows, delimiter):
    with open(path + ".partial", "w", newline="", encoding="utf-8") as handle:
        writer = csv_writer(handle, delimiter=delimiter)  # the LMS file's own delimiter
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
    os.replace(path + ".partial", path)


def read_gradebook(path):
    """``(delimiter, header, rows)`` of a gradebook CSV exported from Canvas; ValueError if Canvas's importer
    would refuse its header (``Student, ID`` first, ``Section`` last of the student columns)."""
    delimiter, rows = _read_csv(path)
    if not rows or len(rows[0]) < 4 or "Student" not in rows[0][0] or "ID" not in rows[0][1]:
        raise ValueError(f"{path}: not a Canvas gradebook export (its header must begin 'Student, ID'); export "
                         "it from Canvas's Grades → Export → Export Entire Gradebook")
    return delimiter, rows[0], rows[1:]


def gradebook_columns(header):
    """``{index: (title, canvas assignment id or None)}`` of the assignment columns of a Canvas gradebook."""
    columns = {}
    for i, name in enumerate(header):
        if name in CANVAS_STUDENT_COLUMNS or any(word in name for word in (
                "Current Score", "Current Points", "Current Grade", "Final Score", "Final Points", "Final Grade",
                "Override Score", "Override Grade", "Override Status")):
            continue
        match = CANVAS_TITLE_AND_ID.match(name)
        columns[i] = (match["title"], match["id"]) if match else (name, None)
    return columns


def match_columns(header, assignments, chosen=None):
    """``{assignment: column index}``: the column ``chosen`` names for an assignment (its whole header, its
    title or its Canvas id), else the column whose title is the assignment's name (case and spaces ignored);
    ValueError for a chosen column that is not there."""
    columns = gradebook_columns(header)
    found = {}
    for assignment in assignments:
        wanted = (chosen or {}).get(assignment)
        for i, (title, number) in columns.items():
            names = {header[i], title, number} if wanted else {title}
            target = wanted or assignment
            if any(name and name.strip().lower() == target.strip().lower() for name in names):
                found[assignment] = i
                break
        else:
            if wanted:
                raise ValueError(f"the Canvas gradebook has no column {wanted!r} for {assignment}; its assignment "
                                 f"columns: {', '.join(header[i] for i in columns)}")
    return found


def fill_gradebook(source, destination, grades, chosen=None):
    """Write ``destination``: the Canvas gradebook export ``source`` with ``grades`` (``{assignment: {canvas
    user id: (score, max score)}}``) in each assignment's column (:func:`match_columns`), scaled to the
    column's ``Points Possible``; every other cell as Canvas wrote it. Returns ``(columns used, [(assignment,
    user id) not in the gradebook], assignments without a column)``."""
    delimiter, header, rows = read_gradebook(source)
    columns = match_columns(header, sorted(grades), chosen)
    possible = next((row for row in rows if row and POINTS_POSSIBLE in row[0]), None)
    placed = set()
    for row in rows:
        if not row or POINTS_POSSIBLE in row[0] or len(row) < 2:
            continue
        row += [""] * (len(header) - len(row))
        user = row[1].strip()
        for assignment, column in columns.items():
            if user in grades[assignment]:
                score, max_score = grades[assignment][user]
                lms_max = _number(possible[column]) if possible and column < len(possible) else None
                row[column] = points(score, max_score, lms_max)
                placed.add((assignment, user))
    _write(destination, header, rows, delimiter)
    missing = sorted((a, u) for a in columns for u in grades[a] if (a, u) not in placed)
    return {a: header[i] for a, i in columns.items()}, missing, sorted(set(grades) - set(columns))
