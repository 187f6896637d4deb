"""Read a folder of submissions, hostile ones included, into :class:`Submission` objects.

Layouts (see :mod:`autograder.intake.layouts`): nbgrader's ``<student>/<assignment>/``, and Moodle, Canvas,
Blackboard and flat LMS exports of one assignment (notebooks or zips). Every file is read through
:mod:`autograder.intake.safefiles` (regular files only, never through a link, size-capped); a zip is read member
by member, counting the bytes it really inflates to, within a per-member and a total cap, and never
extracted. What goes wrong is confined to one student:

* a link, a pipe, a socket or a device anywhere among a student's files (as the notebook, as
  ``timestamp.txt``, as an extra file, in a nested folder, in an older attempt), a file that cannot be
  read, or an archive beyond the caps: that submission is ``refused`` (score 0, the reason in the CSV's
  ``detail``), found with ``lstat`` alone (:func:`autograder.intake.safefiles.special_files`), nothing opened;
  in nbgrader's layout, such a file directly in ``<student>/`` refuses each of the student's submissions;
* an entry whose name gives no usable student id (``José García_2001.ipynb``, ``-rf_x.ipynb``,
  ``.._x.ipynb``): a :class:`Refusal`, one CSV row with the name as found, the class still graded;
* a file that is not a valid notebook (or a zip that cannot be read): ``invalid-notebook``; no notebook:
  ``missing``; a single notebook under another name: ``renamed`` (graded as the expected one);
* a grading cell the learner copied (two cells with one nbgrader ``grade_id``): only the last one keeps its
  grading metadata, as nbgrader's ``DeduplicateIds`` intends (:func:`deduplicate_ids`).

Whatever else a submission's files raise is confined to it (``refused``, the error in the CSV): no file a
learner can submit stops the class.

A folder the grader recognises as no layout at all is a :class:`SubmissionError` (exit code 2).
"""

import lzma
import os
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import timezone

import nbformat
from nbconvert.preprocessors import Preprocessor
from nbgrader.utils import parse_utc
from traitlets import Bool

from ..results import Status
from . import layouts
from .safefiles import TooLarge, UnsafeFile, entries, kind, open_regular, read_regular, special_files, write_new

MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_ZIP_BYTES = 50 * 2**20  # the zip file itself
MAX_UNZIPPED_BYTES = 60 * 2**20  # all notebook members of one zip, as inflated
MAX_ZIP_MEMBERS = 2000
MAX_TIMESTAMP_BYTES = 200
CHUNK = 2**16
BROKEN_ZIP = (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError, EOFError, zlib.error,
              lzma.LZMAError)
"""What ``zipfile`` raises on a broken, encrypted or exotic archive (``invalid-notebook``)."""


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


def deduplicate_ids(data):
    """``data`` (a valid notebook's bytes) with every grading cell's duplicates stripped of their metadata.

    A learner who copies a check (or solution) cell submits two cells with one nbgrader ``grade_id``.
    nbgrader 0.9.6's ``DeduplicateIds`` (nbgrader/preprocessors/deduplicateids.py, the second of
    ``Autograde.sanitize_preprocessors`` in nbgrader/converters/autograde.py) walks the cells in reverse,
    keeps the id of the last cell carrying it and sets ``cell.metadata.nbgrader = {}`` on every earlier
    one: the copy is ignored (run as a plain cell) and one cell is graded. Its ``{}`` then crashes the next
    step, ``OverwriteCells.add_missing_task_cells`` (nbgrader/preprocessors/overwritecells.py reads
    ``cell["metadata"]["nbgrader"]["grade_id"]`` of every cell with an ``nbgrader`` key: ``KeyError:
    'grade_id'``, a grader-error), and ``CheckCellMetadata`` would reject it anyway (no ``schema_version``:
    nbgrader/nbgraderformat/common.py's ``SchemaTooOldError``; nbgrader issue #1083). So
    the same rule is applied here, before nbgrader sees the notebook, removing the key instead of emptying
    it: every nbgrader step then treats the copy as the ordinary cell ``DeduplicateIds`` meant it to be.
    Only the cells ``DeduplicateIds`` looks at (grade, solution or locked) count; one without a
    ``grade_id`` is left for nbgrader to reject (``rejected-notebook``). Unchanged bytes when nothing is
    duplicated."""
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception:  # noqa: BLE001 (only valid notebooks come here; nbgrader judges anything else)
        return data
    return nbformat.writes(nb).encode() if remove_duplicate_ids(nb) else data


