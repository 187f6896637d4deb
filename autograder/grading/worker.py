"""Grade one submission in a course folder of its own (``python -I -m autograder.grading.worker``).

Started by :mod:`autograder.driver`, one process per submission (a student's assignment). It runs
``nbgrader autograde`` (each kernel in the sandbox, see :mod:`autograder.grading.execute`), reads the outcome
from its own gradebook, applies the scan of :mod:`autograder.grading.scan`, writes the statuses into the
autograded notebooks (the feedback shows them), renders the feedback (a status page where nbgrader
could not grade a notebook) and writes ``results.json``, which the driver checks and merges into the
class gradebook. Nothing here touches another student's folder.
"""

import argparse
import json
import os
import sys
import warnings

import nbformat
from nbgrader.api import Gradebook
from sqlalchemy.exc import SAWarning
from traitlets.config import Config

from ..course import nbgrader_api
from ..grades.gradebook import submission_data
from ..results import Status
from .execute import CPU_LIMIT, KERNEL_DIED, METADATA
from .feedback import status_page
from .judge import Background, load_checks
from .scan import scan_notebook

ERROR_STATUSES = {"CellTimeoutError": Status.CELL_TIMEOUT, "MemoryError": Status.MEMORY_LIMIT,
                  KERNEL_DIED: Status.KERNEL_DIED, CPU_LIMIT: Status.CPU_LIMIT}
DISK_ERRORS = ("No space left on device", "File too large", "Disk quota exceeded")
REJECTED_SIGNS = ("checkcellmetadata", "CheckCellMetadata", "Inconsistent checksums", "deduplicateids",
                  "hidden tests statement", "nested begin", "overwritecells.py")
"""Signs in nbgrader's log that it refused the notebook's grading metadata (``overwritecells.py``: a cell whose
nbgrader metadata names no cell of the assignment, or is empty)."""


def _db_url(root):
    return "sqlite:///" + os.path.join(root, "gradebook.db")


def _log(log_path, step, outcome):
    text = f"== {step}: success={outcome['success']}\n{outcome.get('log', '')}\n{outcome.get('error', '')}\n"
    with open(log_path, "a") as log:
        log.write(text)
    return text


def output_statuses(nb):
    """Statuses the executed notebook's outputs and the guard's metadata show."""
    statuses = set()
    for cell in nb.cells:
        if cell.get("metadata", {}).get(METADATA, {}).get("truncated"):
            statuses.add(Status.OUTPUT_LIMIT)
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            if output.get("ename") in ERROR_STATUSES:
                statuses.add(ERROR_STATUSES[output["ename"]])
            elif any(sign in output.get("evalue", "") for sign in DISK_ERRORS):
                statuses.add(Status.DISK_LIMIT)
    return statuses


def failure_status(log):
    """Why nbgrader wrote no autograded notebook: the submission's doing, or the grader's."""
    if "GuardError" in log:
        return Status.GRADER_ERROR
    if "UnresponsiveKernelError" in log or "became unresponsive" in log:
        return Status.CELL_TIMEOUT
    if any(sign in log for sign in REJECTED_SIGNS):
        return Status.REJECTED_NOTEBOOK
    return Status.GRADER_ERROR


def known_sources(root, assignment, notebook, gb):
    """Sources the learner did not write: the released notebook's code cells and nbgrader's stored cells."""
    released = nbformat.read(os.path.join(root, "release", assignment, notebook + ".ipynb"), as_version=4)
    sources = [cell.source for cell in released.cells if cell.cell_type == "code"]
    return sources + [cell.source for cell in gb.find_notebook(notebook, assignment).source_cells]


def edited_test_cells(root, student, assignment, notebook):
    """Names of the released read-only cells that the submitted notebook deleted or changed."""
    released = nbformat.read(os.path.join(root, "release", assignment, notebook + ".ipynb"), as_version=4)
    try:
        submitted = nbformat.read(os.path.join(root, "submitted", student, assignment, notebook + ".ipynb"), 4)
    except Exception:  # noqa: BLE001 (any parse error: intake reports unreadable notebooks)
        return []
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in submitted.cells}
    return [cell.metadata["nbgrader"]["grade_id"] for cell in released.cells
            if cell.metadata.get("nbgrader", {}).get("locked")
            and cells.get(cell.metadata["nbgrader"]["grade_id"]) != cell.source]


def _flag(gb, notebook, assignment, student, flags):
    """Flag a notebook for the instructor's review in the formgrader, with the scan's findings as a comment.

    Advice, never a score: the points are the judge's (:mod:`autograder.grading.judge`), which no code in the
    learner's kernel can change, so a finding costs nothing until an instructor decides it should.
    """
    submission = gb.find_submission_notebook(notebook, assignment, student)
    reason = "For review (the score is unchanged): " + "; ".join(f"{flag} ({why})" for flag, why in flags)
    submission.flagged = True
    for comment in submission.comments:
        comment.manual_comment = reason
    gb.db.commit()


def _zero(gb, notebook, assignment, student):
    for grade in gb.find_submission_notebook(notebook, assignment, student).grades:
        grade.auto_score, grade.needs_manual_grade = 0, False
    gb.db.commit()


