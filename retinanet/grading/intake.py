"""Bring submissions into nbgrader's layout, ``submitted/<student>/<assignment>/<notebook>.ipynb``.

Two input layouts are accepted (``--layout auto`` tells them apart by looking for assignment folders):

nbgrader
    ``DIR/<student>/<assignment>/*.ipynb``, e.g. what ``nbgrader collect`` or a JupyterHub exchange gives.
LMS export (one assignment, ``--assignment`` names it)
    a flat folder of ``<student>.ipynb``, ``<student>_<anything>.ipynb``, ``<student>.zip`` or
    ``<student>_<anything>.zip``: the student id is the file name up to the first underscore. A zip may
    hold the notebook in any sub-folder. When a student has several files, the newest wins.

Every notebook is checked while copying: a file that is not a valid notebook is not graded (its cells
score 0) and gets the status ``invalid-notebook``; an expected notebook that is absent gets ``missing``;
a single notebook under another name is graded as the expected one with the status ``renamed``.
"""

import os
import re
import shutil
import zipfile
from dataclasses import dataclass, field

import nbformat

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
MAX_NOTEBOOK_BYTES = 50 * 2**20


class SubmissionError(ValueError):
    """A submissions folder that cannot be read as either layout."""


@dataclass
class Submission:
    """One student's files for one assignment, and what intake found wrong with them."""

    student: str
    assignment: str
    notebooks: dict = field(default_factory=dict)  # expected notebook name -> bytes to grade
    statuses: set = field(default_factory=set)
    timestamp: bytes = b""  # nbgrader collect's timestamp.txt (late penalties), if any


def _is_notebook_file(name):
    parts = name.replace("\\", "/").split("/")
    return parts[-1].endswith(".ipynb") and not any(p in (".ipynb_checkpoints", "__MACOSX") for p in parts)


def _valid_notebook(data):
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception:  # any parse or schema error means the same thing to the grader
        return False
    return True


def _place(submission, files, expected):
    """Match ``files`` (name -> bytes) to the ``expected`` notebook names of the assignment."""
    files = {os.path.basename(name)[: -len(".ipynb")]: data for name, data in files.items()}
    unmatched = sorted(set(files) - set(expected))
    for notebook in expected:
        if notebook in files:
            data = files[notebook]
        elif len(unmatched) == 1 and len([n for n in expected if n not in files]) == 1:
            data = files[unmatched.pop()]
            submission.statuses.add("renamed")
        else:
            submission.statuses.add("missing")
            continue
        if len(data) > MAX_NOTEBOOK_BYTES or not _valid_notebook(data):
            submission.statuses.add("invalid-notebook")
            continue
        submission.notebooks[notebook] = data


def _check_student(student, where):
    if not STUDENT_ID.match(student):
        raise SubmissionError(
            f"{where}: the student id {student!r} must start with a letter or digit and contain only "
            "letters, digits, '.', '_', '@' and '-' (in an LMS export: the file name up to its first underscore)."
        )
    return student


def _read_zip(path):
    files = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if _is_notebook_file(info.filename) and info.file_size <= MAX_NOTEBOOK_BYTES:
                    files[info.filename] = archive.read(info)
    except zipfile.BadZipFile:
        return None
    return files


def from_nbgrader_layout(folder, assignments):
    """Submissions from ``folder/<student>/<assignment>/``; every student gets every assignment."""
    students = sorted(name for name in os.listdir(folder) if os.path.isdir(os.path.join(folder, name)))
    result = []
    for student in students:
        _check_student(student, folder)
        for assignment, expected in assignments.items():
            submission = Submission(student, assignment)
            directory = os.path.join(folder, student, assignment)
            files = {}
            if os.path.isdir(directory):
                for name in sorted(os.listdir(directory)):
                    path = os.path.join(directory, name)
                    if _is_notebook_file(name) and os.path.isfile(path):
                        with open(path, "rb") as handle:
                            files[name] = handle.read()
            _place(submission, files, expected)
            timestamp = os.path.join(directory, "timestamp.txt")
            if os.path.isfile(timestamp):
                with open(timestamp, "rb") as handle:
                    submission.timestamp = handle.read()
            result.append(submission)
    return result


def from_lms_export(folder, assignment, expected):
    """Submissions for one ``assignment`` from a flat folder of notebooks and zips."""
    newest = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not os.path.isfile(path) or not name.endswith((".ipynb", ".zip")):
            continue
        student = _check_student(os.path.splitext(name)[0].split("_", 1)[0], path)
        if student not in newest or os.path.getmtime(path) > os.path.getmtime(newest[student]):
            newest[student] = path
    result = []
    for student, path in sorted(newest.items()):
        submission = Submission(student, assignment)
        if path.endswith(".zip"):
            files = _read_zip(path)
            if files is None:
                submission.statuses.add("invalid-notebook")
                result.append(submission)
                continue
        else:
            with open(path, "rb") as handle:
                files = {os.path.basename(path): handle.read()}
        if len(files) == 1 and len(expected) == 1:
            (name, data), = files.items()
            if name.split("/")[-1] != expected[0] + ".ipynb" and not path.endswith(".ipynb"):
                submission.statuses.add("renamed")
            files = {expected[0] + ".ipynb": data}
        _place(submission, files, expected)
        result.append(submission)
    return result


def detect_layout(folder, assignments):
    """``"nbgrader"`` if some ``folder/<student>/<assignment>`` exists, else ``"lms"``."""
    for student in os.listdir(folder):
        if any(os.path.isdir(os.path.join(folder, student, a)) for a in assignments):
            return "nbgrader"
    return "lms"


def collect(folder, assignments, layout="auto"):
    """Read ``folder`` as ``layout``; ``assignments`` maps assignment -> expected notebook names."""
    if not os.path.isdir(folder):
        raise SubmissionError(f"The submissions folder {folder!r} does not exist.")
    if layout == "auto":
        layout = detect_layout(folder, assignments)
    if layout == "nbgrader":
        return from_nbgrader_layout(folder, assignments)
    if len(assignments) != 1:
        raise SubmissionError(
            f"{folder!r} looks like an LMS export (no <student>/<assignment>/ folders), which holds one "
            f"assignment; pass --assignment with one of {sorted(assignments)}."
        )
    (assignment, expected), = assignments.items()
    return from_lms_export(folder, assignment, expected)


def write_submitted(submission, course_root):
    """Write the notebooks to ``course_root/submitted/<student>/<assignment>/`` (replacing it)."""
    directory = os.path.join(course_root, "submitted", submission.student, submission.assignment)
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    for notebook, data in submission.notebooks.items():
        with open(os.path.join(directory, notebook + ".ipynb"), "wb") as handle:
            handle.write(data)
    if submission.timestamp:
        with open(os.path.join(directory, "timestamp.txt"), "wb") as handle:
            handle.write(submission.timestamp)
    return directory
