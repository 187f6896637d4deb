"""Due dates, set once per assignment in the course's ``nbgrader_config.py`` (``c.Schedule.due``).

nbgrader keeps an assignment's due date in its gradebook and compares each submission's timestamp
(``timestamp.txt``, written by ``nbgrader collect``) with it; ``AssignLatePenalties`` then applies the
late policy of nbgrader's config (``c.LateSubmissionPlugin.penalty_method``). :func:`apply_due_dates`
writes the configured dates into a gradebook: the grading driver does it for its class gradebook and
every worker's.
"""

from nbgrader.api import Gradebook
from nbgrader.utils import parse_utc
from traitlets import Dict, Unicode
from traitlets.config import Configurable


class Schedule(Configurable):
    """The course's due dates."""

    due = Dict(value_trait=Unicode(), help="{assignment: due date}, e.g. {'01-architecture': "
               "'2026-12-07 23:59:00 Europe/Berlin'} (a date without a time zone is UTC)").tag(config=True)


def due_dates(config):
    """``{assignment: naive UTC datetime}`` from the config's ``Schedule.due``; ValueError on a bad date."""
    dates = {}
    for assignment, text in Schedule(config=config).due.items():
        try:
            dates[assignment] = parse_utc(text)
        except (ValueError, OverflowError) as error:
            raise ValueError(f"Schedule.due[{assignment!r}] = {text!r} is not a date") from error
    return dates


def apply_due_dates(db_path, dates):
    """Set the due date of every assignment of ``dates`` that the gradebook at ``db_path`` has."""
    with Gradebook("sqlite:///" + db_path) as gb:
        for assignment in gb.assignments:
            if assignment.name in dates:
                assignment.duedate = dates[assignment.name]
        gb.db.commit()
