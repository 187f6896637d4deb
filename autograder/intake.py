"""Read a folder of submissions, hostile ones included, into :class:`Submission` objects.

Layouts (see :mod:`autograder.layouts`): nbgrader's ``<student>/<assignment>/``, and Moodle, Canvas,
Blackboard and flat LMS exports of one assignment (notebooks or zips). Every file is read through
:mod:`autograder.safefiles` (regular files only, never through a link, size-capped); a zip is read member
by member, counting the bytes it really inflates to, within a per-member and a total cap, and never
extracted. What goes wrong is confined to one student:

* a link, a pipe or a device among a student's files, or an archive beyond the caps: that submission is
  ``refused`` (score 0, the reason in the CSV's ``detail``);
* an entry whose name gives no usable student id (``José García_2001.ipynb``, ``-rf_x.ipynb``,
  ``.._x.ipynb``): a :class:`Refusal`, one CSV row with the name as found, the class still graded;
* a file that is not a valid notebook: ``invalid-notebook``; no notebook: ``missing``; a single
  notebook under another name: ``renamed`` (graded as the expected one).

A folder the grader recognises as no layout at all is a :class:`SubmissionError` (exit code 2).
"""

import os
import stat
import zipfile
from dataclasses import dataclass, field
from datetime import timezone

import nbformat
from nbgrader.utils import parse_utc

from . import layouts
from .results import Status
from .safefiles import TooLarge, UnsafeFile, entries, is_real_folder, kind, open_regular, read_regular, write_new

MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_ZIP_BYTES = 50 * 2**20  # the zip file itself
MAX_UNZIPPED_BYTES = 60 * 2**20  # all notebook members of one zip, as inflated
MAX_ZIP_MEMBERS = 2000
MAX_TIMESTAMP_BYTES = 200
CHUNK = 2**16


class SubmissionError(ValueError):
    """A submissions folder that cannot be read as any layout (the whole run stops, exit code 2)."""


@dataclass
class Submission:
    """One student's files for one assignment, and what intake found wrong with them."""

    student: str
    assignment: str
    notebooks: dict = field(default_factory=dict)  # expected notebook name -> bytes to grade
    statuses: set = field(default_factory=set)
    reasons: list = field(default_factory=list)
    timestamp: str = ""  # ISO 8601 in UTC, from timestamp.txt or the export's file name
    name: str = ""  # the student's full name, if the export gives it
    lms_id: str = ""


@dataclass
class Refusal:
    """A top-level entry that names no usable student: reported in the CSV, not graded."""

    entry: str
    assignment: str
    reason: str


def _printable(name):
    return "".join(ch if ch.isprintable() else "?" for ch in name)[:120]


def _valid_notebook(data):
    try:
        nbformat.validate(nbformat.reads(data.decode("utf-8"), as_version=4))
    except Exception:  # noqa: BLE001 (any parse or schema error means the same thing to the grader)
        return False
    return True


def _is_notebook_member(name):
    parts = name.replace("\\", "/").split("/")
    return parts[-1].endswith(".ipynb") and not any(p in (".ipynb_checkpoints", "__MACOSX") for p in parts)


def _read_zip(path):
    """``{member name: bytes}`` of a zip's notebooks, streamed within the caps (TooLarge, BadZipFile)."""
    files, total = {}, 0
    with open_regular(path, MAX_ZIP_BYTES) as handle, zipfile.ZipFile(handle) as archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise TooLarge(f"the archive has more than {MAX_ZIP_MEMBERS} members")
        for info in members:
            if info.is_dir() or not _is_notebook_member(info.filename) or stat.S_ISLNK(info.external_attr >> 16):
                continue  # folders, other files and links inside the archive are never read
            chunks, size = [], 0
            with archive.open(info) as member:
                while chunk := member.read(CHUNK):
                    size, total = size + len(chunk), total + len(chunk)
                    if size > MAX_NOTEBOOK_BYTES or total > MAX_UNZIPPED_BYTES:
                        raise TooLarge(f"the archive inflates beyond {MAX_UNZIPPED_BYTES // 2**20} MiB "
                                       f"(or a notebook beyond {MAX_NOTEBOOK_BYTES // 2**20} MiB)")
                    chunks.append(chunk)
            files[info.filename] = b"".join(chunks)
    return files


