"""Grade a class: prepare, grade every submission in parallel, merge, write the CSV (:func:`grade_class`).

Layout of the output folder ``OUT`` (an nbgrader course folder: ``nbgrader`` commands work in it)::

    OUT/nbgrader_config.py     loads the course's config, points nbgrader at OUT
    OUT/source, OUT/release    the course's assignments (+ the course's checks), as generated
    OUT/gradebook.db           the class gradebook; only the driver's main process writes it
    OUT/submitted/<student>/<assignment>/      the submissions as intake read them
    OUT/autograded/..., OUT/feedback/<student>/<assignment>/<notebook>.html
    OUT/grades.csv, OUT/records.json           one row per submission of the class (see results.py)
    OUT/workers/<student>/<assignment>/        each submission's private course folder and logs (kept)

A :class:`autograder.runtime.GradingRun` holds what the run makes outside ``OUT``: the kernels' runtime
folders (``<temp>/agr-…/w<n>/``, one per worker), their cgroups and the sandbox user ids leased for the
run; each worker's are removed as soon as the worker ends, however it ended, and the rest when the run
ends (a run that was killed leaves them to the next run, which removes them first).

Every submission (one student's one assignment) is graded by a worker process of its own
(:mod:`autograder.worker`), one per core at a time, in a copy of a pristine gradebook, so a crash, a hang
or hostile code can only change that submission's own copy. The main process then treats what the
worker left as untrusted data: it reads only ``results.json`` and the expected notebook and feedback
files, as regular files within size limits (:mod:`autograder.safefiles`), and replaces the submission's
entries in the class gradebook, one at a time. A failure while handling one submission is recorded as
that submission's ``grader-error``; the CSV is written whatever happens, with every student in it.
"""

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
from concurrent.futures import ThreadPoolExecutor, as_completed
from queue import Queue

from nbgrader.api import Gradebook
from tqdm import tqdm

from . import intake, runtime, sandbox
from .course import GradingError, course_assignments, load_config, nbgrader_api, put_environment_bin_on_path
from .feedback import status_page
from .gradebook import extension_seconds, store_submission
from .export import write_grades
from .results import Record, Status, load_records, save_records
from .safefiles import TooLarge, UnsafeFile, read_regular, write_new
from .sandbox import Limits
from .schedule import apply_due_dates, read_schedule

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


def definition(db_path):
    """What the grading depends on in a gradebook: assignments, notebooks, graded cells and points."""
    with Gradebook("sqlite:///" + db_path) as gb:
        return {(a.name, n.name, c.name, c.max_score)
                for a in gb.assignments for n in a.notebooks for c in n.grade_cells}


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


def _limit_worker_memory(limits):
    """nbgrader's own limit; the hard limit leaves room for the kernel's (lowering is all a child may do)."""
    soft = int(limits.worker_memory_gb * 2**30)
    hard = max(soft, int(limits.memory_gb * 2**30))
    return lambda: resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


_running = set()  # worker processes in flight, killed if the driver itself is interrupted


def _start_worker(arguments, cwd, log, limits, lease_fd, **options):
    process = subprocess.Popen([sys.executable, "-I", "-m", "autograder.worker", *arguments], cwd=cwd, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True,
                               preexec_fn=_limit_worker_memory(limits),
                               pass_fds=() if lease_fd is None else (lease_fd,), **options)
    _running.add(process)
    return process


def start_spare(folder, checks_path, limits, lease_fd=None):
    """A worker started before its submission is known (``autograder.worker --spare``): it loads nbgrader
    and the course's checks (TensorFlow) while the driver prepares the class or finishes another
    submission, then waits for :func:`run_worker` to send it a job. Its start-up log is ``folder``/spare-<pid>.log."""
    os.makedirs(folder, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=folder, prefix="spare-", suffix=".log", delete=False) as log:
        return _start_worker(["--spare", checks_path], folder, log, limits, lease_fd, stdin=subprocess.PIPE)


def stop_spare(process):
    """Let an unused spare go (it exits when stdin closes without a job); kill it if it does not."""
    try:
        process.stdin.close()
        process.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        _kill(process)
    _running.discard(process)


