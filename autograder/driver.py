"""Grade a class: prepare, grade every submission in parallel, merge, write the CSV (:func:`grade_class`).

Layout of the output folder ``OUT`` (an nbgrader course folder: ``nbgrader`` commands work in it)::

    OUT/nbgrader_config.py     loads the course's config, points nbgrader at OUT
    OUT/source, OUT/release    the course's assignments (+ the course's checks), as generated
    OUT/gradebook.db           the class gradebook; only the driver's main process writes it
    OUT/submitted/<student>/<assignment>/      the submissions as intake read them
    OUT/autograded/..., OUT/feedback/<student>/<assignment>/<notebook>.html
    OUT/grades.csv, OUT/records.json           one row per submission of the class (see results.py)
    OUT/workers/<student>/<assignment>/        each submission's private course folder and logs (kept)
    OUT/grading.lock           held by the one grader at work here (see autograder/grades/lock.py)

A :class:`autograder.sandbox.runtime.GradingRun` holds what the run makes outside ``OUT``: the kernels' runtime
folders (``<temp>/agr-…/w<n>/``, one per worker), their cgroups and the sandbox user ids leased for the
run; each worker's are removed as soon as the worker ends, however it ended, and the rest when the run
ends (a run that was killed leaves them to the next run, which removes them first).

Every submission (one student's one assignment) is graded by a worker process of its own
(:mod:`autograder.grading.worker`), one per core at a time, in a copy of a pristine gradebook, so a crash, a hang
or hostile code can only change that submission's own copy. The main process then treats what the
worker left as untrusted data: it reads only ``results.json`` and the expected notebook and feedback
files, as regular files within size limits (:mod:`autograder.intake.safefiles`), and replaces the submission's
entries in the class gradebook, one at a time. A failure while handling one submission is recorded as
that submission's ``grader-error``; the CSV is written whatever happens, with every student in it.

Faults of the run itself: a second grader on ``OUT`` refuses (or waits, ``--wait``): the run holds
``OUT/grading.lock`` from intake to the CSV. Ctrl-C or SIGTERM stops the run at its next step
(:class:`StopSignals`, :meth:`ClassRun.interrupt`): running workers are killed, finished ones merged, the
rest recorded ``not-graded``, the CSV written whole, then :class:`GradingInterrupted` (exit 130). A driver
killed outright (SIGKILL) takes its workers along (``PR_SET_PDEATHSIG``, :func:`_worker_preexec`), they their
kernels (the launcher watches its parent); the lock goes with the process, and the same command run again
grades the class.

:func:`grade_class` decides what to grade (the assignments and students asked for, as intake found them)
and hands the class to a :class:`ClassRun`, which holds the run's state: its slots (one per job, each
with its sandbox uid as root), the spare workers waiting in them, the workers in flight and the records.
"""

import ctypes
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from queue import Queue

from nbgrader.api import Gradebook
from tqdm import tqdm

from .course import (GradingError, GradingInterrupted, course_assignments, load_config, nbgrader_api,
                     put_environment_bin_on_path)
from .grades.export import record_feedback_state, write_grades
from .grades.gradebook import definition, extension_seconds, store_submission
from .grades.lock import FolderLock
from .grades.lms import worksheet_times
from .grades.schedule import apply_due_dates, lms_timezone, read_extensions, read_schedule
from .grading import worker
from .grading.feedback import status_page
from .intake import intake
from .intake.layouts import lms_of
from .intake.safefiles import TooLarge, UnsafeFile, read_regular, write_new
from .results import Record, Status, load_records, save_records
from .sandbox import runtime, sandbox
from .sandbox.sandbox import Limits

MAX_RESULT_BYTES = 5 * 2**20
MAX_AUTOGRADED_BYTES = 40 * 2**20
MAX_FEEDBACK_BYTES = 40 * 2**20

OUT_CONFIG = '''"""nbgrader settings of this grading folder, written by autograder (do not edit)."""
import os
c = get_config()  # noqa: F821 (defined by nbgrader's config loader)
load_subconfig({course_config!r})  # noqa: F821 (the course's settings: sandbox, timeouts, feedback)
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(c.CourseDirectory.root, "gradebook.db")
'''


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


