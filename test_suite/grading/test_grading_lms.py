"""Moodle and Canvas files as their own code makes them: submission downloads, Moodle's grading worksheet,
Canvas's gradebook CSV; then one Moodle class from its zip to its filled worksheet (toy course).

The fixtures are built the way the LMSs build them (read, not copied):

* Moodle: moodle/moodle mod/assign/locallib.php ``download_submissions`` (up to 4.0: folder
  ``clean_filename($prefix . '_' . $subtype . '_' . $type . '_')``), mod/assign/classes/downloader.php
  (4.1 on: ``clean_filename($prefix . '_' . $subtype . '_' . $type)``), the prefix being the full name with
  ``_`` made spaces (``Participant`` under blind marking), ``_`` and ``get_uniqueid_for_user``; the
  worksheet's columns from mod/assign/gradingtable.php and its times from ``userdate``
  (``strftimedaydatetime``).
* Canvas: instructure/canvas-lms lib/content_zipper.rb (``get_filename``, ``sanitize_user_name``,
  ``sanitize_file_name``, ``add_upload_submission``), app/models/attachment.rb (``make_unique_filename``),
  lib/gradebook_importer.rb (the gradebook's header and ``Points Possible`` row).
"""

import csv
import os
import re
import subprocess
import sys
import unicodedata
import zipfile
from datetime import datetime, timezone

import nbformat
import pytest
from nbgrader.api import Gradebook

import grading_toy_course as toy
from autograder.course import GradingError, load_config
from autograder.driver import grade_class
from autograder.grades import lms
from autograder.grades.export import canvas_grades, export, refresh_feedback, stale_feedback
from autograder.grades.schedule import extension_seconds_of
from autograder.intake.intake import MAX_NOTEBOOK_BYTES, SubmissionError, collect
from autograder.results import Record
from autograder.sandbox.sandbox import Limits

LIMITS = Limits(cell_timeout=120, wall_seconds=120, memory_gb=1)
NB = nbformat.writes(toy.solution_notebook()).encode()
OTHER = b"{}"


# --- how Moodle and Canvas name things -------------------------------------------------------------------

def moodle_prefix(full_name, participant, blind=False):
    """``get_student_prefix``: the name (``Participant`` when blind), ``_`` made spaces, then ``_<id>``."""
    return ("Participant" if blind else full_name).replace("_", " ") + f"_{participant}"


def moodle_path(prefix, file_name, version):
    """Where Moodle's "Download all submissions" puts a submitted file: a folder per student from 3.1 on
    (with a trailing ``_`` up to 4.0), a flat file when "download as folders" is off."""
    if version == "flat":
        return f"{prefix}_assignsubmission_file_{file_name}"
    return f"{prefix}_assignsubmission_file{'_' if version == '4.0' else ''}/{file_name}"


def canvas_name(sortable_name, user_id, attachment_id, display_name, late=False, anonymous_id=None):
    """``ContentZipper#get_filename`` + ``add_upload_submission``."""
    if anonymous_id:
        parts = ["LATE" if late else None, f"anon_{anonymous_id}"]
    else:
        user = re.sub(r"_(\d+)_", r"\1", sortable_name).lower()  # sanitize_user_name
        parts = [user, "LATE" if late else None, str(user_id)]
    name = re.sub(r"[^\w]", "", "_".join(p for p in parts if p is not None))  # sanitize_file_name: [[:word:]]
    display = re.sub(r'[\x00/\\:*?"<>|]+', "_", display_name)  # sanitize_attachment_filename
    return f"{name}_{attachment_id}_{display}"


def make_unique_filename(name, taken):
    """``Attachment.make_unique_filename``: ``<base>-<n><ext>``."""
    if name not in taken:
        return name
    base, ext = os.path.splitext(name)
    n = 1
    while f"{base}-{n}{ext}" in taken:
        n += 1
    return f"{base}-{n}{ext}"


def _write(folder, files):
    for relative, data in files.items():
        path = os.path.join(folder, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)


# --- intake ----------------------------------------------------------------------------------------------

