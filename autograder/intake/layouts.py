"""How the submissions of one student are named in the folders instructors collect.

=============  ==================================================================================
``nbgrader``   ``<student>/<assignment>/<notebook>.ipynb`` (+ ``timestamp.txt``): ``nbgrader collect``,
               a JupyterHub exchange
``moodle``     Moodle's "Download all submissions", unzipped. Moodle 3.1 to 4.0 name a folder per student
               ``<Full Name>_<id>_assignsubmission_file_/`` (mod/assign/locallib.php, ``download_submissions``:
               ``clean_filename($prefix . '_' . $subtype . '_' . $type . '_')``); Moodle 4.1 and later drop the
               last underscore, ``<Full Name>_<id>_assignsubmission_file/`` (mod/assign/classes/downloader.php,
               ``load_submissionplugin_filelist``: ``clean_filename($prefix . '_' . $subtype . '_' . $type)``);
               with "Download submissions in folders" off, both write flat files
               ``<Full Name>_<id>_assignsubmission_file_<file>``. ``<id>`` is Moodle's participant number for
               the assignment (``get_uniqueid_for_user``, the number in the grading worksheet's ``Participant
               <id>``), ``<Full Name>`` the name with ``_`` turned into spaces, or ``Participant`` under blind
               marking; the student id is that number, the name is kept as the student's name
``canvas``     Canvas's "Download Submissions", unzipped (lib/content_zipper.rb, ``get_filename`` and
               ``add_upload_submission``): ``<name>[_LATE]_<user id>_<attachment id>_<file>``, where ``<name>``
               is the sortable name ("García, José") lower-cased with every non-word character removed
               (``garcíajosé``; letters of any script stay), or, under anonymous grading,
               ``[LATE_]anon_<anonymous id>_<attachment id>_<file>``; a file name that was taken gets ``-1``,
               ``-2``… before its extension (app/models/attachment.rb, ``make_unique_filename``). The
               student id is Canvas's user id (two "John Smith"s are two students), ``anon_<anonymous id>``
               under anonymous grading; every file of the submission is looked at (a README beside the
               notebook is ignored); ``LATE`` makes the status ``late``
``blackboard`` Blackboard's "Assignment File Download", unzipped:
               ``<Assignment>_<username>_attempt_<YYYY-MM-DD-HH-MM-SS>_<name>`` (+ a ``.txt`` receipt)
``flat``       anything else flat: ``<student>.ipynb``, ``<student>_<anything>.ipynb``, or ``.zip``
=============  ==================================================================================

:func:`parse_entry` reads one top-level name as each LMS layout would; :func:`detect` picks the layout of a
folder and says loudly when it recognises none. The Moodle and Canvas names are as Moodle's and Canvas's own
code builds them (moodle/moodle and instructure/canvas-lms, the files named above); the tests build their
fixtures the same way (``test_suite/grading/test_grading_lms.py``).
"""

import re
from dataclasses import dataclass

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
"""nbgrader student ids: a letter or digit first; letters, digits, '.', '_', '@', '-'; at most 64."""

MOODLE = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z]+)(?:_(?P<rest>.*))?$", re.DOTALL)
"""``<name>_<id>_assignsubmission_<plugin>`` + ``_`` (a folder up to 4.0) or ``_<file>`` (flat), or nothing
(a folder from 4.1 on)."""
_SLUG = r".*?"  # Canvas keeps [[:word:]] characters, of any script (an NFD or non-UTF-8 unzip changes them)
CANVAS = re.compile(rf"^(?P<slug>{_SLUG})(?P<late>_LATE)?_(?P<id>\d+)_(?P<attachment>\d+)_(?P<rest>.+)$", re.DOTALL)
CANVAS_ANONYMOUS = re.compile(r"^(?P<late>LATE_)?anon_(?P<id>[A-Za-z0-9]+)_(?P<attachment>\d+)_(?P<rest>.+)$",
                              re.DOTALL)
