"""The class driver against races, kills and Ctrl-C (toy course, real processes and signals).

* Two graders on one grading folder: the second refuses at once, naming the holder (exit 2), or with
  ``--wait`` grades after the first; one given up while waiting (SIGTERM) exits 130 and changes nothing.
  Afterwards ``records.json``, the gradebook, ``grades.csv`` and the feedback agree.
* SIGKILL of the driver mid-class: within seconds no process of the run is left (workers, spares,
  launchers, bubblewrap, kernels), and the same command run again grades the whole class.
* Ctrl-C (SIGINT to the driver's process group): no further submission starts, the running worker is
  killed, the CSV lists the whole class (``not-graded`` rows), exit 130 with one line and no traceback.
* A kernel that ignores the interrupt at the cell time limit is stopped; the check judged before keeps
  its points, its hidden test still decides (the catalogue's ``ignoresinterrupt`` cases).
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import nbformat
import pytest
from nbgrader.api import Gradebook

import grading_toy_course as toy
from autograder import driver
from autograder.course import GradingInterrupted
from autograder.driver import grade_class
from autograder.grades.lock import LOCK_NAME, FolderLock
from autograder.results import load_records
from autograder.sandbox.sandbox import Limits

SLEEPS = "import time\ntime.sleep({seconds})\n" + toy.MUL


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("faults") / "course")
    toy.make_course(root)
    return root


def _exercise(course):
    return nbformat.read(os.path.join(course, "exercises", toy.ASSIGNMENT, toy.NOTEBOOK + ".ipynb"), 4)


def _write(course, submissions, answers):
    """``answers``: {student: (add source, mul source)} in nbgrader's layout under ``submissions``."""
    for student, (add, mul) in answers.items():
        folder = os.path.join(submissions, student, toy.ASSIGNMENT)
        os.makedirs(folder)
        nbformat.write(toy._answer(_exercise(course), add, mul), os.path.join(folder, toy.NOTEBOOK + ".ipynb"))


def _command(course, submissions, out, *extra):
    return [sys.executable, "-m", "autograder", "grade", "--course", course, "--submissions", submissions,
            "--out", out, "--quiet", "--cell-timeout", "120", *extra]


def _start(command, log):
    """The grader as its own process group (as a shell runs a command), stderr to the file ``log``."""
    with open(log, "w") as handle:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=handle, start_new_session=True)


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def _until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# The processes of a run, from /proc.

