"""Grade one submission in a course folder of its own (``python .../grading/worker.py``, run by path).

Started by :mod:`retinanet.grading.driver`, one process per submission (a student's assignment), inside the worker's network and PID
namespaces when available. For each assignment it runs ``nbgrader autograde`` (the kernel in
:mod:`retinanet.grading.jail`), reads the outcome from the worker's own gradebook, applies the scan of
:mod:`retinanet.grading.scan`, renders the feedback and writes ``results/<assignment>.json``, which the
driver merges into the class gradebook. Nothing here touches another student's folder.
"""

import argparse
import fcntl
import json
import os
import socket
import struct
import sys
import types
import warnings

if __package__ in (None, ""):  # started by path (the driver does this): skip retinanet/__init__.py, which
    # imports TensorFlow (seconds per student), by registering the two packages as bare namespaces.
    sys.path.pop(0)
    _grading = os.path.dirname(os.path.abspath(__file__))
    for _name, _path in (("retinanet", os.path.dirname(_grading)), ("retinanet.grading", _grading)):
        sys.modules.setdefault(_name, types.ModuleType(_name)).__path__ = [_path]
    __package__ = "retinanet.grading"

import nbformat  # noqa: E402
from nbgrader.api import Gradebook  # noqa: E402
from nbgrader.apps import NbGraderAPI  # noqa: E402
from nbgrader.auth import Authenticator  # noqa: E402
from nbgrader.coursedir import CourseDirectory  # noqa: E402
from sqlalchemy.exc import SAWarning  # noqa: E402
from traitlets.config import Config  # noqa: E402
from traitlets.config.loader import PyFileConfigLoader  # noqa: E402

from .sandbox import KERNEL_NAME  # noqa: E402
from .scan import scan_notebook  # noqa: E402



def bring_loopback_up():
    """A new network namespace starts with ``lo`` down; the kernel talks to nbgrader over it."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))


def _db_url(root):
    return "sqlite:///" + os.path.join(root, "gradebook.db")


def put_environment_bin_on_path():
    """nbgrader's gradebook runs the ``alembic`` command of this Python environment: make it findable when
    the environment is not activated (``make test``, ``make grade``, a cron job)."""
    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join(filter(None, [bin_dir, os.environ.get("PATH")]))


def nbgrader_api(root, cell_timeout=None):
    """nbgrader's Python API on a course folder, executing in the sandbox kernel with ``cell_timeout``."""
    put_environment_bin_on_path()
    config = PyFileConfigLoader("nbgrader_config.py", path=root).load_config()
    if cell_timeout is not None:
        overrides = Config()
        overrides.Execute.timeout = cell_timeout
        overrides.Execute.kernel_name = KERNEL_NAME
        config.merge(overrides)
    coursedir = CourseDirectory(config=config, root=root)
    return NbGraderAPI(coursedir, Authenticator(config=config), config=config)


def _log(log_path, step, outcome):
    text = f"== {step}: success={outcome['success']}\n{outcome.get('log', '')}\n{outcome.get('error', '')}\n"
    with open(log_path, "a") as log:
        log.write(text)
    return text


def _zero_notebook(gb, notebook, assignment, student):
    submission = gb.find_submission_notebook(notebook, assignment, student)
    for grade in submission.grades:
        grade.auto_score = 0
        grade.needs_manual_grade = False
    gb.db.commit()


def _flag_notebook(gb, notebook, assignment, student, flags):
    """Score a flagged notebook 0 through nbgrader's manual score, with the reason as a comment."""
    submission = gb.find_submission_notebook(notebook, assignment, student)
    reason = "Scored 0 by the autograder: " + "; ".join(f"{flag} ({why})" for flag, why in flags)
    for grade in submission.grades:
        grade.manual_score = 0
    for comment in submission.comments:
        comment.manual_comment = reason
    gb.db.commit()


def _output_statuses(nb):
    statuses = set()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            if output.get("ename") == "CellTimeoutError":
                statuses.add("cell-timeout")
            elif output.get("ename") == "MemoryError":
                statuses.add("memory-limit")
    return statuses


def _known_sources(root, assignment, notebook, gb):
    """Sources the learner did not write: the released notebook's code cells and nbgrader's stored cells."""
    released = nbformat.read(os.path.join(root, "release", assignment, notebook + ".ipynb"), as_version=4)
    sources = [cell.source for cell in released.cells if cell.cell_type == "code"]
    sources += [cell.source for cell in gb.find_notebook(notebook, assignment).source_cells]
    return sources