def test_moodle_downloads_of_every_version_are_graded_by_participant(tmp_path):
    files = {
        moodle_path(moodle_prefix("Alice Smith", 2001), "toy/toy.ipynb", "4.1"): NB,  # a folder she uploaded
        moodle_path(moodle_prefix("Bob Jones", 2002), "my answers.ipynb", "4.0"): NB,
        moodle_path(moodle_prefix("Carol_Lee", 2003), "toy.ipynb", "flat"): NB,  # "_" in a name: a space
        moodle_path(moodle_prefix("Dan Poe", 2004, blind=True), "toy.ipynb", "4.1"): NB,
        moodle_path(moodle_prefix("Eve Roe", 2005), "toy.ipynb", "4.1"): NB,
        moodle_path(moodle_prefix("Eve Roe", 2005), "README.txt", "4.1"): b"notes",
        f"{moodle_prefix('Eve Roe', 2005)}_assignsubmission_onlinetext/onlinetext.html": b"<p>hi</p>",
    }
    _write(tmp_path, files)
    for layout in ("moodle", "auto"):
        submissions, refusals = collect(str(tmp_path), {"toy": ["toy"]}, layout)
        assert refusals == []
        assert [(s.student, s.name, s.lms_id, sorted(s.notebooks), s.statuses) for s in submissions] == [
            ("2001", "Alice Smith", "moodle:2001", ["toy"], set()),
            ("2002", "Bob Jones", "moodle:2002", ["toy"], {"renamed"}),
            ("2003", "Carol Lee", "moodle:2003", ["toy"], set()),
            ("2004", "", "moodle:2004", ["toy"], set()),  # blind marking: no name
            ("2005", "Eve Roe", "moodle:2005", ["toy"], set())]


def test_canvas_downloads_are_keyed_on_the_user_id(tmp_path):
    taken = set()
    resubmitted = make_unique_filename("toy.ipynb", {"toy.ipynb"})  # the name was taken in Jane's files
    files = {
        canvas_name("Smith, John", 101, 9001, "toy.ipynb"): NB,
        canvas_name("Smith, John", 102, 9002, "toy.ipynb"): NB,  # another John Smith
        canvas_name("García, José", 103, 9003, "toy.ipynb"): NB,
        canvas_name("Doe, Jane", 104, 9004, resubmitted): NB,
        canvas_name("Roe, Rick", 105, 9005, "toy.ipynb", late=True): NB,
        canvas_name("Poe, Ann", 106, 9006, "toy.ipynb"): NB,
        canvas_name("Poe, Ann", 106, 9007, "README.txt"): b"newer than the notebook",
        canvas_name("", 0, 9008, "toy.ipynb", anonymous_id="x7Kp2"): NB,
        canvas_name("", 0, 9009, "toy.ipynb", late=True, anonymous_id="Qm4vB"): NB,
        canvas_name("O'Brien_7_, Sam", 107, 9010, "toy.ipynb"): NB,  # sanitize_user_name drops _7_'s underscores
        canvas_name("Smith_Jones, Ann", 109, 9012, "toy.ipynb"): NB,  # an underscore of the name stays
    }
    assert resubmitted == "toy-1.ipynb" and "garcíajosé_103_9003_toy.ipynb" in files
    assert "LATE_anon_Qm4vB_9009_toy.ipynb" in files and "obrien7sam_107_9010_toy.ipynb" in files
    assert "smith_jonesann_109_9012_toy.ipynb" in files and "roerick_LATE_105_9005_toy.ipynb" in files
    taken.update(files)
    _write(tmp_path, files)
    readme = tmp_path / canvas_name("Poe, Ann", 106, 9007, "README.txt")
    os.utime(readme, (2e9, 2e9))  # uploaded after the notebook
    nfd = unicodedata.normalize("NFD", canvas_name("Núñez, Íñigo", 108, 9011, "toy.ipynb"))
    (tmp_path / nfd).write_bytes(NB)  # a name unzipped on macOS: accents as combining marks
    for layout in ("canvas", "auto"):
        submissions, refusals = collect(str(tmp_path), {"toy": ["toy"]}, layout)
        assert refusals == []
        found = {s.student: s for s in submissions}
        assert sorted(found) == ["101", "102", "103", "104", "105", "106", "107", "108", "109", "anon_Qm4vB",
                                 "anon_x7Kp2"]
        for student, submission in found.items():
            assert sorted(submission.notebooks) == ["toy"], student
            assert submission.lms_id == f"canvas:{student}"
            late = student in ("105", "anon_Qm4vB")
            assert submission.statuses == ({"late"} if late else set()), (student, submission.statuses)
            assert any("LATE" in reason for reason in submission.reasons) == late


def _zip(path, members, links=()):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            archive.writestr(info, "/etc/passwd")