def prepare(course_root, out, assignments, source, dates):
    """Generate the assignments once in a pristine template; give ``out`` the same config and files.

    The class gradebook ``out/gradebook.db`` starts as a copy of the template's; on a rerun it is kept
    (it holds earlier grades) as long as the assignments' graded cells and points are unchanged.
    """
    template = os.path.join(out, "workers", ".template")
    shutil.rmtree(template, ignore_errors=True)
    os.makedirs(template)
    config = OUT_CONFIG.format(course_config=os.path.join(course_root, "nbgrader_config.py"))
    checks = os.path.join(course_root, "tests.py")
    for assignment in assignments:
        destination = os.path.join(template, "source", assignment)
        shutil.copytree(os.path.join(source, assignment), destination,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        if os.path.exists(checks):  # autograde copies it over whatever the learner submitted
            shutil.copy(checks, os.path.join(destination, "tests.py"))
    with open(os.path.join(template, "nbgrader_config.py"), "w") as handle:
        handle.write(config)
    _generate(template, assignments)
    apply_due_dates("sqlite:///" + os.path.join(template, "gradebook.db"), dates)
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
    elif not definition(template_db) <= definition(class_db):
        raise GradingError(
            f"The course's graded cells or points changed since {class_db} was made; grade into a new "
            "--out folder (or delete that gradebook to regrade everyone).")
    apply_due_dates("sqlite:///" + class_db, dates)
    return template


def _fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def worker_root(out, template, submission, extension):
    """A private course folder for one submission: config, pristine gradebook, source, its notebooks."""
    root = _fresh(os.path.join(out, "workers", submission.student, submission.assignment))
    for name in ("nbgrader_config.py", "gradebook.db"):
        shutil.copy(os.path.join(template, name), os.path.join(root, name))
    for name in ("source", "release"):
        shutil.copytree(os.path.join(template, name, submission.assignment),
                        os.path.join(root, name, submission.assignment))
    intake.write_submitted(submission, root)
    if extension:  # an extension the instructor granted in the class gradebook counts for the late penalty
        store = {"extension_seconds": extension}
        with Gradebook("sqlite:///" + os.path.join(root, "gradebook.db")) as gb:
            gb.update_or_create_student(submission.student)
        store_submission(os.path.join(root, "gradebook.db"), submission.assignment, submission.student, store)
    return root


def _worker_settings(limits, uid, sandboxed, scope=None):
    settings = {"Execute": {"timeout": limits.cell_timeout},
                "Sandbox": {"enabled": sandboxed, "uid": uid, "memory_gb": limits.memory_gb,
                            "cpu_seconds": limits.cpu_seconds, "work_mb": limits.work_mb, "tmp_mb": limits.tmp_mb,
                            "file_size_mb": limits.file_size_mb, "max_processes": limits.max_processes}}
    if scope is not None:  # the worker's kernels: runtime folders and cgroups where the driver cleans up
        settings["Sandbox"].update(runtime_folder=scope.folder, cgroup_scope=scope.cgroup, cgroups=bool(scope.cgroup))
    return settings


PR_SET_PDEATHSIG = 1
try:  # looked up here, not in the child between fork and exec
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
    _prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
except (OSError, AttributeError):  # not Linux
    _prctl = None


def _worker_preexec(limits):
    """What a worker's child does before it becomes the worker: nbgrader's own memory limit (the hard limit
    leaves room for the kernel's: lowering is all a child may do), and death with the driver.

    ``PR_SET_PDEATHSIG``: the kernel sends the worker SIGKILL when the driver's thread that started it ends,
    so a driver killed with SIGKILL (which no handler sees) takes its workers along, spares included; the
    worker's kernels follow it (their launcher watches its parent, bubblewrap has ``--die-with-parent``). The
    driver's threads outlive their workers: every worker is killed before the thread pool is shut down. A
    driver that died before the request took effect is noticed by the parent id, and the child exits."""
    soft = int(limits.worker_memory_gb * 2**30)
    hard = max(soft, int(limits.memory_gb * 2**30))
    driver = os.getpid()

    def preexec():
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
        if _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != driver:
            os._exit(1)

    return preexec


def _signal_group(process):
    """SIGKILL a worker's process group now, without waiting (safe from any thread)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill(process):
    """SIGKILL a worker's process group; its kernels die with it (bubblewrap's --die-with-parent)."""
    _signal_group(process)
    process.wait()


def read_result(root):
    """The worker's ``results.json`` as data, or None (missing, not a regular file, too large, not JSON)."""
    try:
        result = json.loads(read_regular(os.path.join(root, "results.json"), MAX_RESULT_BYTES))
    except (OSError, UnsafeFile, TooLarge, ValueError):
        return None
    return result if isinstance(result, dict) else None


