"""What one learner submits stays that learner's problem (toy course).

* Special files: a socket, a named pipe, a link (to a file or a folder), a device, in every layout the
  grader reads and every place a learner's file can be (the notebook, ``timestamp.txt``, a receipt, an
  extra file, a nested folder, an older attempt, the student's or the assignment's folder itself): that
  submission alone is ``refused`` with the reason, the others are read; generated as layout × position ×
  kind, then a real class run through the command line (exit 0, a CSV row for everyone).
* A grading cell the learner copied is graded as nbgrader's ``DeduplicateIds`` says: the last cell with
  the id is graded, the other copies are plain cells (it used to end in ``KeyError: 'grade_id'``).
* No CSV cell a spreadsheet would run: names, ids and details that begin with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return get a leading ``'``; numbers (``-1.5``) stay numbers. Through a real
  graded Moodle export and the ``export`` command, read back with the csv module.
"""

import copy
import csv
import glob
import os
import socket
import stat
import subprocess
import sys
import zipfile

import nbformat
import pytest
from nbgrader.api import Gradebook

import grading_toy_course as toy
from autograder.driver import grade_class
from autograder.intake.intake import collect, deduplicate_ids
from autograder.results import FORMULA_STARTS, Record, csv_cell, write_csv
from autograder.sandbox.sandbox import Limits

LIMITS = Limits(cell_timeout=60, wall_seconds=120, memory_gb=1)
ROOT = os.geteuid() == 0
NB = nbformat.writes(toy.solution_notebook()).encode()  # a valid notebook (intake does not grade it)


# --- special files: layout × position × kind -------------------------------------------------------------

def _socket(path):
    """A Unix socket at ``path`` (bound from its folder: socket paths are limited to 108 bytes)."""
    here = os.getcwd()
    os.chdir(os.path.dirname(path))
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(os.path.basename(path))
    finally:
        os.chdir(here)


LINKED = sorted(glob.glob(os.path.join(toy.REPOSITORY, "exercises", "*", "*.ipynb")))[0]
"""What the links to a notebook point at: a valid notebook outside the submissions (intake must not follow)."""

KINDS = {
    "socket": (_socket, "a socket"),
    "fifo": (os.mkfifo, "a named pipe"),
    "link-to-notebook": (lambda path: os.symlink(LINKED, path), "a symbolic link"),
    "link-to-folder": (lambda path: os.symlink("/etc", path), "a symbolic link"),
    "dangling-link": (lambda path: os.symlink("/nonexistent/toy.ipynb", path), "a symbolic link"),
    "char-device": (lambda path: os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5)), "a device"),  # /dev/zero
    "block-device": (lambda path: os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(7, 0)), "a device"),  # loop0
}
DEVICES = ("char-device", "block-device")