def test_the_lms_zip_itself_is_accepted_as_submissions(tmp_path):
    download = tmp_path / "course-toy-submissions.zip"
    alice = moodle_path(moodle_prefix("Alice Smith", 2001), "toy.ipynb", "4.1")
    _zip(download, {alice: NB, "../escaped.ipynb": NB, "/abs.ipynb": NB,
                    moodle_path(moodle_prefix("Bob Jones", 2002), "toy.ipynb", "4.1"): NB,
                    moodle_path(moodle_prefix("Carol Lee", 2003), "toy.ipynb", "4.1"): b" " * (MAX_NOTEBOOK_BYTES + 9)},
         links=[moodle_path(moodle_prefix("Bob Jones", 2002), "data.csv", "4.1")])
    submissions, refusals = collect(str(download), {"toy": ["toy"]})
    found = {s.student: s for s in submissions}
    assert (sorted(found["2001"].notebooks), found["2001"].statuses) == (["toy"], set())
    assert found["2002"].statuses == {"refused"} and "a symbolic link" in found["2002"].reasons[0]
    assert found["2003"].statuses == {"refused"} and "larger than" in found["2003"].reasons[0]  # Carol alone
    assert refusals == [] and not (tmp_path / "escaped.ipynb").exists()
    unflagged = tmp_path / "unflagged.zip"  # UTF-8 names without zip's UTF-8 flag (read as CP437 by zipfile)
    utf8 = canvas_name("García, José", 103, 9003, "toy.ipynb").encode()
    placeholder = b"x" * len(utf8)  # zipfile flags a non-ASCII name: write ASCII, then put the UTF-8 bytes in
    with zipfile.ZipFile(unflagged, "w") as archive:
        archive.writestr(placeholder.decode(), NB)
    unflagged.write_bytes(unflagged.read_bytes().replace(placeholder, utf8))
    with zipfile.ZipFile(unflagged) as archive:
        assert not archive.infolist()[0].flag_bits & 0x800
    (submission,), refusals = collect(str(unflagged), {"toy": ["toy"]})
    assert (submission.student, sorted(submission.notebooks), refusals) == ("103", ["toy"], [])
    wrapped = tmp_path / "wrapped.zip"  # the same download zipped again inside a folder
    _zip(wrapped, {f"Downloads/{alice}": NB})
    (submission,), _ = collect(str(wrapped), {"toy": ["toy"]})
    assert submission.student == "2001"
    (tmp_path / "notes.txt").write_text("not a zip")
    with pytest.raises(SubmissionError, match="is a file"):
        collect(str(tmp_path / "notes.txt"), {"toy": ["toy"]})


# --- Moodle's grading worksheet and Canvas's gradebook ----------------------------------------------------

HEADER = list(lms.WORKSHEET_COLUMNS)
BERLIN = "Europe/Berlin"


def _worksheet(path, rows, header=HEADER):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _moodle_row(number, name, status, grade, submitted, graded="-", comment=""):
    return [f"Participant {number}", name, f"{name.split()[0].lower()}@example.org", status, grade, "10.00", "Yes",
            submitted, graded, comment]


def test_moodle_times_read_as_userdate_writes_them():
    moment = datetime(2026, 12, 7, 20, 5, tzinfo=timezone.utc)
    text = lms.format_moodle_time(moment, BERLIN)
    assert text == "Monday, 7 December 2026, 9:05 PM"  # strftimedaydatetime, no leading zeros
    assert lms.parse_moodle_time(text, BERLIN) == moment
    assert lms.parse_moodle_time("-", BERLIN) is None and lms.parse_moodle_time("", BERLIN) is None
    with pytest.raises(ValueError):
        lms.parse_moodle_time("yesterday", BERLIN)