def publish(out, root, submission, notebooks):
    """Copy the worker's autograded notebooks and feedback pages (only those, only regular files) into ``out``."""
    copied = set()
    for kind, extension, limit in (("autograded", ".ipynb", MAX_AUTOGRADED_BYTES),
                                   ("feedback", ".html", MAX_FEEDBACK_BYTES)):
        destination = _fresh(os.path.join(out, kind, submission.student, submission.assignment))
        for notebook in notebooks:
            source = os.path.join(root, kind, submission.student, submission.assignment, notebook + extension)
            try:
                write_new(os.path.join(destination, notebook + extension), read_regular(source, limit))
                copied.add((kind, notebook))
            except (OSError, UnsafeFile, TooLarge):
                continue
    return copied


def _statuses(result):
    statuses = set()
    for value in (result or {}).get("statuses", []):
        try:
            statuses.add(Status(value))
        except ValueError:
            statuses.add(Status.GRADER_ERROR)
    return statuses


def _reasons(result):
    return [str(reason)[:500] for reason in (result or {}).get("reasons", []) if isinstance(reason, str)][:20]


def _student_info(submission):
    first, _, last = submission.name.partition(" ")
    return {"first_name": first, "last_name": last, "lms_user_id": submission.lms_id}


def _gradebook_scores(path):
    """``({(student, assignment): (score, max score, late penalty)}, {assignment: max score})`` of a gradebook
    (the score after the late penalty, as the CSV has it)."""
    with Gradebook("sqlite:///" + path) as gb:
        maximum = {a.name: a.max_score for a in gb.assignments}
        scores = {}
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                penalty = submission.late_submission_penalty or 0
                scores[(submission.student.id, assignment.name)] = (submission.score - penalty,
                                                                     submission.max_score, penalty)
    return scores, maximum


def shard_of(student, shards):
    """The shard (1…shards) that grades ``student``: a stable hash, so every machine agrees."""
    return zlib.crc32(student.encode()) % shards + 1


def finish_submission(out, submission, notebooks, root, worker_status, detail):
    """Merge one graded (or ungraded) submission into the class gradebook and folders; its :class:`Record`."""
    result = read_result(root) if root else None
    statuses = set(submission.statuses) | _statuses(result)
    reasons = list(submission.reasons) + _reasons(result) + ([detail] if detail else [])
    if root and result is None:
        statuses.add(worker_status or Status.GRADER_ERROR)
        if not worker_status:
            reasons.append("the worker left no readable results.json")
    data = dict(result or {}, student=_student_info(submission))
    data["timestamp"] = data.get("timestamp") or submission.timestamp or None
    score, max_score, penalty = store_submission(os.path.join(out, "gradebook.db"), submission.assignment,
                                                 submission.student, data)
    copied = publish(out, root, submission, notebooks) if root and result is not None else set()
    for notebook in notebooks:
        if ("feedback", notebook) not in copied:
            folder = os.path.join(out, "feedback", submission.student, submission.assignment)
            os.makedirs(folder, exist_ok=True)
            status_page(os.path.join(folder, notebook + ".html"), f"{submission.assignment}: {notebook}",
                        statuses, reasons)
    record_feedback_state(out, submission.student, submission.assignment)
    return Record(submission.student, submission.assignment, score=score - penalty, max_score=max_score,
                  late_penalty=penalty, submitted_at=submission.timestamp, statuses=statuses or {Status.OK},
                  detail="; ".join(reasons))


