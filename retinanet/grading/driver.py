"""Grade a class: prepare, grade every student in parallel, merge, export (one call, :func:`grade_class`).

Layout of the output folder ``OUT`` (an nbgrader course folder: ``nbgrader`` commands work in it)::

    OUT/nbgrader_config.py     loads the course's config, points nbgrader at OUT
    OUT/source, OUT/release    the course's assignments (+ a pristine tests.py), as generated
    OUT/gradebook.db           the class gradebook; only the driver's main process writes it
    OUT/submitted/<student>/<assignment>/      the submissions, normalised by :mod:`.intake`
    OUT/autograded/..., OUT/feedback/<student>/<assignment>/*.html
    OUT/grades.csv             student, assignment, score, max_score, status
    OUT/workers/<student>/<assignment>/   each submission's private course folder and logs (kept)

Every submission (one student's one assignment) is graded by a worker of its own, one per core at a
time, with a copy of a pristine gradebook (the assignments only), so a crash, a hang or hostile code can
only ever change that submission's own copy; the main process then replaces the submission's entries
in the class gradebook with the worker's, one at a time. Rerunning gives the same gradebook and CSV.
"""

import csv
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning
from tqdm import tqdm
from traitlets.config.loader import PyFileConfigLoader

from . import intake
from .sandbox import Limits, isolation_support, sandbox_uid, worker_command, write_kernelspec
from .jail import PRIVATE_TEMPORARY_FOLDERS
from .worker import nbgrader_api, put_environment_bin_on_path

REFERENCE_PACKAGE = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
CSV_COLUMNS = ("student", "assignment", "score", "max_score", "status")

OUT_CONFIG = '''"""nbgrader settings of this grading folder, written by retinanet.grading (do not edit)."""
import os
c = get_config()  # noqa: F821 (defined by nbgrader's config loader)
load_subconfig({course_config!r})  # noqa: F821 (the course's settings: timeouts, feedback, ignore pattern)
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(c.CourseDirectory.root, "gradebook.db")
'''


class GradingError(RuntimeError):
    """A course or output folder the driver cannot work with."""


@dataclass
class Outcome:
    """One CSV row."""

    student: str
    assignment: str
    score: float
    max_score: float
    status: str


def course_assignments(course_root):
    """``{assignment: [notebook names]}`` from the course's nbgrader source folder."""
    config_path = os.path.join(course_root, "nbgrader_config.py")
    if not os.path.exists(config_path):
        raise GradingError(f"No nbgrader_config.py in {course_root!r}: pass --course, the course repository.")
    config = PyFileConfigLoader("nbgrader_config.py", path=course_root).load_config()
    source = os.path.join(course_root, config.CourseDirectory.get("source_directory", "source"))
    if not os.path.isdir(source):
        raise GradingError(f"The course's source folder {source!r} (nbgrader_config.py) does not exist.")
    assignments = {}
    for name in sorted(os.listdir(source)):
        folder = os.path.join(source, name)
        notebooks = sorted(n[:-6] for n in os.listdir(folder) if n.endswith(".ipynb")) if os.path.isdir(folder) else []
        if notebooks:
            assignments[name] = notebooks
    if not assignments:
        raise GradingError(f"No assignment folders with notebooks in {source!r}.")
    return source, assignments


def _generate(root, assignments):
    """``nbgrader generate_assignment`` for each assignment in course folder ``root``."""
    os.makedirs(os.path.join(root, "logs"), exist_ok=True)
    api = nbgrader_api(root)
    for assignment in assignments:
        outcome = api.generate_assignment(assignment, force=True, create=True)
        log_path = os.path.join(root, "logs", "generate.log")
        with open(log_path, "a") as log:
            log.write(f"{outcome.get('log', '')}\n{outcome.get('error', '')}\n")
        if not outcome["success"]:
            raise GradingError(f"nbgrader generate_assignment {assignment} failed in {root}; see {log_path}.")
        with Gradebook("sqlite:///" + os.path.join(root, "gradebook.db")) as gb:
            if gb.find_assignment(assignment).max_score <= 0:
                raise GradingError(f"Assignment {assignment!r} has no graded cells (0 points).")


def _definition(db_path):
    """What the grading depends on in a gradebook: assignments, notebooks, graded cells and points."""
    with Gradebook("sqlite:///" + db_path) as gb:
        return {(a.name, n.name, c.name, c.max_score)
                for a in gb.assignments for n in a.notebooks for c in n.grade_cells}