BLACKBOARD = re.compile(r"^(?P<assignment>.+)_(?P<user>[^_]+)_attempt_"
                        r"(?P<time>\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)(?:_(?P<rest>.+)|\.txt)?$")
LAYOUTS = ("nbgrader", "moodle", "canvas", "blackboard", "flat")
RENAMED_COPY = re.compile(r"^(?P<stem>.+)-[1-9]\d*$")
"""A name Canvas (``make_unique_filename``) or a browser made unique: ``architecture-1`` for ``architecture``."""
MOODLE_BLIND_NAME = "Participant"  # get_string('participant', 'mod_assign') under blind marking


@dataclass
class Entry:
    """What one top-level file or folder of an LMS export says about its student."""

    student: str  # the student id the grader will use (checked against STUDENT_ID by intake)
    name: str = ""  # the student's full name, when the export gives one
    lms_id: str = ""  # the LMS's own id of the student, as ``moodle:<participant>`` or ``canvas:<user id>``
    timestamp: str = ""  # submission time from the export (ISO 8601), when it gives one
    late: bool = False  # the LMS marked the submission late
    file_name: str = ""  # the learner's own file name, without the LMS's prefix
    ignore: bool = False  # a file of the export that is not a submission (receipts, online text)


def _blackboard_time(text):
    date, clock = text[:10], text[11:].replace("-", ":")
    return f"{date}T{clock}"


def parse_entry(layout, name):
    """:class:`Entry` for top-level ``name`` of an export in ``layout``, or None if it does not fit."""
    if layout == "moodle":
        match = MOODLE.match(name)
        if match:
            full_name = "" if match["name"] == MOODLE_BLIND_NAME else match["name"]
            return Entry(student=match["id"], name=full_name, lms_id=f"moodle:{match['id']}",
                         file_name=match["rest"] or "", ignore=match["plugin"] != "file")
    elif layout == "canvas":
        anonymous = CANVAS_ANONYMOUS.match(name)
        match = anonymous or CANVAS.match(name)
        if match:
            student = f"anon_{match['id']}" if anonymous else match["id"]
            return Entry(student=student, lms_id=f"canvas:{student}", late=bool(match["late"]),
                         file_name=match["rest"])
    elif layout == "blackboard":
        match = BLACKBOARD.match(name)
        if match:
            rest = match["rest"] or ""
            return Entry(student=match["user"], timestamp=_blackboard_time(match["time"]), file_name=rest,
                         ignore=not rest.endswith((".ipynb", ".zip")))
    elif layout == "flat":
        if name.endswith((".ipynb", ".zip")):
            stem = name.rsplit(".", 1)[0]
            return Entry(student=stem.split("_", 1)[0], file_name=name)
    return None


def lms_of(lms_id):
    """``("moodle" | "canvas" | "", id)`` of a gradebook's ``lms_user_id`` (a bare id: an older grading folder)."""
    kind, _, number = (lms_id or "").partition(":")
    return (kind, number) if number and kind in ("moodle", "canvas") else ("", lms_id or "")


def detect(names, folders, assignments):
    """The layout of a submissions folder with top-level ``names`` (``folders``: those that are folders).

    An LMS layout that names most entries wins (a Moodle learner may upload a folder named as the
    assignment); then nbgrader's layout, when some folder holds an assignment folder; then the LMS layout
    that names the most entries; ``flat`` if plain notebooks or zips are there; else None (not recognised).
    """
    counts = {layout: sum(parse_entry(layout, name) is not None for name in names)
              for layout in ("moodle", "canvas", "blackboard")}
    best = max(counts, key=counts.get)
    if counts[best] * 2 > len(names):
        return best
    if any(assignments & set(children) for children in folders.values()):
        return "nbgrader"
    if counts[best]:
        return best
    if any(parse_entry("flat", name) for name in names if name not in folders):
        return "flat"
    return None