MOODLE_DIR = "Alice Smith_3001_assignsubmission_file_"
BB = "Toy_alice_attempt_2030-01-02-09-30-00"
# Each position: the victim's files, relative to the submissions folder; "SPECIAL" marks the special one.
POSITIONS = {
    "nbgrader": {
        "notebook": {"alice/toy/toy.ipynb": "SPECIAL"},
        "timestamp": {"alice/toy/toy.ipynb": NB, "alice/toy/timestamp.txt": "SPECIAL"},
        "extra-file": {"alice/toy/toy.ipynb": NB, "alice/toy/data.csv": "SPECIAL"},
        "nested": {"alice/toy/toy.ipynb": NB, "alice/toy/sub/deeper/toy.ipynb": "SPECIAL"},
        "checkpoints": {"alice/toy/toy.ipynb": NB, "alice/toy/.ipynb_checkpoints/toy-checkpoint.ipynb": "SPECIAL"},
        "student-folder": {"alice/toy/toy.ipynb": NB, "alice/notes.txt": "SPECIAL"},
        "assignment-folder": {"alice/toy": "SPECIAL"},
    },
    "moodle": {
        "notebook": {f"{MOODLE_DIR}/toy.ipynb": "SPECIAL"},
        "extra-file": {f"{MOODLE_DIR}/toy.ipynb": NB, f"{MOODLE_DIR}/data.csv": "SPECIAL"},
        "nested": {f"{MOODLE_DIR}/toy.ipynb": NB, f"{MOODLE_DIR}/sub/deeper/toy.ipynb": "SPECIAL"},
        "entry": {MOODLE_DIR: "SPECIAL"},
        "online-text": {f"{MOODLE_DIR}/toy.ipynb": NB,
                        "Alice Smith_3001_assignsubmission_onlinetext_/onlinetext.html": "SPECIAL"},
    },
    "canvas": {
        "notebook": {"alice_101_201_toy.ipynb": "SPECIAL"},
        "extra-file": {"alice_101_201_toy.ipynb": NB, "alice_101_202_data.csv": "SPECIAL"},
        "nested": {"alice_101_201_toy.ipynb": NB, "alice_101_203_files/sub/deeper/toy.ipynb": "SPECIAL"},
    },
    "blackboard": {
        "notebook": {f"{BB}_toy.ipynb": "SPECIAL"},
        "receipt": {f"{BB}_toy.ipynb": NB, f"{BB}.txt": "SPECIAL"},
        "extra-file": {f"{BB}_toy.ipynb": NB, f"{BB}_data.csv": "SPECIAL"},
        "nested": {f"{BB}_toy.ipynb": NB, f"{BB}_files/sub/deeper/toy.ipynb": "SPECIAL"},
        "older-attempt": {f"{BB}_toy.ipynb": NB, "Toy_alice_attempt_2029-12-01-10-00-00_toy.ipynb": "SPECIAL"},
    },
    "flat": {
        "notebook": {"alice.ipynb": "SPECIAL"},
        "extra-file": {"alice_v1.ipynb": NB, "alice_v2.zip": "SPECIAL"},
        "nested": {"alice_v1.ipynb": NB, "alice_work.zip/sub/deeper/toy.ipynb": "SPECIAL"},
    },
}
HEALTHY = {"nbgrader": "bob/toy/toy.ipynb", "moodle": "Bob Jones_3002_assignsubmission_file_/toy.ipynb",
           "canvas": "bob_102_204_toy.ipynb", "blackboard": "Toy_bob_attempt_2030-01-02-09-30-00_toy.ipynb",
           "flat": "bob.ipynb"}
VICTIM = {"nbgrader": "alice", "moodle": "3001", "canvas": "101", "blackboard": "alice", "flat": "alice"}
HEALTHY_ID = {"nbgrader": "bob", "moodle": "3002", "canvas": "102", "blackboard": "bob", "flat": "bob"}
CASES = [(layout, position, kind) for layout, positions in POSITIONS.items() for position in positions
         for kind in KINDS]


