"""Due dates and late policies, set once per assignment in the course's ``nbgrader_config.py``.

.. code-block:: python

    c.Schedule.due = {"01-architecture": "2026-12-07 23:59:00 Europe/Berlin"}
    c.Schedule.late_policy = {"01-architecture": "10% per day"}
    c.Schedule.extensions = {"01-architecture": {"jdoe": "2 days", "2001": "2026-12-10 12:00:00 Europe/Berlin"}}
    c.Schedule.lms_timezone = "Europe/Berlin"  # the time zone of the times in Moodle's grading worksheet

nbgrader keeps an assignment's due date in its gradebook and compares each submission's timestamp
(``timestamp.txt``, written by ``nbgrader collect``) with it, plus any extension granted to the student;
``AssignLatePenalties`` then asks its plugin for each notebook's penalty. :class:`LatePolicy` is that
plugin (``autograde_config.py`` installs it), with nbgrader's ``LateSubmissionPlugin`` semantics per
assignment: ``none``, ``zero`` (the whole score), or ``P% per day`` / ``P% per hour`` of the notebook's
score for each started day or hour late (at most the score). An assignment without a policy gets
``c.LateSubmissionPlugin.penalty_method``. :func:`apply_due_dates` writes the dates into a gradebook:
the grading driver does it for its class gradebook and every worker's, ``python -m autograder schedule``
(``make exercises``) for the course's own.

An extension (``c.Schedule.extensions``, per assignment and student id, whatever layout the submissions
came in: the nbgrader student, Moodle's participant number, Canvas's user id) is extra time (``"2 days"``,
``"36 hours"``, ``"90 minutes"``) or a new due date; :func:`read_extensions` turns it into nbgrader's
extension (seconds after the due date), which the driver writes into each submission's gradebook entry, so
the late penalty and ``due_at`` count it. An extension Moodle granted comes with its grading worksheet
(``grade --moodle-worksheet``); one in ``c.Schedule.extensions`` wins over it.
"""

import math
import re

from nbgrader.api import Gradebook
from nbgrader.plugins import LateSubmissionPlugin
from nbgrader.utils import parse_utc
from traitlets import Dict, Unicode
from traitlets.config import Configurable

from .lms import zone

EXTRA_TIME = re.compile(r"^\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>day|hour|minute)s?\s*$")
UNIT_SECONDS = {"day": 86400, "hour": 3600, "minute": 60}
RATE = re.compile(r"^\s*(?P<percent>\d+(?:\.\d+)?)\s*%\s*per\s*(?P<unit>day|hour)\s*$")
SECONDS = {"day": 86400, "hour": 3600}


class Schedule(Configurable):
    """The course's due dates and late policies."""

    due = Dict(value_trait=Unicode(), help="{assignment: due date}, e.g. {'01-architecture': "
               "'2026-12-07 23:59:00 Europe/Berlin'} (a date without a time zone is UTC)").tag(config=True)
    late_policy = Dict(value_trait=Unicode(), help="{assignment: 'none' | 'zero' | 'P% per day' | 'P% per hour'}; "
                       "an assignment not listed gets LateSubmissionPlugin.penalty_method").tag(config=True)
    extensions = Dict(value_trait=Dict(value_trait=Unicode()), help="{assignment: {student id: extra time "
                      "('2 days', '36 hours', '90 minutes') or a new due date}}").tag(config=True)
    lms_timezone = Unicode("UTC", help="the IANA time zone of the times in a Moodle grading worksheet (your "
                           "Moodle profile's time zone); also the zone of the times the grader writes into "
                           "one").tag(config=True)


def check_policy(text):
    """Raise ValueError unless ``text`` is a late policy :class:`LatePolicy` understands."""
    if text not in ("none", "zero") and not RATE.match(text):
        raise ValueError(f"late policy {text!r} is not 'none', 'zero', 'P% per day' or 'P% per hour'")


def penalty(policy, score, seconds_late):
    """The penalty of ``policy`` for a notebook that scored ``score`` and came ``seconds_late`` late."""
    if seconds_late <= 0 or policy == "none":
        return 0.0
    if policy == "zero":
        return float(score)
    rate = RATE.match(policy)
    started = math.ceil(seconds_late / SECONDS[rate["unit"]])
    return min(float(score), float(score) * float(rate["percent"]) / 100 * started)