def _hand_to_spare(spare, job):
    """Send ``job`` to a spare that is still alive; False if it is gone (a fresh worker is started instead)."""
    if spare is None or spare.poll() is not None:
        if spare is not None:
            _running.discard(spare)
        return False
    try:
        spare.stdin.write((json.dumps(job) + "\n").encode())
        spare.stdin.close()
    except OSError:
        _kill(spare)
        _running.discard(spare)
        return False
    return True


def run_worker(root, submission, limits, uid, sandboxed, scope=None, lease_fd=None, spare=None):
    """Run one worker within the wall time; returns the status it ended with (None: it finished).

    ``scope``: where its kernels' runtime folders and cgroups go; ``lease_fd``: the lock of ``uid``'s lease,
    which the worker holds as long as it lives (see :func:`autograder.sandbox.lease_uid`); ``spare``: a
    worker started with that lease by :func:`start_spare`, which gets the job if it is still alive."""
    settings = os.path.join(root, "settings.json")
    with open(settings, "w") as handle:
        json.dump(_worker_settings(limits, uid, sandboxed, scope), handle)
    job = {"root": root, "student": submission.student, "assignment": submission.assignment, "settings": settings,
           "log": os.path.join(root, "worker.log")}
    if _hand_to_spare(spare, job):
        process = spare
    else:
        with open(job["log"], "w") as log:
            process = _start_worker(["--root", root, "--student", submission.student, "--assignment",
                                     submission.assignment, "--settings", settings], root, log, limits, lease_fd)
    try:
        code = process.wait(timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        _kill(process)
        return Status.WALL_TIMEOUT, f"killed after {limits.wall_seconds} s (--wall-seconds)"
    finally:
        _running.discard(process)
    if code != 0:
        return Status.GRADER_ERROR, f"the worker exited with code {code}; see workers/" \
                                    f"{submission.student}/{submission.assignment}/worker.log"
    return None, ""


def _kill(process):
    """SIGKILL a worker's process group; its kernels die with it (bubblewrap's --die-with-parent)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
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
    return Record(submission.student, submission.assignment, score=score - penalty, max_score=max_score,
                  late_penalty=penalty, submitted_at=submission.timestamp, statuses=statuses or {Status.OK},
                  detail="; ".join(reasons))


def grade_class(course_root, submissions, out, *, assignments=None, students=None, shard=None, layout="auto",
                jobs=None, limits=Limits(), sandboxed=True, progress=True):
    """Grade the submissions in folder ``submissions`` into ``out``; returns ``(records, summary dict)``.

    ``assignments``/``students``: grade only these (the others keep their grades); ``shard=(i, n)``:
    grade only the students of shard i of n (see :func:`shard_of`).
    """
    started = time.monotonic()
    put_environment_bin_on_path()
    course_root, out = os.path.realpath(course_root), os.path.realpath(out)
    if out == course_root or course_root.startswith(out + os.sep):
        raise GradingError(f"--out {out!r} must be a folder of its own, not the course repository or above it.")
    if sandboxed:
        try:
            sandbox.check_support()
        except sandbox.SandboxUnavailable as error:
            raise GradingError(str(error)) from error
    source, available = course_assignments(course_root)
    unknown = sorted(set(assignments or ()) - set(available))
    if unknown:
        raise GradingError(f"Unknown assignment(s) {unknown}; the course has {sorted(available)}.")
    wanted = {a: available[a] for a in (assignments or available)}
    try:
        dates, _ = read_schedule(load_config(course_root))
    except ValueError as error:
        raise GradingError(f"{error} (nbgrader_config.py)") from error
    collected, refusals = intake.collect(submissions, wanted, layout)
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
    os.makedirs(out, exist_ok=True)
    jobs = max(1, jobs or os.cpu_count() or 1)
    try:  # this run's uids (as root), runtime folders and cgroups; what dead runs left is removed first
        run = runtime.GradingRun(uids=jobs if sandboxed and sandbox.running_as_root() else 0, use_cgroups=sandboxed)
    except (OSError, sandbox.SandboxUnavailable) as error:
        raise GradingError(f"cannot prepare the run's sandbox resources: {error}") from error
    slot_uids = run.uids or [None] * jobs
    spares, spare_lock = {}, threading.Lock()
    waiting = [sum(1 for s in collected if s.notebooks)]  # submissions no worker has taken yet
    spare_folder, checks_path = os.path.join(out, "workers", ".spares"), os.path.join(course_root, "tests.py")

    def add_spare(slot):
        uid = slot_uids[slot]
        spares[slot] = start_spare(spare_folder, checks_path, limits, None if uid is None else run.lease_fd(uid))

    try:
        for slot in range(min(jobs, waiting[0])):  # they load while the assignments are generated
            add_spare(slot)
        template = prepare(course_root, out, wanted, source, dates)
    except BaseException:
        for spare in spares.values():
            stop_spare(spare)
        run.close()
        raise
    store = os.path.join(out, "records.json")
    records, old_refusals = load_records(store)
    refusal_records = {key: r for key, r in old_refusals.items() if students or key[1] not in wanted}
    for refusal in refusals:
        refusal_records[(refusal.entry, refusal.assignment)] = Record(
            refusal.entry, refusal.assignment, 0, 0, statuses={Status.REFUSED}, detail=refusal.reason)

    extensions = extension_seconds(os.path.join(out, "gradebook.db"))
    if sandboxed and run.backend is None:
        print(f"autograder: {run.limits}", file=sys.stderr, flush=True)
    slots = Queue()
    for slot in range(jobs):
        slots.put(slot)

    def grade_one(submission):
        if not submission.notebooks:
            return None, None, ""
        root = worker_root(out, template, submission, extensions.get((submission.student, submission.assignment)))
        slot = slots.get()
        uid = slot_uids[slot]
        try:
            with spare_lock:
                spare = spares.pop(slot, None)
                waiting[0] -= 1
            scope = run.scope()
            try:
                return (root, *run_worker(root, submission, limits, uid, sandboxed, scope,
                                          None if uid is None else run.lease_fd(uid), spare))
            finally:  # the worker is gone, however it ended: so is what it left (kernels, cgroups, folders)
                run.clean_scope(scope)
                with spare_lock:
                    if waiting[0] > 0:  # the next submission of this slot finds its worker loaded
                        add_spare(slot)
        finally:
            slots.put(slot)

    def finish(submission, outcome):
        root, worker_status, detail = outcome
        try:
            submitted = os.path.join(out, "submitted", submission.student, submission.assignment)
            shutil.rmtree(submitted, ignore_errors=True)
            intake.write_submitted(submission, out)
            record = finish_submission(out, submission, wanted[submission.assignment], root, worker_status, detail)
        except Exception as error:  # noqa: BLE001 (one submission's trouble never ends the class run)
            record = Record(submission.student, submission.assignment, 0, 0, statuses={Status.GRADER_ERROR},
                            detail=f"{type(error).__name__}: {error}"[:500])
        records[(record.student, record.assignment)] = record

    pool = ThreadPoolExecutor(jobs)  # one job per (student, assignment): a lone student uses every core
    try:
        ordered = sorted(collected, key=lambda s: (s.student, s.assignment))
        futures = {pool.submit(grade_one, s): s for s in ordered}
        with tqdm(total=len(futures), desc="Grading", unit="submission", disable=not progress) as bar:
            for future in as_completed(futures):
                submission = futures[future]
                try:
                    outcome = future.result()
                except Exception as error:  # noqa: BLE001
                    outcome = (None, Status.GRADER_ERROR, f"{type(error).__name__}: {error}"[:500])
                    submission.notebooks = {}
                finish(submission, outcome)
                bar.update(1)
    finally:  # Ctrl-C or an error here: no worker outlives the driver, and the CSV is written
        for spare in list(spares.values()):
            stop_spare(spare)
        for process in list(_running):
            _kill(process)
        pool.shutdown(cancel_futures=True)
        run.close()
        save_records(store, records, refusal_records)
        write_grades(out)
    graded = [records[(s.student, s.assignment)] for s in collected]
    summary = {
        "students": len({s.student for s in collected}),
        "submissions": len(graded),
        "refused_entries": len(refusals),
        "assignments": sorted(wanted),
        "sandbox": sandbox.describe() if sandboxed else "none (--no-sandbox)",
        "limits": run.limits if sandboxed else "none (--no-sandbox)",
        "jobs": jobs,
        "seconds": round(time.monotonic() - started, 1),
        "peak_driver_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "statuses": dict(Counter(status for r in graded for status in r.status.split(";"))),
        "mean_percent": round(100 * sum(r.score / r.max_score for r in graded if r.max_score)
                              / max(len(graded), 1), 1),
        "csv": os.path.join(out, "grades.csv"),
    }
    return graded, summary