def _edited_test_cells(root, student, assignment):
    """Names of the released read-only cells that a submitted notebook deleted or changed.

    nbgrader puts them back from the gradebook before running (``OverwriteCells``); this only reports it.
    """
    edited = []
    for name in sorted(os.listdir(os.path.join(root, "release", assignment))):
        submitted = os.path.join(root, "submitted", student, assignment, name)
        if not name.endswith(".ipynb") or not os.path.exists(submitted):
            continue
        released = nbformat.read(os.path.join(root, "release", assignment, name), as_version=4)
        try:
            cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source
                     for c in nbformat.read(submitted, as_version=4).cells}
        except Exception:  # an unreadable notebook is reported by intake, not here
            continue
        for cell in released.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("locked") and cells.get(meta.get("grade_id")) != cell.source:
                edited.append(meta["grade_id"])
    return edited


def _failure_status(log):
    if "DeadKernelError" in log or "Kernel died" in log or "kernel died" in log:
        return "kernel-died"
    if "CellTimeoutError" in log or "Timeout waiting for execute reply" in log:
        return "cell-timeout"  # the interrupt did not stop the cell, so nbgrader gave up on the notebook
    if "UnresponsiveKernelError" in log or "became unresponsive" in log:
        return "kernel-unresponsive"
    if "MemoryError" in log:
        return "memory-limit"
    return "autograde-error"


def _results(gb, assignment, student):
    submission = gb.find_submission(assignment, student)
    notebooks = {}
    for notebook in submission.notebooks:
        notebooks[notebook.name] = {
            "grades": {
                grade.name: {
                    "auto_score": grade.auto_score,
                    "manual_score": grade.manual_score,
                    "needs_manual_grade": grade.needs_manual_grade,
                }
                for grade in notebook.grades
            },
            "comments": {comment.name: comment.manual_comment for comment in notebook.comments},
        }
    return {"score": submission.score, "max_score": submission.max_score, "notebooks": notebooks}


def grade_assignment(api, root, student, assignment):
    """Autograde one assignment of ``student`` in ``root``; returns the result written to JSON."""
    log_path = os.path.join(root, "logs", f"{assignment}.log")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    submitted = os.path.join(root, "submitted", student, assignment)
    present = os.path.isdir(submitted) and any(name.endswith(".ipynb") for name in os.listdir(submitted))
    statuses = set()
    log = ""
    if present:
        log = _log(log_path, "autograde", api.autograde(assignment, student, force=True, create=True))
        if _edited_test_cells(root, student, assignment):
            statuses.add("restored-tests")
    with Gradebook(_db_url(root)) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment, student)
        for notebook in gb.find_assignment(assignment).notebooks:
            autograded = os.path.join(root, "autograded", student, assignment, notebook.name + ".ipynb")
            if not os.path.exists(autograded):
                _zero_notebook(gb, notebook.name, assignment, student)
                if os.path.exists(os.path.join(submitted, notebook.name + ".ipynb")):
                    statuses.add(_failure_status(log))
                continue
            nb = nbformat.read(autograded, as_version=4)
            statuses |= _output_statuses(nb)
            flags = scan_notebook(nb, _known_sources(root, assignment, notebook.name, gb))
            if flags:
                statuses |= {flag for flag, _ in flags}
                _flag_notebook(gb, notebook.name, assignment, student, flags)
        result = _results(gb, assignment, student)
    if os.path.isdir(os.path.join(root, "autograded", student, assignment)):
        _log(log_path, "generate_feedback", api.generate_feedback(assignment, student, force=True))
    result.update(student=student, assignment=assignment, statuses=sorted(statuses))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the worker's own course folder")
    parser.add_argument("--student", required=True)
    parser.add_argument("--assignment", action="append", required=True)
    parser.add_argument("--cell-timeout", type=int, required=True)
    parser.add_argument("--network-namespace", action="store_true", help="bring up lo (run under unshare --net)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=SAWarning)  # nbgrader's submissions API, SQLAlchemy 2
    if args.network_namespace:
        bring_loopback_up()
    os.environ.update(
        JUPYTER_PATH=os.path.join(args.root, "jupyter"),
        JUPYTER_RUNTIME_DIR=os.path.join(args.root, "runtime"),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    api = nbgrader_api(args.root, args.cell_timeout)
    results_dir = os.path.join(args.root, "results")
    os.makedirs(results_dir, exist_ok=True)
    for assignment in args.assignment:
        result = grade_assignment(api, args.root, args.student, assignment)
        with open(os.path.join(results_dir, f"{assignment}.json"), "w") as handle:
            json.dump(result, handle, indent=1)


if __name__ == "__main__":
    main()