class LatePolicy(LateSubmissionPlugin):
    """nbgrader's late-submission plugin, with a policy per assignment from ``c.Schedule.late_policy``."""

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        assignment = getattr(self.parent, "assignment_id", None)
        policy = Schedule(config=self.config).late_policy.get(assignment, self.penalty_method)
        check_policy(policy)
        return penalty(policy, score, total_seconds_late)


def read_schedule(config):
    """``({assignment: naive UTC due date}, {assignment: policy})`` from a config; ValueError if malformed."""
    schedule = Schedule(config=config)
    dates = {}
    for assignment, text in schedule.due.items():
        try:
            dates[assignment] = parse_utc(text)
        except (ValueError, OverflowError) as error:
            raise ValueError(f"Schedule.due[{assignment!r}] = {text!r} is not a date") from error
    for assignment, policy in schedule.late_policy.items():
        try:
            check_policy(policy)
        except ValueError as error:
            raise ValueError(f"Schedule.late_policy[{assignment!r}]: {error}") from None
    return dates, dict(schedule.late_policy)


def apply_due_dates(db_url, dates):
    """Set the due date of every assignment of ``dates`` that the gradebook at ``db_url`` has."""
    with Gradebook(db_url) as gb:
        for assignment in gb.assignments:
            if assignment.name in dates:
                assignment.duedate = dates[assignment.name]
        gb.db.commit()


def extension_seconds_of(text, due):
    """The seconds an extension ``text`` (extra time, or a new due date) adds to naive UTC ``due``;
    ValueError for text that is neither, or a new date before the due date (or without one)."""
    extra = EXTRA_TIME.match(text)
    if extra:
        return float(extra["amount"]) * UNIT_SECONDS[extra["unit"]]
    try:
        moment = parse_utc(text)
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is neither extra time ('2 days', '36 hours', '90 minutes') nor a date") from None
    if due is None:
        raise ValueError(f"{text!r} is a new due date, but the assignment has none in c.Schedule.due")
    seconds = (moment - due).total_seconds()
    if seconds < 0:
        raise ValueError(f"{text!r} is before the due date {due.isoformat()} UTC")
    return seconds


def read_extensions(config, dates):
    """``{(student, assignment): seconds}`` of ``c.Schedule.extensions`` (``dates``: :func:`read_schedule`'s);
    ValueError if one is malformed."""
    extensions = {}
    for assignment, students in Schedule(config=config).extensions.items():
        for student, text in students.items():
            try:
                extensions[(student, assignment)] = extension_seconds_of(text, dates.get(assignment))
            except ValueError as error:
                raise ValueError(f"Schedule.extensions[{assignment!r}][{student!r}]: {error}") from None
    return extensions


def lms_timezone(config):
    """The time zone name of ``c.Schedule.lms_timezone``; ValueError for an unknown one."""
    name = Schedule(config=config).lms_timezone
    try:
        zone(name)
    except ValueError as error:
        raise ValueError(f"Schedule.lms_timezone: {error}") from None
    return name


def reapply_late_penalties(db_url, config):
    """Recompute the late penalty of every late submission in the gradebook at ``db_url`` from its current
    scores: nbgrader computes a penalty once, at autograding, from the score then; a score changed by hand
    in the formgrader would keep the old penalty (``zero`` would no longer zero it). Returns the
    ``(student, assignment)`` whose penalty changed."""
    _, policies = read_schedule(config)
    default = LateSubmissionPlugin(config=config).penalty_method
    changed = []
    with Gradebook(db_url) as gb:
        for assignment in gb.assignments:
            policy = policies.get(assignment.name, default)
            check_policy(policy)
            for submission in assignment.submissions:
                seconds = submission.total_seconds_late or 0
                if seconds <= 0:
                    continue
                before = submission.late_submission_penalty or 0
                for notebook in submission.notebooks:
                    notebook.late_submission_penalty = penalty(policy, notebook.score, seconds)
                gb.db.commit()
                if abs((submission.late_submission_penalty or 0) - before) > 1e-9:
                    changed.append((submission.student.id, assignment.name))
    return changed