def _annotate(path, statuses, reasons):
    """Record the grader's statuses and reasons in an autograded notebook (the feedback's banner)."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.setdefault(METADATA, {}).update(status=sorted(s.value for s in statuses), reasons=reasons)
    os.chmod(path, 0o644)
    nbformat.write(nb, path)


def _results(gb, assignment, student):
    submission = gb.find_submission(assignment, student)
    return dict(submission_data(gb, assignment, student), score=submission.score, max_score=submission.max_score,
                late_penalty=submission.late_submission_penalty or 0)


def grade(api, root, student, assignment):
    """Autograde ``student``'s ``assignment`` in ``root``; returns the result the driver merges."""
    log_path = os.path.join(root, "logs", f"{assignment}.log")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    submitted = os.path.join(root, "submitted", student, assignment)
    present = {name[:-6] for name in os.listdir(submitted) if name.endswith(".ipynb")}
    log = _log(log_path, "autograde", api.autograde(assignment, student, force=True, create=True)) if present else ""
    statuses, reasons, failed = set(), [], []
    with Gradebook(_db_url(root)) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment, student)
        for notebook in gb.find_assignment(assignment).notebooks:
            autograded = os.path.join(root, "autograded", student, assignment, notebook.name + ".ipynb")
            if not os.path.exists(autograded):
                _zero(gb, notebook.name, assignment, student)
                if notebook.name in present:
                    statuses.add(failure_status(log))
                    failed.append(notebook.name)
                continue
            if edited_test_cells(root, student, assignment, notebook.name):
                statuses.add(Status.RESTORED_TESTS)
            nb = nbformat.read(autograded, as_version=4)
            statuses |= output_statuses(nb)
            flags = scan_notebook(nb, known_sources(root, assignment, notebook.name, gb))
            if flags:
                statuses |= {Status(flag) for flag, _ in flags}
                reasons += [f"{notebook.name}: {flag}: {why}" for flag, why in flags]
                _flag(gb, notebook.name, assignment, student, flags)
        result = _results(gb, assignment, student)
    if result["late_penalty"]:
        statuses.add(Status.LATE)
    for name in present - set(failed):
        _annotate(os.path.join(root, "autograded", student, assignment, name + ".ipynb"), statuses, reasons)
    if present - set(failed):
        _log(log_path, "generate_feedback", api.generate_feedback(assignment, student, force=True))
    for name in failed:
        folder = os.path.join(root, "feedback", student, assignment)
        os.makedirs(folder, exist_ok=True)
        learner = nbformat.read(os.path.join(submitted, name + ".ipynb"), as_version=4)
        status_page(os.path.join(folder, name + ".html"), f"{assignment}: {name}", statuses, reasons, learner)
    result.update(student=student, assignment=assignment, statuses=sorted(s.value for s in statuses),
                  reasons=reasons)
    return result


JOB_FIELDS = ("root", "student", "assignment", "settings", "log")


def wait_for_job(checks_path):
    """A spare worker: load what every grading needs (nbgrader above; the course's checks, TensorFlow and
    all, in a thread: :func:`autograder.grading.judge.load_checks` hands the same module to the judge, waiting for
    it if it is still loading) and read the job, one JSON line
    ``{"root", "student", "assignment", "settings", "log"}``, from stdin. ``None`` (nothing to grade) when
    the driver closes stdin without a job. The driver starts spares while it prepares the class, so these
    seconds overlap its own work instead of adding to each submission's."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    Background(load_checks, checks_path)  # a job that comes sooner waits for them only when it judges
    line = sys.stdin.readline()
    if not line.strip():
        return None
    job = json.loads(line)
    if not isinstance(job, dict) or not all(isinstance(job.get(field), str) for field in JOB_FIELDS):
        raise SystemExit(f"autograder: a spare worker got a malformed job: {line[:200]!r}")
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.chdir(job["root"])
    return argparse.Namespace(**{field: job[field] for field in JOB_FIELDS})


def main(argv=None):
    """Grade the submission named by the arguments, or (``--spare``) by the job the driver sends later."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spare", metavar="CHECKS", help="start as a spare: preload the checks file CHECKS, then "
                        "read the job from stdin (see wait_for_job)")
    parser.add_argument("--root", help="the worker's own course folder")
    parser.add_argument("--student")
    parser.add_argument("--assignment")
    parser.add_argument("--settings", help="JSON: config overrides (cell timeout, sandbox limits)")
    args = parser.parse_args(argv)
    if args.spare:
        args = wait_for_job(args.spare)
        if args is None:
            return
    elif not all((args.root, args.student, args.assignment, args.settings)):
        parser.error("--root, --student, --assignment and --settings are required (or --spare)")
    warnings.filterwarnings("ignore", category=SAWarning)  # nbgrader's submissions API, SQLAlchemy 2
    with open(args.settings) as handle:
        overrides = Config(json.load(handle))
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    result = grade(nbgrader_api(args.root, overrides), args.root, args.student, args.assignment)
    with open(os.path.join(args.root, "results.json"), "w") as handle:
        json.dump(result, handle, indent=1)


if __name__ == "__main__":
    main()
    # results.json is written and every file closed: skip the interpreter's shutdown, which with the judge's
    # TensorFlow loaded takes over a second (its thread pools and atexit hooks) and decides nothing.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