def test_a_downloaded_worksheet_is_filled_and_every_other_cell_kept(tmp_path):
    source, filled = tmp_path / "Grades-C1-Toy-42.csv", tmp_path / "out.csv"
    rows = [_moodle_row(2001, "Alice Smith", "Submitted for grading", "", "Monday, 7 December 2026, 9:05 PM"),
            _moodle_row(2002, "Bob Jones", "Submitted for grading - Graded", "7.00",
                        "Tuesday, 8 December 2026, 10:00 AM", "Wednesday, 9 December 2026, 8:00 AM", "<p>Old</p>"),
            _moodle_row(2003, "Carol Lee", "No submission", "", "-")]
    _worksheet(source, rows)
    done, missing = lms.fill_worksheet(str(source), str(filled), {
        "2001": (4.0, 5.0, ["toy, test_mul: check mul(0, x)"], "Alice Smith"), "2002": (5.0, 5.0, [], ""),
        "2999": (1, 5, [], "Zed"), "2003": (1, 5, [], "Team Blue")})  # 2003: a group's folder, another number
    assert (sorted(done), missing) == (["2001", "2002"], ["2003", "2999"])
    with open(filled, newline="", encoding="utf-8") as handle:
        out = list(csv.reader(handle))
    assert out[0] == HEADER
    assert out[1][4] == "8" and out[1][9] == "toy, test_mul: check mul(0, x)"  # 4/5 of Moodle's 10 points
    assert out[2][4] == "10" and out[2][9] == "<p>Old</p>"  # no comment of ours: Moodle's stays
    for got, kept in zip(out[1:], rows):
        assert [c for i, c in enumerate(got) if i not in (4, 9)] == [
            ("'-" if c == "-" else c) for i, c in enumerate(kept) if i not in (4, 9)]
    assert out[3] == ["Participant 2003", "Carol Lee", "carol@example.org", "No submission", "", "10.00", "Yes",
                      "'-", "'-", ""]
    _worksheet(tmp_path / "bad.csv", [], header=[c for c in HEADER if c != lms.GRADED])
    with pytest.raises(ValueError, match="Last modified"):
        lms.fill_worksheet(str(tmp_path / "bad.csv"), str(filled), {})


def test_worksheet_times_and_extensions(tmp_path):
    path = tmp_path / "w.csv"
    _worksheet(path, [
        _moodle_row(2001, "Alice Smith", "Submitted for grading", "", "Monday, 7 December 2026, 9:05 PM"),
        _moodle_row(2002, "Bob Jones", "Submitted for grading - Extension granted until: Thursday, 10 December 2026, "
                    "12:00 PM", "", "Wednesday, 9 December 2026, 11:00 AM"),
        _moodle_row(2003, "Carol Lee", "No submission", "", "-")])
    times = lms.worksheet_times(str(path), BERLIN)
    assert times["2001"] == (datetime(2026, 12, 7, 20, 5, tzinfo=timezone.utc), None)
    assert times["2002"] == (datetime(2026, 12, 9, 10, tzinfo=timezone.utc), datetime(2026, 12, 10, 11, tzinfo=timezone.utc))
    assert times["2003"] == (None, None)


def test_extensions_are_extra_time_or_a_new_due_date():
    due = datetime(2030, 1, 1)
    assert extension_seconds_of("2 days", due) == 2 * 86400
    assert extension_seconds_of("36 hours", None) == 36 * 3600
    assert extension_seconds_of("90 minutes", due) == 5400
    assert extension_seconds_of("2030-01-03 12:00:00 Europe/Berlin", due) == 2 * 86400 + 11 * 3600
    for bad, when in (("soon", due), ("2029-12-31 00:00:00 UTC", due), ("2030-01-03 00:00:00 UTC", None)):
        with pytest.raises(ValueError):
            extension_seconds_of(bad, when)


CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Toy (5531)", "Essay (5532)",
                 "Current Score", "Final Score"]


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_the_canvas_gradebook_export_is_filled_by_user_id(tmp_path, delimiter):
    source, filled = tmp_path / "2026-12-07T1200_Grades-C1.csv", tmp_path / "canvas.csv"
    rows = [CANVAS_HEADER,
            ["    Points Possible", "", "", "", "", "10.00", "20.00", "(read only)", "(read only)"],
            ["Smith, John", "101", "S-101", "jsmith", "C1 A", "", "15.00", "75", "75"],
            ["Smith, John", "102", "S-102", "jsmith2", "C1 A", "3.00", "", "", ""],
            ["Student, Test", "999", "", "", "C1 A", "", "", "", ""]]
    with open(source, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    used, missing, unplaced = lms.fill_gradebook(str(source), str(filled), {
        "toy": {"101": (5.0, 5.0), "102": (2.5, 5.0), "555": (1.0, 5.0)}, "other": {"101": (1.0, 1.0)}},
        {"toy": "5531"})
    assert (used, missing, unplaced) == ({"toy": "Toy (5531)"}, [("toy", "555")], ["other"])
    with open(filled, newline="", encoding="utf-8") as handle:
        out = list(csv.reader(handle, delimiter=delimiter))
    assert out[0] == CANVAS_HEADER and out[1][0] == "    Points Possible"  # the header and points as Canvas wrote them
    assert out[2] == ["Smith, John", "101", "S-101", "jsmith", "C1 A", "10", "15.00", "75", "75"]  # scaled to 10
    assert out[3][:7] == ["Smith, John", "102", "S-102", "jsmith2", "C1 A", "5", ""]
    assert out[4] == rows[4]
    assert lms.match_columns(CANVAS_HEADER, ["toy"]) == {"toy": 5}  # the title alone, case ignored
    with pytest.raises(ValueError, match="no column"):
        lms.match_columns(CANVAS_HEADER, ["toy"], {"toy": "Quiz"})


# --- a Moodle class, from its zip to the filled worksheet (real grading) ---------------------------------

@pytest.fixture(scope="module")
def moodle_class(tmp_path_factory):
    """``toy2`` (due 2030-01-01 00:00 UTC, 20 % per started day): Moodle 4.0 and 4.1 folders in one zip, the
    worksheet giving submission times and one extension, ``c.Schedule.extensions`` another; graded, then
    Alice's grade and a comment changed as in the formgrader, then exported with the worksheet."""
    base = tmp_path_factory.mktemp("moodle-class")
    course, out = str(base / "course"), str(base / "out")
    exercise = toy.make_course(course, assignments=("toy2",))
    with open(os.path.join(course, "nbgrader_config.py"), "a") as handle:
        handle.write('c.Schedule.extensions = {"toy2": {"2004": "2 days"}}\nc.Schedule.lms_timezone = "UTC"\n')
    answer = nbformat.writes(toy._answer(exercise, toy.ADD, toy.MUL)).encode()
    people = [(2001, "Alice Smith", "4.1", "Monday, 31 December 2029, 11:00 PM", "Submitted for grading"),
              (2002, "Bob Jones", "4.0", "Wednesday, 2 January 2030, 9:00 AM", "Submitted for grading"),
              (2003, "Carol Lee", "4.1", "Wednesday, 2 January 2030, 9:00 AM",
               "Submitted for grading - Extension granted until: Friday, 4 January 2030, 12:00 AM"),
              (2004, "Dan Poe", "4.0", "Tuesday, 1 January 2030, 10:00 AM", "Submitted for grading")]
    download = base / "C1-Toy2-7.zip"  # the toy course's notebook is toy.ipynb in every assignment
    _zip(download, {moodle_path(moodle_prefix(name, n), "toy.ipynb", version): answer
                    for n, name, version, _, _ in people})
    worksheet = base / "Grades-C1-Toy2-7.csv"
    _worksheet(worksheet, [_moodle_row(n, name, status, "", submitted) for n, name, _, submitted, status in people]
               + [_moodle_row(2099, "Zoe Quinn", "No submission", "", "-")])
    records, _ = grade_class(course, str(download), out, assignments=["toy2"], limits=LIMITS, progress=False,
                             moodle_worksheet=str(worksheet))
    graded = {r.student: r for r in records}
    assert stale_feedback(out) == []
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:  # as in the formgrader
        for grade in gb.find_submission_notebook("toy", "toy2", "2001").grades:
            grade.manual_score = 1 if grade.name == "test_mul" else None
        comment = gb.find_submission_notebook("toy", "toy2", "2001").comments[0]
        comment.manual_comment = "Look at mul again & <b>again</b>"
        cell = comment.name
        for grade in gb.find_submission_notebook("toy", "toy2", "2002").grades:  # Bob: late, now 2 points
            grade.manual_score = 0 if grade.name == "test_mul" else None
        gb.db.commit()
    stale = stale_feedback(out)
    with pytest.raises(GradingError, match=r"nbgrader generate_feedback toy2 --student 2001 --force"):
        refresh_feedback(out, regenerate=False)  # export --no-regenerate: refused, with the command
    written, notes = export(out, {"toy2": str(worksheet)}, tz="UTC", config=load_config(course))
    return {"out": out, "graded": graded, "stale": stale, "written": written, "notes": notes, "comment": cell}


def test_moodle_times_and_extensions_drive_the_late_policy(moodle_class):
    graded = moodle_class["graded"]
    assert (graded["2001"].score, graded["2001"].status) == (5, "ok")
    assert (graded["2002"].score, graded["2002"].late_penalty, graded["2002"].status) == (3, 2, "late")  # 2 days
    assert (graded["2003"].score, graded["2003"].status) == (5, "ok")  # Moodle's extension
    assert (graded["2004"].score, graded["2004"].status) == (5, "ok")  # c.Schedule.extensions
    assert graded["2002"].submitted_at == "2030-01-02T09:00:00+00:00"
    with open(os.path.join(moodle_class["out"], "grades.csv"), newline="") as handle:
        due = {row["student"]: row["due_at"] for row in csv.DictReader(handle)}
    assert due["2003"].startswith("2030-01-04T00:00:00") and due["2004"].startswith("2030-01-03T00:00:00")


def test_a_manual_grade_reaches_the_worksheet_and_the_remade_feedback(moodle_class):
    out = moodle_class["out"]
    assert moodle_class["stale"] == [("2001", "toy2"), ("2002", "toy2")]
    assert "feedback remade from the gradebook as it is now: 2001's toy2" in moodle_class["notes"]
    assert not [note for note in moodle_class["notes"] if "not in the worksheet" in note]
    with open(os.path.join(out, "exports", "moodle-toy2.csv"), newline="", encoding="utf-8") as handle:
        rows = {row["Identifier"]: row for row in csv.DictReader(handle)}
    alice = rows["Participant 2001"]
    assert alice["Grade"] == "6"  # 2 + 1 (by hand) of 5, on Moodle's 10
    assert alice["Feedback comments"] == f"toy, {moodle_class['comment']}: Look at mul again &amp; &lt;b&gt;again&lt;/b&gt;"
    # Bob: 2 by hand, less 40 % (two days late) of those 2, not of the 5 he had when autograded
    assert "late penalty recomputed from the score given by hand: 2002's toy2" in moodle_class["notes"]
    assert rows["Participant 2002"]["Grade"] == "2.4" and rows["Participant 2002"]["Feedback comments"] == "Autograder: late"
    assert rows["Participant 2099"]["Grade"] == ""  # not graded here: as Moodle wrote it
    assert alice["Last modified (grade)"] == "'-"  # Moodle's own value, its conflict check intact
    with open(os.path.join(out, "feedback", "2001", "toy2", "toy.html"), encoding="utf-8") as handle:
        page = handle.read()
    assert "3.0 / 5.0" in page and "Look at mul again" in page
    assert stale_feedback(out) == []
    with zipfile.ZipFile(os.path.join(out, "exports", "moodle-feedback-toy2.zip")) as archive:
        assert "Alice Smith_2001_assignsubmission_file_/toy.html" in archive.namelist()


def test_only_canvas_learners_go_into_the_canvas_gradebook():
    records = [Record("101", "toy", 4, 5), Record("2001", "toy", 3, 5), Record("jdoe", "toy", 2, 5),
               Record("anon_x7Kp2", "toy", 1, 5)]
    students = {"101": ("", "", "", "canvas:101"), "2001": ("Alice", "Smith", "", "moodle:2001"),
                "jdoe": ("", "", "", ""), "anon_x7Kp2": ("", "", "", "canvas:anon_x7Kp2")}
    # an anonymous learner cannot be matched: Canvas's gradebook lists user ids only (reported as missing)
    assert canvas_grades(records, students, ["toy"]) == {"toy": {"101": (4, 5), "anon_x7Kp2": (1, 5)}}


def test_export_on_the_command_line_fills_the_lms_files(moodle_class, tmp_path):
    out = moodle_class["out"]
    gradebook = tmp_path / "Grades-C1.csv"
    with open(gradebook, "w", newline="") as handle:
        csv.writer(handle).writerows([CANVAS_HEADER, ["Points Possible", "", "", "", "", "10", "20", "", ""]])
    worksheet = os.path.join(os.path.dirname(out), "Grades-C1-Toy2-7.csv")
    command = [sys.executable, "-m", "autograder", "export", "--out", out, "--moodle-worksheet", worksheet,
               "--canvas-gradebook", str(gradebook)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "note: canvas.csv: no column for toy2 (name it with --canvas-column toy2=COLUMN)" in result.stdout
    with open(os.path.join(out, "exports", "moodle-toy2.csv"), newline="", encoding="utf-8") as handle:
        assert {row["Identifier"]: row["Grade"] for row in csv.DictReader(handle)}["Participant 2001"] == "6"
    missing = subprocess.run(command[:-4] + ["--moodle-worksheet", str(tmp_path / "nowhere.csv")],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "nowhere.csv' does not exist" in missing.stderr