def _stat(pid):
    """``(parent pid, state, start time)`` of ``pid``, or None."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[1]), fields[0], int(fields[19])


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _descendants(root):
    """``{pid: start time}`` of every process below ``root`` (workers, launchers, bubblewrap, kernels)."""
    children = {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        info = _stat(name)
        if info is not None:
            children.setdefault(info[0], []).append((int(name), info[2]))
    found, queue = {}, [root]
    while queue:
        for pid, started in children.get(queue.pop(), []):
            if pid not in found:
                found[pid] = started
                queue.append(pid)
    return found


def _alive(processes):
    """Those of ``{pid: start time}`` still running (a zombie nobody reaped has ended)."""
    alive = []
    for pid, started in processes.items():
        info = _stat(pid)
        if info is not None and info[2] == started and info[1] not in "ZX":
            alive.append(pid)
    return alive


def _mentioning(*texts):
    return [int(pid) for pid in filter(str.isdigit, os.listdir("/proc"))
            if any(text.encode() in _cmdline(pid) for text in texts)]


def _kernels(processes):
    """The kernels among ``processes`` (not their launchers or bubblewrap, whose command lines name them)."""
    found = []
    for pid in processes:
        arguments = _cmdline(pid).split(b"\0")
        if os.path.basename(arguments[0]).startswith(b"python") and b"ipykernel_launcher" in arguments \
                and b"autograder.sandbox.launch" not in arguments:
            found.append(pid)
    return found


def _runtime_folders(out):
    """The run's folders outside ``out`` (``<temp>/agr-…``), from the workers' settings."""
    folders = set()
    for directory, _, files in os.walk(os.path.join(out, "workers")):
        if "settings.json" in files:
            with open(os.path.join(directory, "settings.json")) as handle:
                folders.add(os.path.dirname(json.load(handle)["Sandbox"]["runtime_folder"]))
    return sorted(folders)


# What a grading folder says.

def _csv(out):
    with open(os.path.join(out, "grades.csv"), newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def _gradebook(out):
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:
        return {s.student.id: s.score - (s.late_submission_penalty or 0) for a in gb.assignments
                for s in a.submissions}


def _feedback_score(out, student):
    page = _read(os.path.join(out, "feedback", student, toy.ASSIGNMENT, toy.NOTEBOOK + ".html"))
    return float(page.split("Score: ", 1)[1].split(" / ", 1)[0])


def _records(out):
    return {student: record for (student, _), record in load_records(os.path.join(out, "records.json"))[0].items()}


def _assert_agree(out, expected):
    """records.json, the gradebook, grades.csv and the feedback pages all give ``expected`` ({student: score})."""
    records, gradebook, rows = _records(out), _gradebook(out), _csv(out)
    assert {s: r.score for s, r in records.items()} == expected
    assert gradebook == expected
    assert {s: float(row["score"]) for s, row in rows.items()} == expected
    assert {s: _feedback_score(out, s) for s in expected} == expected


def _one_line(error):
    lines = [line for line in error.strip().splitlines() if line.strip()]
    assert "Traceback" not in error, error
    return lines[-1]


def test_one_grader_per_folder_the_second_refuses_or_waits(course, tmp_path):
    """The first grader is paused (SIGSTOP) once it holds the folder, so the others surely find it taken."""
    out, first, second = str(tmp_path / "out"), str(tmp_path / "first"), str(tmp_path / "second")
    _write(course, first, {"shared": (toy.ADD, toy.MUL), "only-first": (toy.ADD, toy.MUL)})
    _write(course, second, {"shared": (toy.ADD, toy.WRONG_MUL), "only-second": (toy.ADD, toy.MUL)})
    holder = _start(_command(course, first, out, "--jobs", "2"), tmp_path / "first.log")
    refused = waiting = given_up = holder
    try:
        lock = FolderLock(out)
        _until(lambda: lock.holder().get("pid") == holder.pid, 120, "the first grader to take the lock")
        holder.send_signal(signal.SIGSTOP)
        refused = _start(_command(course, second, out), tmp_path / "refused.log")
        waiting = _start(_command(course, second, out, "--wait", "--jobs", "2"), tmp_path / "waiting.log")
        given_up = _start(_command(course, second, out, "--wait"), tmp_path / "given-up.log")

        assert refused.wait(timeout=120) == 2
        line = _one_line(_read(tmp_path / "refused.log"))
        assert line.startswith("error: ") and f"pid {holder.pid} on " in line and "--wait" in line, line
        assert not os.path.exists(os.path.join(out, "workers", "only-second"))

        for process, log in ((waiting, "waiting.log"), (given_up, "given-up.log")):
            _until(lambda log=log: "waiting for it to finish" in _read(tmp_path / log), 120, f"{log} to wait")
        given_up.send_signal(signal.SIGTERM)
        assert given_up.wait(timeout=60) == 130
        assert "gave up waiting" in _one_line(_read(tmp_path / "given-up.log"))
        holder.send_signal(signal.SIGCONT)

        assert holder.wait(timeout=300) == 0, _read(tmp_path / "first.log")[-3000:]
        assert waiting.wait(timeout=300) == 0, _read(tmp_path / "waiting.log")[-3000:]
    finally:
        for process in (holder, refused, waiting, given_up):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    assert "waiting for it to finish" in _read(tmp_path / "waiting.log")
    _assert_agree(out, {"shared": 2, "only-first": 5, "only-second": 5})  # the second grader's shared, last
    assert "a * b" not in _read(os.path.join(out, "autograded", "shared", toy.ASSIGNMENT, "toy.ipynb"))
    with FolderLock(out):  # the holders are gone: nothing blocks
        pass
    assert sorted(os.listdir(out)).count(LOCK_NAME) == 1


def test_sigkill_of_the_driver_takes_every_process_of_the_run_and_a_rerun_grades_the_class(course, tmp_path):
    out, submissions = str(tmp_path / "out"), str(tmp_path / "submitted")
    _write(course, submissions, {"a": (toy.ADD, toy.MUL), "b": (toy.ADD, SLEEPS.format(seconds=15)),
                         "c": (toy.ADD, SLEEPS.format(seconds=15))})
    command = _command(course, submissions, out, "--jobs", "2")
    grader = _start(command, tmp_path / "killed.log")
    try:
        _until(lambda: _kernels(_descendants(grader.pid)), 180, "a kernel of the run")
        processes = _descendants(grader.pid)
    finally:
        grader.kill()
        grader.wait()
    assert _kernels(processes) and len(processes) >= 4  # workers or spares, launchers, bubblewrap, kernels
    folders = _runtime_folders(out)
    _until(lambda: not _alive(processes) and not _mentioning(out, *folders), 15,
           "the run's processes to die with their driver")
    assert not os.path.exists(os.path.join(out, "grades.csv"))

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    rows = _csv(out)
    assert {s: (row["status"], float(row["score"])) for s, row in rows.items()} == {
        "a": ("ok", 5), "b": ("ok", 5), "c": ("ok", 5)}
    _assert_agree(out, {"a": 5, "b": 5, "c": 5})


def test_ctrl_c_kills_the_workers_writes_the_whole_class_and_exits_130(course, tmp_path):
    out, submissions = str(tmp_path / "out"), str(tmp_path / "submitted")
    _write(course, submissions, {"a": (toy.ADD, toy.MUL), **{s: (toy.ADD, SLEEPS.format(seconds=120)) for s in "bcd"}})
    grader = _start(_command(course, submissions, out, "--jobs", "1"), tmp_path / "stopped.log")
    try:
        page = os.path.join(out, "feedback", "a", toy.ASSIGNMENT, "toy.html")
        _until(lambda: os.path.exists(page) and _kernels(_descendants(grader.pid)), 180, "a graded, b's kernel")
        processes = _descendants(grader.pid)
        started = time.monotonic()
        os.killpg(grader.pid, signal.SIGINT)  # what Ctrl-C at a terminal does: the workers have sessions of their own
        assert grader.wait(timeout=60) == 130
        assert time.monotonic() - started < 30
    finally:
        if grader.poll() is None:
            grader.kill()
    error = _read(tmp_path / "stopped.log")
    line = _one_line(error)
    assert line.startswith("autograder: stopped by SIGINT: 1 of 4 submissions graded, 3 not-graded;"), error
    assert "grades.csv lists the whole class" in line
    _until(lambda: not _alive(processes), 10, "the killed workers and their kernels to end")
    rows = _csv(out)
    assert {s: (row["status"], float(row["score"]), float(row["max_score"])) for s, row in rows.items()} == {
        "a": ("ok", 5, 5), "b": ("not-graded", 0, 5), "c": ("not-graded", 0, 5), "d": ("not-graded", 0, 5)}
    assert "rerun to grade it" in rows["b"]["detail"] and "SIGINT" in rows["b"]["detail"]
    assert {s: r.status for s, r in _records(out).items()} == {s: row["status"] for s, row in rows.items()}
    assert _gradebook(out) == {"a": 5}  # nothing was stored for the others
    with FolderLock(out):
        pass


def test_a_stopped_rerun_keeps_the_earlier_grades(course, tmp_path, monkeypatch):
    """A stop after a class was graded once: every submission of the rerun is ``not-graded``, with its earlier
    grade, gradebook entry and feedback untouched; the LMS exports still carry the earlier grades."""
    out, submissions = str(tmp_path / "out"), str(tmp_path / "submitted")
    _write(course, submissions, {"a": (toy.ADD, toy.MUL), "b": (toy.ADD, toy.WRONG_MUL)})
    grade_class(course, submissions, out, limits=Limits(cell_timeout=60), jobs=2, progress=False)
    _assert_agree(out, {"a": 5, "b": 2})
    prepare = driver.ClassRun.prepare

    def prepare_then_stop(self, *args, **kwargs):
        prepare(self, *args, **kwargs)
        self.stop_requested.set("SIGTERM")  # as the signal handler does

    monkeypatch.setattr(driver.ClassRun, "prepare", prepare_then_stop)
    with pytest.raises(GradingInterrupted, match="stopped by SIGTERM: 0 of 2 submissions graded, 2 not-graded"):
        grade_class(course, submissions, out, limits=Limits(cell_timeout=60), jobs=2, progress=False)
    rows = _csv(out)
    assert {s: (row["status"], float(row["score"])) for s, row in rows.items()} == {
        "a": ("not-graded", 5), "b": ("not-graded", 2)}
    assert "the score is its earlier grade" in rows["a"]["detail"]
    _assert_agree(out, {"a": 5, "b": 2})
    exported = subprocess.run([sys.executable, "-m", "autograder", "export", "--out", out], capture_output=True,
                              text=True, timeout=120)
    assert exported.returncode == 0, exported.stderr
    with open(os.path.join(out, "exports", "canvas.csv"), newline="") as handle:
        assert {row["SIS Login ID"]: row[toy.ASSIGNMENT] for row in csv.DictReader(handle)
                if row["SIS Login ID"]} == {"a": "5", "b": "2"}


def test_a_kernel_that_ignores_the_interrupt_is_stopped_and_earlier_checks_keep_their_points(course, tmp_path):
    out, submissions = str(tmp_path / "out"), str(tmp_path / "submitted")
    cases = toy.catalogue(_exercise(course), course, out, "/nowhere")
    names = ("ignoresinterrupt", "ignoresinterrupt-hiddenfail", "ignoresinterruptinprobe")
    for name in names:
        folder = os.path.join(submissions, name, toy.ASSIGNMENT)
        os.makedirs(folder)
        nbformat.write(cases[name].files[toy.NOTEBOOK + ".ipynb"], os.path.join(folder, toy.NOTEBOOK + ".ipynb"))
    records, _ = grade_class(course, submissions, out, limits=Limits(cell_timeout=4, wall_seconds=300), jobs=2,
                             progress=False)
    assert {r.student: (r.status, r.score) for r in records} == {n: (cases[n].status, cases[n].score) for n in names}
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:
        scores = {(n, cell): gb.find_grade(cell, toy.NOTEBOOK, toy.ASSIGNMENT, n).auto_score
                  for n in names for cell in toy.POINTS}
    assert scores == {("ignoresinterrupt", "test_add"): 2, ("ignoresinterrupt", "test_mul"): 0,
                      ("ignoresinterrupt-hiddenfail", "test_add"): 0, ("ignoresinterrupt-hiddenfail", "test_mul"): 0,
                      ("ignoresinterruptinprobe", "test_add"): 2, ("ignoresinterruptinprobe", "test_mul"): 0}
    log = _read(os.path.join(out, "workers", "ignoresinterrupt", toy.ASSIGNMENT, "logs", "toy.log"))
    assert "did not stop within" in log and "Traceback" not in log
    for name, verdict in (("ignoresinterrupt", "passed"), ("ignoresinterrupt-hiddenfail", "failed")):
        nb = nbformat.read(os.path.join(out, "autograded", name, toy.ASSIGNMENT, "toy.ipynb"), 4)
        assert toy._cell(nb, "test_add").metadata["autograder"]["hidden_tests"] == verdict  # run after the stop
    assert not _mentioning(out, *_runtime_folders(out))