def remove_duplicate_ids(nb):
    """The rule of :func:`deduplicate_ids` on a notebook node, in place; whether anything changed."""
    seen, changed = set(), False
    for cell in reversed(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader")
        if not isinstance(meta, dict) or not (meta.get("grade") or meta.get("solution") or meta.get("locked")):
            continue  # nbgrader.utils.is_grade / is_solution / is_locked
        grade_id = meta.get("grade_id")
        if not isinstance(grade_id, str):
            continue
        if grade_id in seen:
            del cell.metadata["nbgrader"]
            changed = True
        else:
            seen.add(grade_id)
    return changed


class RemoveDuplicateIds(Preprocessor):
    """nbgrader's ``DeduplicateIds`` step for plain ``nbgrader autograde`` (``Autograde.sanitize_preprocessors``
    in ``autograde_config.py``): a copied grading cell loses its nbgrader metadata instead of keeping an
    empty one that crashes the next step (see :func:`deduplicate_ids`)."""

    enabled = Bool(True)

    def preprocess(self, nb, resources):
        remove_duplicate_ids(nb)
        return nb, resources


def _place(submission, files, expected):
    """Match ``files`` (name -> bytes) to the ``expected`` notebook names of the assignment."""
    files = {os.path.basename(name.replace("\\", "/"))[: -len(".ipynb")]: data for name, data in files.items()}
    for name in sorted(files, reverse=True):  # architecture-1 (Canvas's rename of a taken name) is architecture
        copy = layouts.RENAMED_COPY.match(name)
        if copy and copy["stem"] in expected and copy["stem"] not in files:
            files[copy["stem"]] = files.pop(name)
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
        submission.notebooks[notebook] = deduplicate_ids(data)


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


def _nbgrader_submission(folder, student, assignment, expected, student_problem=None):
    """One student's assignment in nbgrader's layout; ``student_problem``: a special file in ``<student>/``."""
    submission = Submission(student, assignment)
    if student_problem:
        return _refuse(submission, f"{student}: {student_problem}")
    directory = os.path.join(folder, student, assignment)
    try:
        if not os.path.lexists(directory):
            _place(submission, {}, expected)
            return submission
        mode = os.lstat(directory).st_mode
        if not stat.S_ISDIR(mode):
            return _refuse(submission, f"{student}/{assignment} is {kind(mode)}, not a folder")
        problem = special_files(directory, mode)  # anywhere below: checkpoints and nested folders included
        if problem:
            return _refuse(submission, f"{student}/{assignment}: {problem}")
        files = {}
        for name, mode in entries(directory):
            path = os.path.join(directory, name)
            if name == "timestamp.txt":
                submission.timestamp = _timestamp(read_regular(path, MAX_TIMESTAMP_BYTES).decode(errors="replace"),
                                                  f"{student}/{assignment}/timestamp.txt")
            elif stat.S_ISDIR(mode):
                continue  # checkpoints and other folders are not graded
            elif name.endswith(".ipynb"):
                files[name] = read_regular(path, MAX_NOTEBOOK_BYTES)
    except (UnsafeFile, TooLarge, ValueError, OSError) as error:
        return _refuse(submission, f"{student}/{assignment}: {_reason(error)}")
    _place(submission, files, expected)
    return submission


def _reason(error):
    """One line for the CSV: the message of our own errors, the type and message of anything else."""
    if isinstance(error, (UnsafeFile, TooLarge)) or type(error) is ValueError:
        return _printable(str(error))[:300]
    return _printable(f"cannot be read ({type(error).__name__}: {error})")[:300]


def _student_folder_problem(path, assignments):
    """A special file directly in a student's folder (nbgrader layout), or why it cannot be listed; an
    assignment's own entry is left to :func:`_nbgrader_submission`, which refuses that assignment alone."""
    try:
        for name, mode in entries(path):
            if name not in assignments and not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                return f"{name!r} is {kind(mode)}"
    except OSError as error:
        return f"the folder cannot be listed ({error.strerror or error})"
    return None


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
        problem = _student_folder_problem(os.path.join(folder, name), assignments)
        for assignment, expected in assignments.items():
            submissions.append(_nbgrader_submission(folder, name, assignment, expected, problem))
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


def _candidate(name, mode):
    """An entry that can hold the submission: a folder, a notebook or a zip (not a learner's extra file)."""
    return stat.S_ISDIR(mode) or name.endswith((".ipynb", ".zip"))


def from_export(folder, layout, assignment, expected):
    """Submissions for one ``assignment`` from an LMS export in ``layout`` (see :mod:`autograder.intake.layouts`).

    Every entry of a student (attempts, extra files, receipts, online text) is looked through for links,
    pipes, sockets and devices first: one anywhere refuses that student's submission. A student's newest
    attempt is graded (Blackboard: the attempt time; flat: the newest file), with every notebook or zip
    of it: Canvas and Moodle write one entry per file of the one submission they keep, so a notebook
    and a README beside it are one submission, graded on the notebook."""
    found, refusals, problems = {}, [], {}
    for name, mode in entries(folder):
        entry = layouts.parse_entry(layout, name)
        if entry is None:
            refusals.append(Refusal(_printable(name), assignment, f"{_printable(name)!r} is not named as a "
                                    f"{layout} export names its submissions"))
            continue
        refusal = _student_refusal(entry.student, assignment)
        if refusal is not None:
            if not entry.ignore:
                refusals.append(Refusal(_printable(name), assignment, refusal.reason))
            continue
        path = os.path.join(folder, name)
        try:
            problem = special_files(path, mode)
        except OSError as error:
            problem = f"cannot be read ({error.strerror or error})"
        if problem and entry.student not in problems:
            problems[entry.student] = f"{_printable(name)}: {_printable(problem)}"
        if entry.ignore:
            continue
        try:
            mtime = os.lstat(path).st_mtime
        except OSError:
            mtime = 0
        # one attempt of a student: Blackboard's attempt time; a flat folder's files are attempts each
        attempt = (entry.timestamp, mtime, name) if layout == "flat" else (entry.timestamp,)
        found.setdefault(entry.student, []).append((attempt, _candidate(name, mode), name, mode, entry))
    chosen = {}
    for student, items in found.items():
        candidates = [item for item in items if item[1]] or items  # a notebook, zip or folder over a README
        newest = max(item[0] for item in candidates)
        chosen[student] = [item[2:] for item in sorted(candidates, key=lambda i: i[2]) if item[0] == newest]
    for student in sorted(set(problems) - set(chosen)):  # only receipts or online text, one of them special
        chosen[student] = [("", 0, layouts.Entry(student=student))]
    submissions = []
    for student, parts in sorted(chosen.items()):
        first = parts[0][2]
        # a name unzipped from bytes that are not UTF-8 (an old zip tool) must still reach the gradebook
        full_name = os.fsencode(first.name).decode("utf-8", errors="replace")
        submission = Submission(student, assignment, name=full_name, lms_id=first.lms_id)
        if any(entry.late for _, _, entry in parts):
            submission.statuses.add(Status.LATE)
            submission.reasons.append("marked LATE by Canvas, which gives no submission time: no late penalty "
                                      "is computed here (Canvas's own late policy applies to the imported grade)")
        if student in problems:
            submissions.append(_refuse(submission, problems[student]))
            continue
        files, whole_files, current = {}, 0, first
        try:
            for name, mode, entry in parts:
                current = name
                part = _export_files(os.path.join(folder, name), mode, entry)
                whole_files += name.endswith(".ipynb") and len(part) == 1
                files.update(part)
            if first.timestamp:
                submission.timestamp = _timestamp(first.timestamp, parts[0][0])
        except BROKEN_ZIP:
            submission.statuses.add(Status.INVALID_NOTEBOOK)
            submissions.append(submission)
            continue
        except Exception as error:  # noqa: BLE001 (UnsafeFile, TooLarge, a bad time, anything: this one only)
            submissions.append(_refuse(submission, f"{_printable(current)}: {_reason(error)}"))
            continue
        if len(files) == 1 and len(expected) == 1:
            (member, data), = files.items()
            stem = os.path.basename(member.replace("\\", "/"))[: -len(".ipynb")]
            copy = layouts.RENAMED_COPY.match(stem)
            if stem != expected[0] and not (copy and copy["stem"] == expected[0]) and not whole_files:
                submission.statuses.add(Status.RENAMED)
            files = {expected[0] + ".ipynb": data}
        _place(submission, files, expected)
        submissions.append(submission)
    return submissions, refusals


def _children(path):
    try:
        return [child for child, _ in entries(path)]
    except OSError:  # an unreadable folder is refused later, by the student it belongs to
        return []


MAX_EXPORT_ZIP_BYTES = 8 * 2**30  # an LMS's whole download
MAX_EXPORT_MEMBERS = 100_000
MAX_EXPORT_UNZIPPED_BYTES = 16 * 2**30  # every notebook and zip of a download, as inflated
LINK_PLACEHOLDER = "link-in-the-download"


def _export_member_path(name):
    """The relative path a member of an LMS download is unpacked to, or None for one that could escape
    (absolute, ``..``, a drive) or names nothing."""
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    if not parts or name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0] or "\0" in name:
        return None
    return os.path.join(*parts)