def lms_times(collected, worksheet, tz, dates):
    """Submission times and extensions from a Moodle grading worksheet (:func:`autograder.grades.lms.worksheet_times`):
    each submission from Moodle's download without a time of its own gets the worksheet's ``Last modified
    (submission)``; returns ``{(student, assignment): extension seconds}`` of the worksheet's ``Extension
    granted until``."""
    try:
        times = worksheet_times(worksheet, tz)
    except (OSError, ValueError) as error:
        raise GradingError(f"--moodle-worksheet: {error}") from None
    extensions = {}
    for submission in collected:
        kind, number = lms_of(submission.lms_id)
        if kind != "moodle" or number not in times:
            continue
        submitted, extended = times[number]
        if submitted and not submission.timestamp:
            submission.timestamp = submitted.isoformat()
        due = dates.get(submission.assignment)
        if extended and due is not None:
            seconds = (extended.replace(tzinfo=None) - due).total_seconds()
            if seconds > 0:
                extensions[(submission.student, submission.assignment)] = seconds
    return extensions


def _what_to_grade(course_root, submissions, assignments, students, shard, layout, moodle_worksheet=None):
    """``(source folder, {assignment: notebooks}, due dates, submissions, refusals, extensions)`` of this run:
    the course's assignments that are asked for (or were submitted), the submissions of the students asked
    for, and the extensions of ``c.Schedule.extensions`` and the Moodle worksheet."""
    source, available = course_assignments(course_root)
    unknown = sorted(set(assignments or ()) - set(available))
    if unknown:
        raise GradingError(f"Unknown assignment(s) {unknown}; the course has {sorted(available)}.")
    wanted = {a: available[a] for a in (assignments or available)}
    try:
        config = load_config(course_root)
        dates, _ = read_schedule(config)
        configured = read_extensions(config, dates)
        tz = lms_timezone(config)
    except ValueError as error:
        raise GradingError(f"{error} (nbgrader_config.py)") from error
    collected, refusals = intake.collect(submissions, wanted, layout)
    extensions = lms_times(collected, moodle_worksheet, tz, dates) if moodle_worksheet else {}
    extensions.update(configured)
    if assignments is None:  # grade only the assignments somebody submitted
        submitted = {s.assignment for s in collected if s.notebooks or s.statuses - {Status.MISSING}}
        submitted |= {r.assignment for r in refusals}
        collected = [s for s in collected if s.assignment in submitted]
        wanted = {a: n for a, n in wanted.items() if a in submitted}
    if students:
        collected = [s for s in collected if s.student in students]
        refusals = []
    if shard:
        collected = [s for s in collected if shard_of(s.student, shard[1]) == shard[0]]
        refusals = refusals if shard[0] == 1 else []
    if not wanted:
        raise GradingError(f"No submission for any assignment in {submissions!r}.")
    return source, wanted, dates, collected, refusals, extensions


