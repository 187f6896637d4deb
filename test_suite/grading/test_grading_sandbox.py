"""The kernel sandbox: what bubblewrap is asked to mount, CPU and process limits, a linked environment."""

import csv
import os
import subprocess
import sys

import nbformat
import pytest
from traitlets.config import Config

import grading_toy_course as toy
from autograder.driver import grade_class
from autograder.sandbox.launch import bwrap_arguments, learner_files
from autograder.sandbox.sandbox import WORK_FOLDER, Limits, Sandbox, launcher_settings, python_paths


def _options(arguments, name, width):
    return [tuple(arguments[i + 1: i + 1 + width]) for i, a in enumerate(arguments) if a == name]


def test_the_kernel_is_given_only_the_allow_list(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "connection.json").write_text("{}")
    checks = tmp_path / "checks.py"
    checks.write_text("def TEST_X(f): pass\n")
    config = Config()
    config.Sandbox.packages = ["retinanet"]
    config.Sandbox.work_files = {"tests.py": str(checks)}
    settings = launcher_settings(Sandbox(config=config), str(tmp_path), str(tmp_path / "connection.json"))
    arguments = bwrap_arguments(settings, [sys.executable, "-m", "ipykernel_launcher", "-f",
                                           str(tmp_path / "connection.json")])
    read_only = {destination for _, destination in _options(arguments, "--ro-bind", 2)}
    allowed = {"/usr"} | {os.path.realpath(p) for p in python_paths()} | {os.path.abspath(p) for p in python_paths()}
    allowed |= {os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "retinanet")}
    assert read_only <= allowed
    assert _options(arguments, "--bind", 2) == [(str(tmp_path / "s"), str(tmp_path / "s"))]  # its sockets only
    assert {"--unshare-net", "--unshare-pid", "--unshare-ipc", "--clearenv", "--die-with-parent"} <= set(arguments)
    assert (WORK_FOLDER + "/tests.py",) in [d[1:] for d in _options(arguments, "--ro-bind-data", 2)]
    assert "setpriv" in arguments and "--reuid=61000" in arguments  # the suite runs as root
    environment = dict(_options(arguments, "--setenv", 2))
    assert environment["HOME"] == WORK_FOLDER and not {"GRADER_SECRET", "VIRTUAL_ENV"} & set(environment)


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    base = tmp_path_factory.mktemp("limits")
    course, out, submissions = str(base / "course"), str(base / "out"), base / "submissions"
    exercise = toy.make_course(course)
    spin = "def add(a, b):\n    while True:\n        pass"
    forks = toy.ADD + ("\nimport subprocess\nchildren = []\ntry:\n    for _ in range(2000):\n"
                       "        children.append(subprocess.Popen(['sleep', '60']))\nexcept OSError as error:\n"
                       "    print('stopped after', len(children), type(error).__name__)")
    for student, nb in (("correct", toy._answer(exercise, toy.ADD, toy.MUL)),
                        ("spinner", toy._answer(exercise, spin, toy.MUL)),
                        ("forker", toy._answer(exercise, forks, toy.MUL))):
        (submissions / student / toy.ASSIGNMENT).mkdir(parents=True)
        nbformat.write(nb, str(submissions / student / toy.ASSIGNMENT / "toy.ipynb"))
    limits = Limits(cell_timeout=60, wall_seconds=120, memory_gb=1, cpu_seconds=6, max_processes=200)
    records, _ = grade_class(course, str(submissions), out, limits=limits, jobs=2, progress=False)
    return out, {r.student: r for r in records}


def test_cpu_time_limit_stops_the_kernel(limited):
    _, records = limited
    assert (records["spinner"].status, records["spinner"].score) == ("cpu-limit", 0)
    assert (records["correct"].status, records["correct"].score) == ("ok", toy.MAX_SCORE)