def _place(submission, files, expected):
    """Match ``files`` (name -> bytes) to the ``expected`` notebook names of the assignment."""
    files = {os.path.basename(name.replace("\\", "/"))[: -len(".ipynb")]: data for name, data in files.items()}
    unmatched = sorted(set(files) - set(expected))
    for notebook in expected:
        if notebook in files:
            data = files[notebook]
        elif len(unmatched) == 1 and len([n for n in expected if n not in files]) == 1:
            data = files[unmatched.pop()]
            submission.statuses.add(Status.RENAMED)
        else:
            submission.statuses.add(Status.MISSING)
            continue
        if not _valid_notebook(data):
            submission.statuses.add(Status.INVALID_NOTEBOOK)
            continue
        submission.notebooks[notebook] = data


def _refuse(submission, reason):
    submission.statuses, submission.notebooks = {Status.REFUSED}, {}
    submission.reasons.append(reason)
    return submission


def _timestamp(text, where):
    """ISO 8601 UTC from a timestamp (nbgrader's parser); raises ValueError with ``where`` on nonsense."""
    try:
        return parse_utc(text.strip()).astimezone(timezone.utc).isoformat()
    except (ValueError, OverflowError) as error:
        raise ValueError(f"{where}: unreadable timestamp {text.strip()[:40]!r}") from error


def _student_refusal(name, assignment):
    """A :class:`Refusal` if ``name`` is not a usable student id, else None."""
    if not layouts.STUDENT_ID.match(name):
        return Refusal(_printable(name), assignment,
                       f"{_printable(name)!r} is not a usable student id (a letter or digit first, then letters, "
                       "digits, '.', '_', '@', '-'; at most 64)")
    return None


def _nbgrader_submission(folder, student, assignment, expected):
    submission = Submission(student, assignment)
    directory = os.path.join(folder, student, assignment)
    if not os.path.lexists(directory):
        _place(submission, {}, expected)
        return submission
    if not is_real_folder(directory):
        return _refuse(submission, f"{student}/{assignment} is {kind(os.lstat(directory).st_mode)}, not a folder")
    files = {}
    for name, mode in entries(directory):
        if stat.S_ISDIR(mode):
            continue  # checkpoints and other folders are not graded
        path = os.path.join(directory, name)
        try:
            if name == "timestamp.txt":
                submission.timestamp = _timestamp(read_regular(path, MAX_TIMESTAMP_BYTES).decode(errors="replace"),
                                                  f"{student}/{assignment}/timestamp.txt")
            elif name.endswith(".ipynb"):
                files[name] = read_regular(path, MAX_NOTEBOOK_BYTES)
            elif not stat.S_ISREG(mode):
                raise UnsafeFile(f"{name!r} is {kind(mode)}")
        except (UnsafeFile, TooLarge, ValueError) as error:
            return _refuse(submission, f"{student}/{assignment}: {error}")
    _place(submission, files, expected)
    return submission


def from_nbgrader_layout(folder, assignments):
    """Submissions from ``folder/<student>/<assignment>/``; every student gets every assignment."""
    submissions, refusals = [], []
    for name, mode in entries(folder):
        if not stat.S_ISDIR(mode):
            why = f"{_printable(name)!r} is {kind(mode)}, not a student's folder"
            refusals += [Refusal(_printable(name), a, why) for a in assignments]
            continue
        refusal = _student_refusal(name, "")
        if refusal is not None:
            refusals += [Refusal(refusal.entry, a, refusal.reason) for a in assignments]
            continue
        for assignment, expected in assignments.items():
            submissions.append(_nbgrader_submission(folder, name, assignment, expected))
    return submissions, refusals