class ClassRun:
    """The state of one :func:`grade_class` run once its class is known.

    ``resources``: the run's :class:`~autograder.sandbox.runtime.GradingRun` (uids as root, runtime folders,
    cgroups). A *slot* is one of ``jobs`` places where a worker runs, with its own sandbox uid as root
    (``slot_uids``); ``slots`` holds the free ones. ``spares``: the spare worker waiting in a slot;
    ``waiting``: the submissions no worker has taken yet. ``running``: the worker processes in flight,
    killed if the driver itself is interrupted. ``records``: the class's :class:`Record` per
    ``(student, assignment)``; ``refusal_records``: the rows of refused entries; ``graded``: the keys this
    run merged.

    ``stop_requested``: an event that Ctrl-C or SIGTERM sets (:class:`StopSignals`); the grading loop then
    calls :meth:`interrupt`, which sets ``stopping``: no worker starts any more (``process_lock`` makes
    starting one and killing them all exclusive), the running ones are killed, the submissions no worker
    finished are recorded as ``not-graded``.
    """

    def __init__(self, course_root, out, wanted, limits, sandboxed, jobs, stop_requested=None):
        self.course_root, self.out, self.wanted = course_root, out, wanted
        self.limits, self.sandboxed, self.jobs = limits, sandboxed, jobs
        self.stop_requested = stop_requested or threading.Event()
        self.stopping, self.process_lock = threading.Event(), threading.Lock()
        try:  # this run's uids (as root), runtime folders and cgroups; what dead runs left is removed first
            self.resources = runtime.GradingRun(uids=jobs if sandboxed and sandbox.running_as_root() else 0,
                                                use_cgroups=sandboxed)
        except (OSError, sandbox.SandboxUnavailable) as error:
            raise GradingError(f"cannot prepare the run's sandbox resources: {error}") from error
        self.slot_uids = self.resources.uids or [None] * jobs
        self.slots = Queue()
        for slot in range(jobs):
            self.slots.put(slot)
        self.spares, self.spare_lock, self.waiting = {}, threading.Lock(), 0
        self.spare_folder = os.path.join(out, "workers", ".spares")
        self.checks_path = os.path.join(course_root, "tests.py")
        self.running = set()
        self.template, self.extensions, self.granted = None, {}, {}
        self.store = os.path.join(out, "records.json")
        self.records, self.refusal_records, self.graded = {}, {}, set()

    def lease_fd(self, slot):
        """The lock of the uid lease of ``slot`` (None without one), which its workers hold while they live."""
        uid = self.slot_uids[slot]
        return None if uid is None else self.resources.lease_fd(uid)

    def prepare(self, source, dates, waiting):
        """Start a spare worker in each slot the ``waiting`` submissions will use (they load while the
        assignments are generated), then prepare the grading folder (:func:`prepare`). If that fails, the
        spares are stopped and the run's resources released."""
        self.waiting = waiting
        try:
            for slot in range(min(self.jobs, waiting)):
                self.start_spare(slot)
            self.template = prepare(self.course_root, self.out, self.wanted, source, dates)
        except BaseException:
            self.stop_spares()
            self.resources.close()
            raise

    def load_records(self, refusals, students):
        """The class's records so far; the old refusal rows stay unless this run's entries replace them."""
        self.records, old_refusals = load_records(self.store)
        self.refusal_records = {key: r for key, r in old_refusals.items() if students or key[1] not in self.wanted}
        for refusal in refusals:
            self.refusal_records[(refusal.entry, refusal.assignment)] = Record(
                refusal.entry, refusal.assignment, 0, 0, statuses={Status.REFUSED}, detail=refusal.reason)

    def grade(self, collected, progress):
        """Grade ``collected`` in parallel and merge each as it ends; whatever happens, no worker outlives
        this, the run's resources are released and the records and ``grades.csv`` are written, with every
        submission of ``collected`` that no worker finished as ``not-graded``. Returns ``False`` when a stop
        was requested (Ctrl-C, SIGTERM), else ``True``."""
        ordered = sorted(collected, key=lambda s: (s.student, s.assignment))
        pool = ThreadPoolExecutor(self.jobs)  # one job per (student, assignment): a lone student uses every core
        try:
            self.extensions = {**extension_seconds(os.path.join(self.out, "gradebook.db")), **self.granted}
            if self.sandboxed and self.resources.backend is None:
                print(f"autograder: {self.resources.limits}", file=sys.stderr, flush=True)
            if self.stop_requested.is_set():
                self.interrupt()
            futures = {} if self.stopping.is_set() else {pool.submit(self.grade_one, s): s for s in ordered}
            pending = set(futures)
            with tqdm(total=len(futures), desc="Grading", unit="submission", disable=not progress) as bar:
                while pending:
                    done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                    if self.stop_requested.is_set() and not self.stopping.is_set():
                        self.interrupt()
                        for future in pending:
                            future.cancel()  # those no thread has taken yet
                    for future in done:
                        submission = futures[future]
                        outcome = None if future.cancelled() else _outcome(submission, future)
                        if outcome is not None and outcome[1] is not Status.NOT_GRADED:
                            self.finish(submission, outcome)
                            bar.update(1)
        finally:  # Ctrl-C or an error here: no worker outlives the driver, and the CSV is written
            if sys.exc_info()[0] is not None:
                self.interrupt()
            self.stop_spares()
            for process in list(self.running):
                _kill(process)
            pool.shutdown(cancel_futures=True)  # the pool's threads outlive the workers they started
            self.resources.close()
            self.mark_not_graded(ordered)
            save_records(self.store, self.records, self.refusal_records)
            write_grades(self.out)
        return not self.stop_requested.is_set()

    def interrupt(self):
        """Stop the run: no worker starts from now on, spares and running workers are killed (their
        kernels follow them); what finished is still merged. Idempotent."""
        with self.process_lock:
            self.stopping.set()
            for process in list(self.running):
                _signal_group(process)

    def mark_not_graded(self, submissions):
        """Record each of ``submissions`` this run did not merge as ``not-graded``: its earlier grade stays in
        the gradebook (its score in the record, its feedback in place); without one it scores 0, and the
        gradebook holds nothing for it."""
        left = [s for s in submissions if (s.student, s.assignment) not in self.graded]
        if not left:
            return
        earlier, maximum = _gradebook_scores(os.path.join(self.out, "gradebook.db"))
        why = "the grading run was stopped before this submission was graded"
        why += f" ({self.stop_requested.reason})" if getattr(self.stop_requested, "reason", None) else ""
        for submission in left:
            key = (submission.student, submission.assignment)
            score, max_score, penalty = earlier.get(key, (0, maximum.get(submission.assignment, 0), 0))
            detail = why + ("; the score is its earlier grade" if key in earlier else "") + "; rerun to grade it"
            self.records[key] = Record(submission.student, submission.assignment, score, max_score, penalty,
                                       submission.timestamp, statuses={Status.NOT_GRADED}, detail=detail)

    def grade_one(self, submission):
        """Grade one submission in a free slot: ``(worker root, worker status, detail)``; the status
        ``not-graded`` once the run is stopping."""
        if self.stopping.is_set():
            return None, Status.NOT_GRADED, ""
        if not submission.notebooks:
            return None, None, ""
        root = worker_root(self.out, self.template, submission,
                           self.extensions.get((submission.student, submission.assignment)))
        slot = self.slots.get()
        try:
            with self.spare_lock:
                spare = self.spares.pop(slot, None)
                self.waiting -= 1
            return (root, *self._grade_in(slot, root, submission, spare))
        finally:
            self.slots.put(slot)

    def _grade_in(self, slot, root, submission, spare):
        """Run the worker of ``submission`` in ``slot``; then clean up after it and start the slot's next spare."""
        scope = self.resources.scope()
        try:
            return self.run_worker(slot, root, submission, scope, spare)
        finally:  # the worker is gone, however it ended: so is what it left (kernels, cgroups, folders)
            self.resources.clean_scope(scope)
            with self.spare_lock:
                if self.waiting > 0 and not self.stopping.is_set():  # the slot's next submission finds it loaded
                    self.start_spare(slot)

    def finish(self, submission, outcome):
        """Merge one submission into the class folder and records (see :func:`finish_submission`); a
        failure here is that submission's ``grader-error``, never the end of the class run."""
        root, worker_status, detail = outcome
        try:
            submitted = os.path.join(self.out, "submitted", submission.student, submission.assignment)
            shutil.rmtree(submitted, ignore_errors=True)
            intake.write_submitted(submission, self.out)
            record = finish_submission(self.out, submission, self.wanted[submission.assignment], root,
                                       worker_status, detail)
        except Exception as error:  # noqa: BLE001 (one submission's trouble never ends the class run)
            record = Record(submission.student, submission.assignment, 0, 0, statuses={Status.GRADER_ERROR},
                            detail=f"{type(error).__name__}: {error}"[:500])
        self.records[(record.student, record.assignment)] = record
        self.graded.add((record.student, record.assignment))

    def _start_worker(self, arguments, cwd, log, lease_fd, **options):
        """A worker process (None once the run is stopping): its own session, so a Ctrl-C at the terminal
        reaches the driver alone, which decides; killed with the driver (:func:`_worker_preexec`)."""
        with self.process_lock:
            if self.stopping.is_set():
                return None
            process = subprocess.Popen([sys.executable, "-I", "-m", worker.__name__, *arguments], cwd=cwd,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                       preexec_fn=_worker_preexec(self.limits),
                                       pass_fds=() if lease_fd is None else (lease_fd,), **options)
            self.running.add(process)
        return process

    def start_spare(self, slot):
        """Start the spare of ``slot``: a worker started before its submission is known (``worker --spare``).
        It loads nbgrader and the course's checks (TensorFlow) while the driver prepares the class or finishes
        another submission, then waits for :meth:`run_worker` to send it a job. Its start-up log is
        ``workers/.spares/spare-<…>.log``."""
        os.makedirs(self.spare_folder, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.spare_folder, prefix="spare-", suffix=".log",
                                         delete=False) as log:
            spare = self._start_worker(["--spare", self.checks_path], self.spare_folder, log, self.lease_fd(slot),
                                       stdin=subprocess.PIPE)
        if spare is not None:
            self.spares[slot] = spare

    def stop_spare(self, process):
        """Let an unused spare go (it exits when stdin closes without a job); kill it if it does not, or at
        once when the run is stopping."""
        if self.stopping.is_set():
            _kill(process)
        try:
            process.stdin.close()
            process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            _kill(process)
        self.running.discard(process)

    def stop_spares(self):
        for spare in list(self.spares.values()):
            self.stop_spare(spare)

    def _hand_to_spare(self, spare, job):
        """Send ``job`` to a spare that is still alive; False if it is gone (a fresh worker is started instead)."""
        if spare is None or spare.poll() is not None:
            if spare is not None:
                self.running.discard(spare)
            return False
        try:
            spare.stdin.write((json.dumps(job) + "\n").encode())
            spare.stdin.close()
        except OSError:
            _kill(spare)
            self.running.discard(spare)
            return False
        return True

    def run_worker(self, slot, root, submission, scope, spare=None):
        """Run one worker within the wall time; returns the status it ended with (None: it finished).

        ``slot``: its uid (as root) and the lock of that uid's lease, which the worker holds as long as it
        lives (see :func:`autograder.sandbox.sandbox.lease_uid`); ``scope``: where its kernels' runtime
        folders and cgroups go; ``spare``: the slot's spare (:meth:`start_spare`), which gets the job if it
        is still alive."""
        settings = os.path.join(root, "settings.json")
        with open(settings, "w") as handle:
            json.dump(_worker_settings(self.limits, self.slot_uids[slot], self.sandboxed, scope), handle)
        job = {"root": root, "student": submission.student, "assignment": submission.assignment,
               "settings": settings, "log": os.path.join(root, "worker.log")}
        if self._hand_to_spare(spare, job):
            process = spare
        else:
            with open(job["log"], "w") as log:
                process = self._start_worker(["--root", root, "--student", submission.student, "--assignment",
                                              submission.assignment, "--settings", settings], root, log,
                                             self.lease_fd(slot))
        if process is None:
            return Status.NOT_GRADED, ""
        wall_seconds = self.limits.wall_seconds
        try:
            code = process.wait(timeout=wall_seconds)
        except subprocess.TimeoutExpired:
            _kill(process)
            return Status.WALL_TIMEOUT, f"killed after {wall_seconds} s (--wall-seconds)"
        finally:
            self.running.discard(process)
        if code != 0 and self.stopping.is_set():  # killed by interrupt(): not the submission's doing
            return Status.NOT_GRADED, ""
        if code != 0:
            return Status.GRADER_ERROR, f"the worker exited with code {code}; see workers/" \
                                        f"{submission.student}/{submission.assignment}/worker.log"
        return None, ""

    def summary(self, collected, graded, refusals, started):
        """The summary dict :func:`grade_class` returns."""
        return {
            "students": len({s.student for s in collected}),
            "submissions": len(graded),
            "refused_entries": len(refusals),
            "assignments": sorted(self.wanted),
            "sandbox": sandbox.describe() if self.sandboxed else "none (--no-sandbox)",
            "limits": self.resources.limits if self.sandboxed else "none (--no-sandbox)",
            "jobs": self.jobs,
            "seconds": round(time.monotonic() - started, 1),
            "peak_driver_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "statuses": dict(Counter(status for r in graded for status in r.status.split(";"))),
            "mean_percent": round(100 * sum(r.score / r.max_score for r in graded if r.max_score)
                                  / max(len(graded), 1), 1),
            "csv": os.path.join(self.out, "grades.csv"),
        }