def test_process_limit_of_the_submission(limited):
    """The group's pids.max (or, without a cgroup, RLIMIT_NPROC of the kernel's own user id) refuses forks."""
    out, records = limited
    assert (records["forker"].status, records["forker"].score) == ("ok", toy.MAX_SCORE)
    nb = nbformat.read(os.path.join(out, "autograded", "forker", toy.ASSIGNMENT, "toy.ipynb"), 4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    started = int(text.split("stopped after ")[1].split()[0])
    assert 0 < started < 200 and "BlockingIOError" in text


def test_a_course_whose_environment_is_a_link_grades(tmp_path):
    """The virtual environment reached through a symbolic link (``.venv -> elsewhere``) is mounted too."""
    course, submissions, out = tmp_path / "course", tmp_path / "submitted", tmp_path / "out"
    exercise = toy.make_course(str(course))
    os.symlink(sys.prefix, course / ".venv")
    (submissions / "correct" / toy.ASSIGNMENT).mkdir(parents=True)
    nbformat.write(toy._answer(exercise, toy.ADD, toy.MUL), str(submissions / "correct" / toy.ASSIGNMENT / "toy.ipynb"))
    result = subprocess.run(
        [str(course / ".venv" / "bin" / "python"), "-I", "-m", "autograder", "grade", "--course", str(course),
         "--submissions", str(submissions), "--out", str(out), "--quiet", "--cell-timeout", "30"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    with open(out / "grades.csv", newline="") as handle:
        (row,) = csv.DictReader(handle)
    assert (row["student"], row["status"], row["score"]) == ("correct", "ok", "5")


def test_command_line_errors_are_one_clear_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "autograder", "grade", "--submissions", str(tmp_path / "none"),
                             "--out", str(tmp_path / "out"), "--course", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: No nbgrader_config.py")


def test_without_the_sandbox_a_trusted_notebook_grades_the_same(tmp_path):
    course, out, submissions = str(tmp_path / "course"), str(tmp_path / "out"), tmp_path / "submitted"
    exercise = toy.make_course(course)
    (submissions / "teacher" / toy.ASSIGNMENT).mkdir(parents=True)
    notebook = toy._answer(exercise, toy.ADD, toy.MUL + "\nimport os\nprint('folder:', os.getcwd())")
    nbformat.write(notebook, str(submissions / "teacher" / toy.ASSIGNMENT / "toy.ipynb"))
    records, summary = grade_class(course, str(submissions), out, sandboxed=False, progress=False,
                                   limits=Limits(cell_timeout=30))
    assert [(r.student, r.score, r.status) for r in records] == [("teacher", toy.MAX_SCORE, "ok")]
    assert summary["sandbox"] == "none (--no-sandbox)"
    graded = nbformat.read(os.path.join(out, "autograded", "teacher", toy.ASSIGNMENT, "toy.ipynb"), 4)
    printed = "".join(o.get("text", "") for o in toy._cell(graded, "mul").outputs)
    assert f"folder: {os.path.realpath(out)}/workers/teacher/toy/autograded/teacher/toy" in printed


def test_only_the_learners_regular_files_are_copied_in(tmp_path, monkeypatch):
    """Plain nbgrader leaves the learner's extra files next to the notebook: regular ones within the budget
    are copied into the sandbox; links, pipes, notebooks, the course's files and hidden files are not."""
    (tmp_path / "data.csv").write_text("x,y\n1,2\n")
    (tmp_path / "big.bin").write_bytes(b"0" * 4096)
    (tmp_path / "toy.ipynb").write_text("{}")
    (tmp_path / "tests.py").write_text("def TEST_ADD(add): pass\n")
    (tmp_path / ".hidden").write_text("x")
    os.symlink("/etc/shadow", tmp_path / "shadow.txt")
    os.mkfifo(tmp_path / "pipe.txt")
    monkeypatch.chdir(tmp_path)
    chosen = learner_files({"learner_files_bytes": 1024, "work_files": {"tests.py": "/course/tests.py"}})
    assert [name for name, _ in chosen] == ["data.csv"]
