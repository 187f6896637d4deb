"""How the submissions of one student are named in the folders instructors collect.

=============  ==================================================================================
``nbgrader``   ``<student>/<assignment>/<notebook>.ipynb`` (+ ``timestamp.txt``): ``nbgrader collect``,
               a JupyterHub exchange
``moodle``     Moodle's "Download all submissions", unzipped: ``<Full Name>_<id>_assignsubmission_file_/``
               folders (or, in older versions, files ``<Full Name>_<id>_assignsubmission_file_<name>``);
               the student id is Moodle's participant id, the name is kept as the student's name
``canvas``     Canvas's "Download Submissions", unzipped: ``<login>[_LATE]_<user id>_<submission id>_<name>``;
               the student id is the login part, Canvas's user id is kept for the grade export
``blackboard`` Blackboard's "Assignment File Download", unzipped:
               ``<Assignment>_<username>_attempt_<YYYY-MM-DD-HH-MM-SS>_<name>`` (+ a ``.txt`` receipt)
``flat``       anything else flat: ``<student>.ipynb``, ``<student>_<anything>.ipynb``, or ``.zip``
=============  ==================================================================================

:func:`parse_entry` reads one top-level name as each LMS layout would; :func:`detect` picks the layout of a
folder and says loudly when it recognises none.
"""

import re
from dataclasses import dataclass

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
"""nbgrader student ids: a letter or digit first; letters, digits, '.', '_', '@', '-'; at most 64."""

MOODLE = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_(?P<plugin>file|onlinetext)_(?P<rest>.*)$")
CANVAS = re.compile(r"^(?P<login>[a-z0-9]+)(?P<late>_LATE)?_(?P<id>\d+)_(?P<submission>\d+)_(?P<rest>.+)$")
BLACKBOARD = re.compile(r"^(?P<assignment>.+)_(?P<user>[^_]+)_attempt_"
                        r"(?P<time>\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)(?:_(?P<rest>.+)|\.txt)?$")
LAYOUTS = ("nbgrader", "moodle", "canvas", "blackboard", "flat")


@dataclass
class Entry:
    """What one top-level file or folder of an LMS export says about its student."""

    student: str  # the student id the grader will use (checked against STUDENT_ID by intake)
    name: str = ""  # the student's full name, when the export gives one
    lms_id: str = ""  # the LMS's own id of the student (Canvas user id, Moodle participant id)
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
            return Entry(student=match["id"], name=match["name"], lms_id=match["id"], file_name=match["rest"],
                         ignore=match["plugin"] == "onlinetext")
    elif layout == "canvas":
        match = CANVAS.match(name)
        if match:
            return Entry(student=match["login"], lms_id=match["id"], late=bool(match["late"]),
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


def detect(names, folders, assignments):
    """The layout of a submissions folder with top-level ``names`` (``folders``: those that are folders).

    nbgrader's layout wins when some folder holds an assignment folder; otherwise the LMS layout that
    names the most entries; ``flat`` if plain notebooks or zips are there; else None (not recognised).
    """
    if any(assignments & set(children) for children in folders.values()):
        return "nbgrader"
    counts = {layout: sum(parse_entry(layout, name) is not None for name in names)
              for layout in ("moodle", "canvas", "blackboard")}
    best = max(counts, key=counts.get)
    if counts[best]:
        return best
    if any(parse_entry("flat", name) for name in names if name not in folders):
        return "flat"
    return None