def _export_files(path, mode, entry):
    """``{name: bytes}`` of one export entry: a notebook, a zip's notebooks, or a folder's (Moodle)."""
    if stat.S_ISDIR(mode):
        files = {}
        for name, child_mode in entries(path):
            if name.endswith((".ipynb", ".zip")) or not stat.S_ISREG(child_mode):
                files.update(_export_files(os.path.join(path, name), child_mode, entry))
        return files
    if not stat.S_ISREG(mode):
        raise UnsafeFile(f"{os.path.basename(path)!r} is {kind(mode)}")
    if path.endswith(".zip"):
        return _read_zip(path)
    if path.endswith(".ipynb"):
        return {os.path.basename(entry.file_name or path): read_regular(path, MAX_NOTEBOOK_BYTES)}
    return {}


def from_export(folder, layout, assignment, expected):
    """Submissions for one ``assignment`` from an LMS export in ``layout`` (see :mod:`autograder.layouts`)."""
    chosen, refusals = {}, []
    for name, mode in entries(folder):
        entry = layouts.parse_entry(layout, name)
        if entry is None:
            refusals.append(Refusal(_printable(name), assignment, f"{_printable(name)!r} is not named as a "
                                    f"{layout} export names its submissions"))
            continue
        if entry.ignore:
            continue
        refusal = _student_refusal(entry.student, assignment)
        if refusal is not None:
            refusals.append(Refusal(_printable(name), assignment, refusal.reason))
            continue
        rank = (entry.timestamp, os.lstat(os.path.join(folder, name)).st_mtime)
        if entry.student not in chosen or rank > chosen[entry.student][0]:  # the newest attempt wins
            chosen[entry.student] = (rank, name, mode, entry)
    submissions = []
    for student, (_, name, mode, entry) in sorted(chosen.items()):
        submission = Submission(student, assignment, name=entry.name, lms_id=entry.lms_id)
        if entry.late:
            submission.reasons.append("marked late by the LMS")
        try:
            files = _export_files(os.path.join(folder, name), mode, entry)
            if entry.timestamp:
                submission.timestamp = _timestamp(entry.timestamp, name)
        except (UnsafeFile, TooLarge, ValueError) as error:
            submissions.append(_refuse(submission, f"{_printable(name)}: {error}"))
            continue
        except zipfile.BadZipFile:
            submission.statuses.add(Status.INVALID_NOTEBOOK)
            submissions.append(submission)
            continue
        if len(files) == 1 and len(expected) == 1:
            (member, data), = files.items()
            if os.path.basename(member) != expected[0] + ".ipynb" and not name.endswith(".ipynb"):
                submission.statuses.add(Status.RENAMED)
            files = {expected[0] + ".ipynb": data}
        _place(submission, files, expected)
        submissions.append(submission)
    return submissions, refusals


def collect(folder, assignments, layout="auto"):
    """``(submissions, refusals)`` from ``folder``; ``assignments`` maps assignment -> expected notebooks."""
    if not os.path.isdir(folder):
        raise SubmissionError(f"The submissions folder {folder!r} does not exist.")
    listing = entries(folder)
    if layout == "auto":
        folders = {name: [child for child, _ in entries(os.path.join(folder, name))]
                   for name, mode in listing if stat.S_ISDIR(mode)}
        layout = layouts.detect([name for name, _ in listing], folders, set(assignments))
        if layout is None:
            raise SubmissionError(
                f"{folder!r} holds no submissions the grader recognises: not <student>/<assignment>/ folders "
                "(nbgrader), nor a Moodle, Canvas, Blackboard or flat export of notebooks or zips; see "
                "--layout and the README.")
    if layout == "nbgrader":
        return from_nbgrader_layout(folder, assignments)
    if len(assignments) != 1:
        raise SubmissionError(
            f"{folder!r} looks like an LMS export ({layout}), which holds one assignment; pass --assignment "
            f"with one of {sorted(assignments)}.")
    (assignment, expected), = assignments.items()
    return from_export(folder, layout, assignment, expected)


def write_submitted(submission, course_root):
    """Write the notebooks to ``course_root/submitted/<student>/<assignment>/`` (a fresh folder)."""
    directory = os.path.join(course_root, "submitted", submission.student, submission.assignment)
    os.makedirs(directory)
    for notebook, data in submission.notebooks.items():
        write_new(os.path.join(directory, notebook + ".ipynb"), data)
    if submission.timestamp:
        write_new(os.path.join(directory, "timestamp.txt"), submission.timestamp.encode())
    return directory