def _outcome(submission, future):
    """A graded submission's ``(worker root, worker status, detail)``; a ``grader-error`` if grading it raised."""
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001
        submission.notebooks = {}
        return None, Status.GRADER_ERROR, f"{type(error).__name__}: {error}"[:500]


class StopSignals:
    """While held (a context manager, in the main thread): SIGINT (Ctrl-C) and SIGTERM only ask the run to
    stop; :meth:`is_set` says whether one came, ``reason`` which. Nothing is interrupted halfway (a merge
    into the gradebook, a file being written): the run stops at its next step (see :meth:`ClassRun.grade`).
    Outside the main thread no handler can be installed, and nothing changes."""

    def __init__(self):
        self._event, self.reason, self._previous = threading.Event(), None, {}

    def is_set(self):
        return self._event.is_set()

    def set(self, reason="stop requested"):
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def _handle(self, number, frame):
        self.set(signal.Signals(number).name)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info):
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous = {}


def grade_class(course_root, submissions, out, *, assignments=None, students=None, shard=None, layout="auto",
                jobs=None, limits=Limits(), sandboxed=True, progress=True, wait=False, moodle_worksheet=None):
    """Grade the submissions in folder ``submissions`` into ``out``; returns ``(records, summary dict)``.

    ``assignments``/``students``: grade only these (the others keep their grades); ``shard=(i, n)``:
    grade only the students of shard i of n (see :func:`shard_of`); ``moodle_worksheet``: Moodle's grading
    worksheet of the assignment, for the submission times and extensions of a Moodle download
    (:func:`lms_times`). Extensions: the class gradebook's, then the worksheet's, then ``c.Schedule.extensions``.

    One grader per grading folder: the run holds ``out``'s :class:`~autograder.grades.lock.FolderLock`
    while it prepares, grades and writes; when another grader holds it, this one refuses
    (:class:`~autograder.grades.lock.FolderBusy`, a :class:`GradingError`) or, with ``wait``, waits for it.
    Ctrl-C or SIGTERM (:class:`StopSignals`) stops the run at its next step: no further submission starts,
    running workers are killed, finished ones are merged, the others are recorded as ``not-graded``, the
    records and ``grades.csv`` (the whole class) are written, and :class:`GradingInterrupted` is raised with
    the one line to print. A stop before the lock was taken leaves ``out`` as it was.
    """
    started = time.monotonic()
    with StopSignals() as stop:
        put_environment_bin_on_path()
        course_root, out = os.path.realpath(course_root), os.path.realpath(out)
        if out == course_root or course_root.startswith(out + os.sep):
            raise GradingError(f"--out {out!r} must be a folder of its own, not the course repository or above it.")
        if sandboxed:
            try:
                sandbox.check_support()
            except sandbox.SandboxUnavailable as error:
                raise GradingError(str(error)) from error
        source, wanted, dates, collected, refusals, extensions = _what_to_grade(
            course_root, submissions, assignments, students, shard, layout, moodle_worksheet)
        os.makedirs(out, exist_ok=True)
        with FolderLock(out, wait=wait, stop=stop.is_set):
            if stop.is_set():
                raise GradingInterrupted(f"stopped by {stop.reason} before grading began; {out} was not changed")
            run = ClassRun(course_root, out, wanted, limits, sandboxed, max(1, jobs or os.cpu_count() or 1), stop)
            run.granted = extensions
            run.prepare(source, dates, waiting=sum(1 for s in collected if s.notebooks))
            run.load_records(refusals, students)
            finished = run.grade(collected, progress)
        graded = [run.records[(s.student, s.assignment)] for s in collected]
        summary = run.summary(collected, graded, refusals, started)
    if not finished:
        left = sum(1 for r in graded if Status.NOT_GRADED in r.statuses)
        raise GradingInterrupted(
            f"stopped by {stop.reason}: {len(graded) - left} of {len(graded)} submissions graded, {left} "
            f"not-graded; {summary['csv']} lists the whole class; rerun the same command to grade the rest")
    return graded, summary