def _write_case(folder, layout, position, kind):
    for relative, content in {**POSITIONS[layout][position], HEALTHY[layout]: NB}.items():
        path = os.path.join(folder, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if content == "SPECIAL":
            KINDS[kind][0](path)
        else:
            with open(path, "wb") as handle:
                handle.write(content)


@pytest.mark.parametrize("layout,position,kind", CASES, ids=["-".join(case) for case in CASES])
def test_a_special_file_anywhere_refuses_only_its_submission(tmp_path, layout, position, kind):
    if kind in DEVICES and not ROOT:
        pytest.skip("device nodes need root")
    folder = str(tmp_path / "submissions")
    _write_case(folder, layout, position, kind)
    for chosen in (layout, "auto"):
        submissions, refusals = collect(folder, {"toy": ["toy"]}, chosen)
        found = {s.student: s for s in submissions}
        victim, healthy = found[VICTIM[layout]], found[HEALTHY_ID[layout]]
        assert (victim.statuses, victim.notebooks) == ({"refused"}, {}), (chosen, victim)
        assert len(victim.reasons) == 1 and KINDS[kind][1] in victim.reasons[0], victim.reasons
        assert (healthy.statuses, sorted(healthy.notebooks), healthy.reasons) == (set(), ["toy"], [])
        assert refusals == [] and len(submissions) == 2


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_special_file_as_a_student_folder_is_one_refused_row(tmp_path, kind):
    if kind in DEVICES and not ROOT:
        pytest.skip("device nodes need root")
    folder = tmp_path / "submissions"
    (folder / "bob" / "toy").mkdir(parents=True)
    (folder / "bob" / "toy" / "toy.ipynb").write_bytes(NB)
    KINDS[kind][0](str(folder / "alice"))
    submissions, refusals = collect(str(folder), {"toy": ["toy"]}, "nbgrader")
    assert [(s.student, s.statuses) for s in submissions] == [("bob", set())]
    assert [(r.entry, r.assignment) for r in refusals] == [("alice", "toy")]
    assert KINDS[kind][1] in refusals[0].reason


def _patched_zip(path, flags=None, method=None):
    """A zip of a valid notebook whose headers (local and central) claim other flags or a compression."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("toy.ipynb", NB)
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.index(signature) + offset
        if flags is not None:
            data[start:start + 2] = flags.to_bytes(2, "little")
        if method is not None:
            data[start + 2:start + 4] = method.to_bytes(2, "little")
    path.write_bytes(bytes(data))


def test_unreadable_zips_are_invalid_notebooks_not_crashes(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    _patched_zip(folder / "alice.zip", flags=1)  # encrypted: RuntimeError, "password required"
    _patched_zip(folder / "carol.zip", method=99)  # AES: NotImplementedError, "compression method"
    (folder / "bob.ipynb").write_bytes(NB)
    submissions, refusals = collect(str(folder), {"toy": ["toy"]}, "flat")
    assert {s.student: (s.statuses, sorted(s.notebooks)) for s in submissions} == {
        "alice": ({"invalid-notebook"}, []), "bob": (set(), ["toy"]), "carol": ({"invalid-notebook"}, [])}
    assert refusals == []


# --- copied grading cells ----------------------------------------------------------------------------------

def _index(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _copy_cell(nb, grade_id, offset):
    """``nb`` with a copy of the cell ``grade_id`` inserted ``offset`` cells after it (0: just before it)."""
    nb = copy.deepcopy(nb)
    index = _index(nb, grade_id)
    duplicate = copy.deepcopy(nb.cells[index])
    duplicate["id"] = "copied-" + grade_id
    nb.cells.insert(index + offset, duplicate)
    return nb


def _ids(nb):
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]


def test_deduplicate_ids_keeps_the_last_cell_as_nbgrader_does():
    nb = _copy_cell(toy.solution_notebook(), "test_add", 1)
    kept = nbformat.reads(deduplicate_ids(nbformat.writes(nb).encode()).decode(), as_version=4)
    ids = _ids(kept)
    assert ids.count("test_add") == 1 and ids.index("test_add") == _index(nb, "test_add") + 1
    assert "nbgrader" not in kept.cells[_index(nb, "test_add")].metadata  # the earlier one: a plain cell
    untouched = nbformat.writes(toy.solution_notebook()).encode()
    assert deduplicate_ids(untouched) is untouched


@pytest.fixture(scope="module")
def special_class(tmp_path_factory):
    """A class in nbgrader's layout graded through the command line: copied cells and special files."""
    base = tmp_path_factory.mktemp("special")
    course, submissions, out = str(base / "course"), base / "submitted", str(base / "out")
    exercise = toy.make_course(course)
    correct = toy._answer(exercise, toy.ADD, toy.MUL)
    notebooks = {"copiedbelow": _copy_cell(correct, "test_add", 1),  # pasted right after the check
                 "copiedabove": _copy_cell(correct, "test_add", -1)}  # pasted before `add` exists
    for student, nb in notebooks.items():
        (submissions / student / "toy").mkdir(parents=True)
        nbformat.write(nb, str(submissions / student / "toy" / "toy.ipynb"))
    specials = {"socketnotebook": ("toy.ipynb", "socket"), "sockettimestamp": ("timestamp.txt", "socket"),
                "fifocheckpoint": (".ipynb_checkpoints/toy-checkpoint.ipynb", "fifo"),
                "deviceextra": ("data.bin", "char-device" if ROOT else "dangling-link")}
    for student, (name, kind) in specials.items():
        path = submissions / student / "toy" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name != "toy.ipynb":
            nbformat.write(correct, str(submissions / student / "toy" / "toy.ipynb"))
        KINDS[kind][0](str(path))
    result = subprocess.run([sys.executable, "-m", "autograder", "grade", "--submissions", str(submissions),
                             "--out", out, "--course", course, "--quiet", "--jobs", "2", "--wall-seconds", "120",
                             "--cell-timeout", "60", "--memory-gb", "1"],
                            capture_output=True, text=True, timeout=600)
    return {"out": out, "result": result, "specials": specials}


def _rows(path, key="student"):
    with open(path, newline="") as handle:
        return {row[key]: row for row in csv.DictReader(handle)}


def test_a_class_with_special_files_is_graded_and_each_refused_alone(special_class):
    result = special_class["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    rows = _rows(os.path.join(special_class["out"], "grades.csv"))
    assert sorted(rows) == sorted(["copiedbelow", "copiedabove", *special_class["specials"]])
    for student in ("copiedbelow", "copiedabove"):  # the rest of the class: graded
        assert (rows[student]["status"], float(rows[student]["score"])) == ("ok", toy.MAX_SCORE), rows[student]
    for student, (name, kind) in special_class["specials"].items():
        row = rows[student]
        assert (row["status"], row["score"]) == ("refused", "0"), row
        assert f"{student}/toy: " in row["detail"] and KINDS[kind][1] in row["detail"], row["detail"]
        assert os.listdir(os.path.join(special_class["out"], "feedback", student, "toy")) == ["toy.html"]


def test_a_copied_check_cell_is_graded_once_as_nbgrader_says(special_class):
    rows = _rows(os.path.join(special_class["out"], "grades.csv"))
    for student in ("copiedbelow", "copiedabove"):
        assert (rows[student]["status"], float(rows[student]["score"])) == ("ok", toy.MAX_SCORE), rows[student]
        autograded = nbformat.read(os.path.join(special_class["out"], "autograded", student, "toy", "toy.ipynb"),
                                   as_version=4)
        assert _ids(autograded).count("test_add") == 1  # the last copy is the graded cell
    with Gradebook("sqlite:///" + os.path.join(special_class["out"], "gradebook.db")) as gb:
        for student in ("copiedbelow", "copiedabove"):
            grades = {g.name: g.auto_score for g in gb.find_submission_notebook("toy", "toy", student).grades}
            assert grades == {"test_add": 2, "test_mul": 3}


# --- CSV cells no spreadsheet runs --------------------------------------------------------------------------

def test_csv_cells_beginning_with_a_formula_character_are_quoted_numbers_are_not(tmp_path):
    records = [Record(c + "student", c + "assignment", -1.5, 5, 0, c + "time", c + "due", ["ok"], c + "detail")
               for c in FORMULA_STARTS]
    write_csv(str(tmp_path / "grades.csv"), records)
    with open(tmp_path / "grades.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(FORMULA_STARTS)
    for row, c in zip(sorted(rows, key=lambda r: r["student"]), sorted(FORMULA_STARTS)):
        assert [row[k] for k in ("student", "assignment", "submitted_at", "due_at", "detail")] == [
            "'" + c + field for field in ("student", "assignment", "time", "due", "detail")]
        assert row["score"] == "-1.5" and float(row["score"]) == -1.5
    for number in ("-1.5", "-1", "+2", "-3e-05", "0", "12.25"):
        assert csv_cell(number) == number
    for text in ("-inf", "-nan", "-1_0", "-", "+", "=1", "@1", "\t1", "\r1", "-1\n", "- 1"):
        assert csv_cell(text) == "'" + text


NAMES = {c: f"{c}cmd|'calc'!A0 {c}HYPERLINK(1)" for c in FORMULA_STARTS}
"""Moodle full names, one per formula character: first and last name begin with it (Moodle's ``Full
name`` and Canvas's ``Last, First`` columns)."""


@pytest.fixture(scope="module")
def injected(tmp_path_factory):
    """A Moodle export whose names, entries and details begin with formula characters, graded, then
    exported through the command line after a negative manual score."""
    base = tmp_path_factory.mktemp("injection")
    course, export, out = str(base / "course"), base / "export", str(base / "out")
    exercise = toy.make_course(course)
    export.mkdir()
    graded = export / f"{NAMES['=']}_4000_assignsubmission_file_"
    graded.mkdir()
    nbformat.write(toy._answer(exercise, toy.ADD, toy.MUL), str(graded / "toy.ipynb"))
    for number, c in enumerate(FORMULA_STARTS, start=4001):  # refused: not graded, but named and detailed
        folder = export / f"{NAMES[c]}_{number}_assignsubmission_file_"
        folder.mkdir()
        os.mkfifo(folder / "toy.ipynb")
    for c in "=+-@":
        (export / f"{c}SUM(1)_x.ipynb").write_bytes(b"{}")  # not Moodle's naming: a refused entry's row
    latin1 = os.path.join(os.fsencode(export), "Jos\xe9 Garc\xeda_4100_assignsubmission_file_".encode("latin-1"))
    os.mkdir(latin1)  # a name unzipped by an old tool: not UTF-8
    os.mkfifo(os.path.join(latin1, b"toy.ipynb"))
    records, _ = grade_class(course, str(export), out, assignments=["toy"], limits=LIMITS, progress=False)
    assert [(r.student, r.status) for r in records if r.student == "4000"] == [("4000", "ok")]
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:  # as an instructor's formgrader
        for grade in gb.find_submission_notebook("toy", "toy", "4000").grades:
            grade.manual_score = -1.5 if grade.name == "test_add" else 0
        gb.db.commit()
    result = subprocess.run([sys.executable, "-m", "autograder", "export", "--out", out], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def _all_cells(out):
    paths = [os.path.join(out, "grades.csv"), os.path.join(out, "exports", "canvas.csv"),
             os.path.join(out, "exports", "moodle-toy.csv")]
    for path in paths:
        with open(path, newline="") as handle:
            for row in csv.reader(handle):
                yield from row


def test_no_csv_cell_the_grader_writes_begins_a_formula(injected):
    cells = list(_all_cells(injected))
    assert cells
    for cell in cells:
        if cell.startswith(FORMULA_STARTS):
            try:
                float(cell)  # only numbers may begin with + or -
            except ValueError:
                pytest.fail(f"a CSV cell begins a formula: {cell!r}")


def test_a_name_that_is_not_utf8_is_kept_readable_not_a_grader_error(injected):
    assert _rows(os.path.join(injected, "grades.csv"))["4100"]["status"] == "refused"
    moodle = _rows(os.path.join(injected, "exports", "moodle-toy.csv"), key="Identifier")
    assert moodle["Participant 4100"]["Full name"] == "Jos\ufffd Garc\ufffda"


def test_names_ids_and_details_are_quoted_in_grades_canvas_and_moodle(injected):
    grades = _rows(os.path.join(injected, "grades.csv"))
    assert (grades["4000"]["score"], grades["4000"]["status"]) == ("-1.5", "ok")  # a number stays a number
    for c in "=+-@":
        entry = f"{c}SUM(1)_x.ipynb"
        assert grades["'" + entry]["status"] == "refused"  # the refused entry's name, in the student column
    for number, c in enumerate(FORMULA_STARTS, start=4001):
        row = grades[str(number)]
        assert row["status"] == "refused" and "a named pipe" in row["detail"]
        # the detail begins with the entry's name; intake writes a name's control characters as "?"
        assert row["detail"].startswith("'" + c if c in "=+-@" else "?"), row["detail"]
    moodle = _rows(os.path.join(injected, "exports", "moodle-toy.csv"), key="Identifier")
    assert moodle["Participant 4000"]["Full name"] == "'" + NAMES["="]
    assert moodle["Participant 4000"]["Grade"] == "-1.5"  # a number stays a number
    with open(os.path.join(injected, "exports", "canvas.csv"), newline="") as handle:
        canvas = {}
        for row in csv.reader(handle):  # keyed by "last, first"; 4000 (first) and 4001 share a name
            canvas.setdefault(row[0], row)
    first, _, last = NAMES["="].partition(" ")
    # a learner from Moodle's download: no Canvas user id, no SIS ids (Canvas matches the name)
    assert canvas[f"'{last}, {first}"][1:6] == ["", "", "", "", "-1.5"]
    for number, c in enumerate(FORMULA_STARTS, start=4001):
        # Moodle's Full name is "first last", stripped (a leading tab or CR goes); Canvas's is "last, first"
        full = NAMES[c].strip()
        assert moodle[f"Participant {number}"]["Full name"] == ("'" + full if full[0] in "=+-@" else full)
        first, _, last = NAMES[c].partition(" ")
        assert f"'{last}, {first}" in canvas