def prepare(course_root, out, assignments, source):
    """Generate the assignments once in a pristine template; give ``out`` the same config and files.

    The class gradebook ``out/gradebook.db`` starts as a copy of the template's; on a rerun it is kept
    (it holds earlier grades) as long as the assignments' graded cells and points are unchanged.
    """
    template = os.path.join(out, "workers", ".template")
    shutil.rmtree(template, ignore_errors=True)
    os.makedirs(template)
    config = OUT_CONFIG.format(course_config=os.path.join(course_root, "nbgrader_config.py"))
    for assignment in assignments:
        destination = os.path.join(template, "source", assignment)
        shutil.copytree(os.path.join(source, assignment), destination,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        checks = os.path.join(course_root, "tests.py")
        if os.path.exists(checks):  # autograde copies it over whatever the learner submitted
            shutil.copy(checks, os.path.join(destination, "tests.py"))
    with open(os.path.join(template, "nbgrader_config.py"), "w") as handle:
        handle.write(config)
    _generate(template, assignments)
    with open(os.path.join(out, "nbgrader_config.py"), "w") as handle:
        handle.write(config)
    for folder in ("source", "release"):
        for assignment in assignments:
            destination = os.path.join(out, folder, assignment)
            shutil.rmtree(destination, ignore_errors=True)
            shutil.copytree(os.path.join(template, folder, assignment), destination)
    class_db, template_db = os.path.join(out, "gradebook.db"), os.path.join(template, "gradebook.db")
    if not os.path.exists(class_db):
        shutil.copy(template_db, class_db)
    elif not _definition(template_db) <= _definition(class_db):
        raise GradingError(
            f"The course's graded cells or points changed since {class_db} was made; grade into a new "
            "--out folder (or delete that gradebook to regrade everyone)."
        )
    return template


def _worker_root(out, template, submission):
    """A private course folder for one submission: config, pristine gradebook, source, its notebooks."""
    root = os.path.join(out, "workers", submission.student, submission.assignment)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    for name in ("nbgrader_config.py", "gradebook.db"):
        shutil.copy(os.path.join(template, name), os.path.join(root, name))
    for name in ("source", "release"):
        shutil.copytree(os.path.join(template, name, submission.assignment),
                        os.path.join(root, name, submission.assignment))
    shutil.copytree(intake.write_submitted(submission, out),
                    os.path.join(root, "submitted", submission.student, submission.assignment))
    return root


def _kill_tree(process):
    """SIGKILL the worker's process group (its PID namespace, when isolated, dies with it)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _limit_worker_memory(limits):
    """nbgrader's own limit; the hard limit leaves room for the kernel's (lowering is all a child may do)."""
    soft = int(limits.worker_memory_gb * 2**30)
    hard = max(soft, int(limits.memory_gb * 2**30))
    return lambda: resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


_running = set()  # worker processes in flight, killed if the driver itself is interrupted


def run_worker(root, student, assignments, limits, isolate):
    """Run one student's worker with the wall-time limit; ``"wall-timeout"``, ``"worker-error"`` or ``""``."""
    args = ["--root", root, "--student", student, "--cell-timeout", str(limits.cell_timeout)]
    args += [item for a in assignments for item in ("--assignment", a)]
    if isolate:
        args.append("--network-namespace")
    with open(os.path.join(root, "worker.log"), "w") as log:
        process = subprocess.Popen(
            worker_command(isolate, args), cwd=root, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_limit_worker_memory(limits),
        )
        _running.add(process)
        try:
            code = process.wait(timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            _kill_tree(process)
            return "wall-timeout"
        finally:
            _running.discard(process)
    return "" if code == 0 else "worker-error"


def merge(out, worker_root, student, assignment, result):
    """Replace ``student``'s ``assignment`` in the class gradebook and folders with the worker's outcome."""
    url = "sqlite:///" + os.path.join(out, "gradebook.db")
    with Gradebook(url) as gb:  # a session of its own: removing and re-adding in one confuses SQLAlchemy
        gb.update_or_create_student(student)
        try:
            gb.remove_submission(assignment, student)
        except MissingEntry:
            pass
    with Gradebook(url) as gb, warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=SAWarning)  # nbgrader's add_submission, SQLAlchemy 2
        gb.add_submission(assignment, student)
        for notebook in gb.find_assignment(assignment).notebooks:
            stored = (result or {}).get("notebooks", {}).get(notebook.name, {})
            for grade_cell in notebook.grade_cells:
                grade = gb.find_grade(grade_cell.name, notebook.name, assignment, student)
                values = stored.get("grades", {}).get(grade_cell.name)
                grade.auto_score = values["auto_score"] if values else 0
                grade.manual_score = values["manual_score"] if values else None
                grade.needs_manual_grade = values["needs_manual_grade"] if values else False
            for comment in gb.find_submission_notebook(notebook.name, assignment, student).comments:
                comment.manual_comment = stored.get("comments", {}).get(comment.name)
        gb.db.commit()
        submission = gb.find_submission(assignment, student)
        score, max_score = submission.score, submission.max_score
    for kind in ("autograded", "feedback"):
        destination = os.path.join(out, kind, student, assignment)
        shutil.rmtree(destination, ignore_errors=True)
        origin = os.path.join(worker_root, kind, student, assignment)
        if result is not None and os.path.isdir(origin):
            shutil.copytree(origin, destination)
    return score, max_score


def write_csv(path, outcomes):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for o in sorted(outcomes, key=lambda o: (o.student, o.assignment)):
            writer.writerow([o.student, o.assignment, f"{o.score:g}", f"{o.max_score:g}", o.status])


def _hide_roots(paths):
    """Absolute, existing, de-nested folders the kernel must not see."""
    paths = sorted({os.path.realpath(p) for p in paths if p and os.path.isdir(p)})
    return [p for p in paths if not any(p != q and p.startswith(q + os.sep) for q in paths)]


def grade_class(course_root, submissions, out, *, assignments=None, layout="auto", jobs=None,
                limits=Limits(), isolate=None, progress=True):
    """Grade every submission in ``submissions``; returns ``(outcomes, summary dict)``."""
    started = time.monotonic()
    put_environment_bin_on_path()
    course_root, out = os.path.realpath(course_root), os.path.realpath(out)
    if out == course_root or course_root.startswith(out + os.sep):
        raise GradingError(f"--out {out!r} must be a folder of its own, not the course repository or above it.")
    source, available = course_assignments(course_root)
    unknown = sorted(set(assignments or ()) - set(available))
    if unknown:
        raise GradingError(f"Unknown assignment(s) {unknown}; the course has {sorted(available)}.")
    wanted = {a: available[a] for a in (assignments or available)}
    collected = intake.collect(submissions, wanted, layout)
    if assignments is None:  # grade only the assignments somebody submitted
        submitted = {s.assignment for s in collected if s.notebooks or s.statuses - {"missing"}}
        collected = [s for s in collected if s.assignment in submitted]
        wanted = {a: n for a, n in wanted.items() if a in submitted}
    support, why_not = isolation_support()
    isolate = support if isolate is None else isolate
    if isolate and not support:
        raise GradingError(f"Isolation was requested but is not available: {why_not}.")
    template = prepare(course_root, out, wanted, source)

    # The grader's home is hidden too (credentials, configs); Python itself may live there (pyenv).
    hide = _hide_roots([course_root, out, submissions, source, os.path.expanduser("~")])
    keep = [sys.base_prefix, sys.prefix, REFERENCE_PACKAGE]
    # The sandbox replaces the temporary folders with empty ones and covers the hidden roots: whatever
    # the kernel needs from under either (a clone and its .venv in /tmp, say) is mounted back read-only.
    covered = hide + [os.path.realpath(tmp) for tmp in PRIVATE_TEMPORARY_FOLDERS]
    keep = [p for p in map(os.path.realpath, keep) if any(p.startswith(h + os.sep) for h in covered)]

    def grade_submission(index, submission):
        root = _worker_root(out, template, submission)
        write_kernelspec(root, isolate=isolate, uid=sandbox_uid(index), limits=limits, hide=hide,
                         keep_read_only=keep)
        return root, run_worker(root, submission.student, [submission.assignment], limits, isolate)

    outcomes = []
    jobs = jobs or os.cpu_count() or 1
    pool = ThreadPoolExecutor(jobs)  # one job per (student, assignment): a lone student uses every core
    try:
        ordered = sorted(collected, key=lambda s: (s.student, s.assignment))
        futures = {pool.submit(grade_submission, i, s): s for i, s in enumerate(ordered)}
        bar = tqdm(total=len(futures), desc="Grading", unit="submission", disable=not progress)
        for future in as_completed(futures):
            submission = futures[future]
            root, worker_status = future.result()
            result_path = os.path.join(root, "results", submission.assignment + ".json")
            result = None
            if os.path.exists(result_path):
                with open(result_path) as handle:
                    result = json.load(handle)
            statuses = set(submission.statuses) | set(result["statuses"] if result else ())
            if result is None:
                statuses.add(worker_status or "worker-error")
            score, max_score = merge(out, root, submission.student, submission.assignment, result)
            outcomes.append(Outcome(submission.student, submission.assignment, score, max_score,
                                    ";".join(sorted(statuses)) or "ok"))
            bar.update(1)
        bar.close()
    finally:  # Ctrl-C or an error here: no worker may outlive the driver
        for process in list(_running):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        pool.shutdown(cancel_futures=True)
    write_csv(os.path.join(out, "grades.csv"), outcomes)
    summary = {
        "students": len({o.student for o in outcomes}),
        "submissions": len(outcomes),
        "assignments": sorted(wanted),
        "isolation": "namespaces, own user id, rlimits" if isolate else f"rlimits only ({why_not})",
        "jobs": jobs,
        "seconds": round(time.monotonic() - started, 1),
        "statuses": dict(Counter(status for o in outcomes for status in o.status.split(";"))),
        "mean_percent": round(100 * sum(o.score / o.max_score for o in outcomes) / max(len(outcomes), 1), 1),
        "csv": os.path.join(out, "grades.csv"),
    }
    return outcomes, summary