def _member_name(info):
    """A member's name: zipfile reads a name without the UTF-8 flag as CP437; a zip tool that wrote UTF-8
    without setting the flag (``garcíajosé``) gets its UTF-8 back."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _unpack_member(archive, info, path, relative, caps):
    """Write one member (see :func:`unpack_export`); returns the bytes written. Never through a link:
    ``open(..., "x")`` fails on any entry already there, a link to nowhere included."""
    if info.is_dir():
        os.makedirs(path, exist_ok=True)
        return 0
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        return 0  # a second member of one name: the first one stays
    if stat.S_ISLNK(info.external_attr >> 16):
        os.symlink(LINK_PLACEHOLDER, path)
        return 0
    cap = caps.get(os.path.splitext(relative)[1].lower(), -1)
    written = 0
    with archive.open(info) as member, open(path, "xb") as out:
        while written <= cap and (chunk := member.read(min(CHUNK, cap + 1 - written))):
            out.write(chunk)
            written += len(chunk)
    return written


def unpack_export(archive_path, destination, assignments=()):
    """Unpack an LMS's download (Moodle's "Download all submissions", Canvas's "Download Submissions") into
    the new folder ``destination``; returns the folder that holds its entries (a lone top-level folder is
    stepped into).

    Read through :func:`autograder.intake.safefiles.open_regular` (a regular file, within
    :data:`MAX_EXPORT_ZIP_BYTES`), member by member: a member whose path could leave ``destination`` is
    skipped; a link inside the archive becomes a link to nowhere (:data:`LINK_PLACEHOLDER`), so intake
    refuses that student's submission as it would an unzipped one; a notebook or zip member is written up
    to one byte past its intake cap (so intake refuses it as too large, that student alone), all of them
    within :data:`MAX_EXPORT_UNZIPPED_BYTES`; any other file is written empty (intake never reads it); a
    member that cannot be written is skipped. :class:`SubmissionError` for an archive that cannot be read."""
    os.makedirs(destination)
    caps = {".ipynb": MAX_NOTEBOOK_BYTES, ".zip": MAX_ZIP_BYTES}
    try:
        with open_regular(archive_path, MAX_EXPORT_ZIP_BYTES) as handle, zipfile.ZipFile(handle) as archive:
            members = archive.infolist()
            if len(members) > MAX_EXPORT_MEMBERS:
                raise SubmissionError(f"{archive_path!r} has more than {MAX_EXPORT_MEMBERS:,} members.")
            total = 0
            for info in members:
                relative = _export_member_path(_member_name(info))
                if relative is None:
                    continue
                try:
                    total += _unpack_member(archive, info, os.path.join(destination, relative), relative, caps)
                except (OSError, *BROKEN_ZIP):
                    continue  # that member alone (a name clash with a folder, a broken member): intake sees the rest
                if total > MAX_EXPORT_UNZIPPED_BYTES:
                    raise TooLarge(f"it inflates beyond {MAX_EXPORT_UNZIPPED_BYTES // 2**30} GiB")
    except (UnsafeFile, TooLarge, OSError, *BROKEN_ZIP) as error:
        raise SubmissionError(f"{archive_path!r} cannot be unpacked as an LMS download: {_reason(error)}") from None
    top = entries(destination)
    if len(top) == 1 and stat.S_ISDIR(top[0][1]):  # a folder around the export (zipped again by hand)?
        children = {top[0][0]: _children(os.path.join(destination, top[0][0]))}
        if layouts.detect([top[0][0]], children, set(assignments)) is None:
            return os.path.join(destination, top[0][0])
    return destination


def collect(folder, assignments, layout="auto"):
    """``(submissions, refusals)`` from ``folder``; ``assignments`` maps assignment -> expected notebooks.

    ``folder`` may also be the LMS's download itself, a zip: it is unpacked into a temporary folder
    (:func:`unpack_export`), read, and removed."""
    if os.path.isfile(folder) and zipfile.is_zipfile(folder):
        with tempfile.TemporaryDirectory(prefix="autograder-export-") as temporary:
            return collect(unpack_export(folder, os.path.join(temporary, "export"), assignments), assignments,
                           layout)
    if os.path.isfile(folder):
        raise SubmissionError(f"{folder!r} is a file, neither a folder of submissions nor an LMS's zip download.")
    if not os.path.isdir(folder):
        raise SubmissionError(f"The submissions folder {folder!r} does not exist.")
    listing = entries(folder)
    if layout == "auto":
        folders = {name: _children(os.path.join(folder, name)) for name, mode in listing if stat.S_ISDIR(mode)}
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
