"""What grading says about a submission: the statuses, one record per submission, and the grades CSV.

Every status the grader can report is a member of :class:`Status`; its ``meaning`` is the line the
README's status table and the learners' feedback pages show. A submission can have several statuses
(``late;restored-tests``); :class:`Record` keeps them sorted and the CSV joins them with ``;``.

Every CSV the grader writes (``grades.csv`` here, the Canvas and Moodle files in :mod:`autograder.grades.export`)
goes through :func:`csv_writer`, which passes each row through :func:`csv_row`, so that a name, an id or
a detail a learner chose cannot become a spreadsheet formula (OWASP's "CSV injection"): a cell that
begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``, unless it is a
number (``-1.5`` stays a number).
"""

import csv
import enum
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field


class Status(str, enum.Enum):
    """A fact about one graded submission (one student's one assignment)."""

    def __new__(cls, value, meaning, score):
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        member.score = score
        return member

    OK = ("ok", "graded normally", "points of the passing checks")
    LATE = ("late", "submitted after the assignment's due date (with the student's extension); the late policy "
            "was applied (Canvas's LATE mark: no time, so no penalty here)", "as graded, less the late penalty")
    RENAMED = ("renamed", "the one notebook had another name; it was graded as the expected one", "as graded")
    RESTORED_TESTS = ("restored-tests", "check cells were deleted or edited; the originals were put back and run",
                      "as graded")
    OUTPUT_LIMIT = ("output-limit", "outputs beyond the line or size limit were cut", "as graded")
    MISSING = ("missing", "no notebook for the assignment", "0")
    INVALID_NOTEBOOK = ("invalid-notebook", "not a readable notebook (bad JSON, a broken zip)", "0")
    REFUSED = ("refused", "the submission was not graded: a link, a special file, an unusable name or an "
               "archive beyond the size limits (the reason is in the CSV)", "0")
    REJECTED_NOTEBOOK = ("rejected-notebook", "nbgrader refused the notebook (for example, grading metadata "
                         "edited by hand)", "0")
    CELL_TIMEOUT = ("cell-timeout", "a cell ran past the per-cell time limit and was interrupted (a kernel that "
                    "ignored the interrupt was stopped, and the cells after it were not run)",
                    "its checks 0 (stopped: the later ones too)")
    MEMORY_LIMIT = ("memory-limit", "an allocation beyond the memory limit raised MemoryError, or the "
                    "submission's processes together passed it and were stopped",
                    "the affected checks 0")
    DISK_LIMIT = ("disk-limit", "a write beyond the working folder's or a file's size limit failed",
                  "the affected checks 0")
    CPU_LIMIT = ("cpu-limit", "the kernel used up its CPU time and was stopped",
                 "checks and hidden tests not yet run 0")
    KERNEL_DIED = ("kernel-died", "the kernel process died (os._exit, a crash)",
                   "checks and hidden tests not yet run 0")
    WALL_TIMEOUT = ("wall-timeout", "grading ran past the per-submission wall time; every process was killed",
                    "0")
    USES_REFERENCE = ("uses-reference", "flagged for review: learner code imports or reaches the reference "
                      "solution", "unchanged (review)")
    TAMPERING = ("tampering", "flagged for review: learner code rebinds or patches the checks, or reaches into "
                 "the interpreter (hooks, frames, sys.modules, builtins, exec)", "unchanged (review)")
    NOT_GRADED = ("not-graded", "the grading run was stopped (Ctrl-C, SIGTERM) before this submission was graded; "
                  "rerun the same command to grade it", "its earlier grade, if any; else 0")
    GRADER_ERROR = ("grader-error", "the grader itself failed (not the submission's doing); see the logs", "0")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet (Excel, LibreOffice, Google Sheets) read a cell as a formula (OWASP)."""
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _is_number(text):
    """A finite number in plain decimal notation (``-1.5``, ``+2``, ``-3e-05``): parsed as a float."""
    if not _PLAIN_NUMBER.fullmatch(text):  # no "-inf", "-nan", "-1_0", "-1\n" (float() takes those)
        return False
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def csv_cell(value):
    """``value`` as a CSV cell no spreadsheet runs: a ``'`` before a formula's first character; numbers kept."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not _is_number(text):
        return "'" + text
    return text


def csv_row(values):
    """:func:`csv_cell` of each value."""
    return [csv_cell(value) for value in values]


class _SafeWriter:
    def __init__(self, handle, **options):
        self._writer = csv.writer(handle, **options)

    def writerow(self, values):
        return self._writer.writerow(csv_row(values))


def csv_writer(handle, **options):
    """``csv.writer(handle, **options)`` whose ``writerow`` passes every row through :func:`csv_row`: the
    grader's only way of writing a CSV."""
    return _SafeWriter(handle, **options)


CSV_COLUMNS = ("student", "assignment", "score", "max_score", "late_penalty", "submitted_at", "due_at", "status",
               "detail")


@dataclass
class Record:
    """One row of ``grades.csv``: a submission's outcome."""

    student: str
    assignment: str
    score: float = 0.0
    max_score: float = 0.0
    late_penalty: float = 0.0
    submitted_at: str = ""  # ISO 8601, UTC, when the submission carried a time
    due_at: str = ""  # the student's due date (with any extension), ISO 8601, UTC
    statuses: list = field(default_factory=list)
    detail: str = ""  # one line for the instructor: why it was refused, what the scan found

    def __post_init__(self):
        self.statuses = sorted({Status(s) for s in self.statuses}, key=lambda s: s.value)

    @property
    def status(self):
        """The statuses as the CSV writes them: ``ok`` when nothing else applies."""
        names = [s.value for s in self.statuses if s is not Status.OK]
        return ";".join(names) or Status.OK.value

    def row(self):
        return [self.student, self.assignment, f"{self.score:g}", f"{self.max_score:g}", f"{self.late_penalty:g}",
                self.submitted_at, self.due_at, self.status, self.detail]

    def to_json(self):
        data = asdict(self)
        data["statuses"] = [s.value for s in self.statuses]
        return data

    @classmethod
    def from_json(cls, data):
        return cls(**data)


def write_csv(path, records):
    """Write ``records`` sorted by student and assignment (atomically: a reader never sees half a file)."""
    partial = path + ".partial"
    with open(partial, "w", newline="") as handle:
        writer = csv_writer(handle)
        writer.writerow(CSV_COLUMNS)
        for record in sorted(records, key=lambda r: (r.student, r.assignment)):
            writer.writerow(record.row())
    os.replace(partial, path)


def save_records(path, records, refusals):
    """Keep ``records`` and ``refusals`` (``{key: Record}``) in one JSON file, atomically.

    Student names are data here, never paths: a refused entry's name may be anything."""
    data = {kind: [r.to_json() for _, r in sorted(items.items())]
            for kind, items in (("submissions", records), ("refused_entries", refusals))}
    with open(path + ".partial", "w") as handle:
        json.dump(data, handle, indent=1)
    os.replace(path + ".partial", path)


def load_records(path):
    """``(records, refusals)``, each ``{(student or entry, assignment): Record}``, from :func:`save_records`."""
    if not os.path.exists(path):
        return {}, {}
    with open(path) as handle:
        data = json.load(handle)
    return tuple({(r.student, r.assignment): r for r in map(Record.from_json, data[kind])}
                 for kind in ("submissions", "refused_entries"))


def status_table():
    """The README's status table (Markdown), from :class:`Status` (a test keeps the README in step)."""
    rows = ["| status | meaning | score |", "|---|---|---|"]
    rows += [f"| `{s.value}` | {s.meaning} | {s.score} |" for s in Status]
    return "\n".join(rows)
