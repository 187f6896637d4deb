"""Due dates and late policies, set once per assignment in the course's ``nbgrader_config.py``.

.. code-block:: python

    c.Schedule.due = {"01-architecture": "2026-12-07 23:59:00 Europe/Berlin"}
    c.Schedule.late_policy = {"01-architecture": "10% per day"}

nbgrader keeps an assignment's due date in its gradebook and compares each submission's timestamp
(``timestamp.txt``, written by ``nbgrader collect``) with it, plus any extension granted to the student;
``AssignLatePenalties`` then asks its plugin for each notebook's penalty. :class:`LatePolicy` is that
plugin (``autograde_config.py`` installs it), with nbgrader's ``LateSubmissionPlugin`` semantics per
assignment: ``none``, ``zero`` (the whole score), or ``P% per day`` / ``P% per hour`` of the notebook's
score for each started day or hour late (at most the score). An assignment without a policy gets
``c.LateSubmissionPlugin.penalty_method``. :func:`apply_due_dates` writes the dates into a gradebook:
the grading driver does it for its class gradebook and every worker's, ``python -m autograder schedule``
(``make exercises``) for the course's own.
"""

import math
import re

from nbgrader.api import Gradebook
from nbgrader.plugins import LateSubmissionPlugin
from nbgrader.utils import parse_utc
from traitlets import Dict, Unicode
from traitlets.config import Configurable

RATE = re.compile(r"^\s*(?P<percent>\d+(?:\.\d+)?)\s*%\s*per\s*(?P<unit>day|hour)\s*$")
SECONDS = {"day": 86400, "hour": 3600}


class Schedule(Configurable):
    """The course's due dates and late policies."""

    due = Dict(value_trait=Unicode(), help="{assignment: due date}, e.g. {'01-architecture': "
               "'2026-12-07 23:59:00 Europe/Berlin'} (a date without a time zone is UTC)").tag(config=True)
    late_policy = Dict(value_trait=Unicode(), help="{assignment: 'none' | 'zero' | 'P% per day' | 'P% per hour'}; "
                       "an assignment not listed gets LateSubmissionPlugin.penalty_method").tag(config=True)


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
