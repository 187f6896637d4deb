"""The instructor's workflow on a toy class of two assignments: late policies, regrading one student or
one assignment, exports for Canvas and Moodle, and shards graded separately (with the README's Slurm and
Kubernetes examples) and merged, which must equal one run."""

import csv
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile

import nbformat
import pytest
import yaml
from nbgrader.api import Gradebook

import grading_toy_course as toy
from autograder.driver import grade_class, shard_of
from autograder.grades.export import write_grades
from autograder.sandbox.sandbox import Limits

LIMITS = Limits(cell_timeout=30, wall_seconds=240, memory_gb=1)
ASSIGNMENTS = ("toy", "toy2")
LATE_BY_A_DAY_AND_A_HALF = "2030-01-02 12:00:00 UTC"  # toy2: 2 started days at 20 % per day


def class_submissions(exercise):
    """``{(student, assignment): (notebook, timestamp)}`` of the toy class."""
    correct, partial = toy._answer(exercise, toy.ADD, toy.MUL), toy._answer(exercise, toy.ADD, toy.WRONG_MUL)
    hiddenfail = toy._answer(exercise, "def add(a, b):\n    return abs(a) + abs(b)", toy.MUL)
    return {("alice", "toy"): (correct, toy.BEFORE_DUE), ("alice", "toy2"): (correct, LATE_BY_A_DAY_AND_A_HALF),
            ("bob", "toy"): (partial, toy.BEFORE_DUE), ("bob", "toy2"): (correct, toy.BEFORE_DUE),
            ("carol", "toy"): (correct, toy.AFTER_DUE),
            ("dave", "toy"): (correct, ""), ("dave", "toy2"): (hiddenfail, "")}


def write_class(folder, submissions):
    for (student, assignment), (nb, timestamp) in submissions.items():
        directory = os.path.join(folder, student, assignment)
        os.makedirs(directory, exist_ok=True)
        nbformat.write(nb, os.path.join(directory, "toy.ipynb"))
        if timestamp:
            with open(os.path.join(directory, "timestamp.txt"), "w") as handle:
                handle.write(timestamp)


def rows(out):
    with open(os.path.join(out, "grades.csv"), newline="") as handle:
        return {(row["student"], row["assignment"]): row for row in csv.DictReader(handle)}


def grades(out):
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:
        return {(s.student.id, a.name, g.name): (g.auto_score, g.manual_score)
                for a in gb.assignments for s in a.submissions for n in s.notebooks for g in n.grades}


def fingerprint(folder, keep=lambda path: True):
    found = {}
    for directory, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(directory, name)
            if keep(path):
                with open(path, "rb") as handle:
                    found[os.path.relpath(path, folder)] = hashlib.sha256(handle.read()).hexdigest()
    return found


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    base = tmp_path_factory.mktemp("class")
    course, submissions = str(base / "course"), str(base / "submitted")
    exercise = toy.make_course(course, ASSIGNMENTS)
    os.symlink(sys.prefix, os.path.join(course, ".venv"))  # a course repository with its environment
    write_class(submissions, class_submissions(exercise))
    single = str(base / "single")
    grade_class(course, submissions, single, limits=LIMITS, jobs=2, progress=False)
    return {"base": base, "course": course, "submissions": submissions, "single": single, "exercise": exercise}


def test_due_dates_and_late_policies_per_assignment_show_in_the_csv(klass):
    table = rows(klass["single"])
    alice = table[("alice", "toy2")]  # 20 % per day, 2 started days: 40 % of 5
    assert (alice["score"], alice["late_penalty"], alice["status"]) == ("3", "2", "late")
    assert (alice["submitted_at"], alice["due_at"]) == ("2030-01-02T12:00:00+00:00", "2030-01-01T00:00:00+00:00")
    carol = table[("carol", "toy")]  # the zero policy
    assert (carol["score"], carol["late_penalty"], carol["status"]) == ("0", "5", "late")
    assert (table[("carol", "toy2")]["status"], table[("dave", "toy2")]["score"]) == ("missing", "3")
    assert (table[("bob", "toy2")]["score"], table[("bob", "toy2")]["late_penalty"]) == ("5", "0")


def _run_shards(command, environments, cwd):
    for environment in environments:
        result = subprocess.run(command, cwd=cwd, env={**os.environ, **environment}, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]


def _merge(out, shards):
    command = [sys.executable, "-m", "autograder", "merge", "--out", out, *shards]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_slurm_array_shards_merged_equal_one_run(klass):
    """The README's Slurm script, run as two array tasks, then merged twice (idempotent)."""
    shards = str(klass["base"] / "slurm-shards")
    script = os.path.join(toy.REPOSITORY, "examples", "slurm", "grade-class.sbatch")
    _run_shards(["bash", script], [
        {"SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "2",
         "SLURM_CPUS_PER_TASK": "2", "SLURM_SUBMIT_DIR": klass["course"], "SUBMISSIONS": klass["submissions"],
         "SHARDS": shards} for task in (1, 2)], klass["course"])
    assert {shard_of(s, 2) for s in ("alice", "bob", "carol", "dave")} == {1, 2}  # both shards graded someone
    merged = str(klass["base"] / "slurm-merged")
    _merge(merged, [os.path.join(shards, "1"), os.path.join(shards, "2")])
    first = (rows(merged), grades(merged), fingerprint(os.path.join(merged, "feedback")))
    assert first[0] == rows(klass["single"]) and first[1] == grades(klass["single"])
    assert first[2] == fingerprint(os.path.join(klass["single"], "feedback"))
    _merge(merged, [os.path.join(shards, "2"), os.path.join(shards, "1")])
    assert (rows(merged), grades(merged), fingerprint(os.path.join(merged, "feedback"))) == first


def test_kubernetes_indexed_job_shards_merged_equal_one_run(klass):
    """The README's Kubernetes Indexed Job (its container command, as each index would run it) and merge Job."""
    with open(os.path.join(toy.REPOSITORY, "examples", "kubernetes", "grade-class.yaml")) as handle:
        job = yaml.safe_load(handle)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert job["spec"]["completionMode"] == "Indexed"
    assert {e["name"]: e["value"] for e in container["env"]}["SHARD_COUNT"] == str(job["spec"]["completions"])
    shards = str(klass["base"] / "k8s-shards")
    _run_shards(container["command"] + container["args"], [
        {"JOB_COMPLETION_INDEX": str(index), "SUBMISSIONS": klass["submissions"], "SHARDS": shards,
         "SHARD_COUNT": "2"} for index in (0, 1)], klass["course"])
    with open(os.path.join(toy.REPOSITORY, "examples", "kubernetes", "merge-class.yaml")) as handle:
        merging = yaml.safe_load(handle)["spec"]["template"]["spec"]["containers"][0]
    merged = str(klass["base"] / "k8s-merged")
    _run_shards(merging["command"] + merging["args"], [{"SHARDS": shards, "GRADES": merged}], klass["course"])
    assert rows(merged) == rows(klass["single"]) and grades(merged) == grades(klass["single"])
    assert os.path.isfile(os.path.join(merged, "exports", "canvas.csv"))


def test_regrade_one_student_then_one_assignment_leaves_the_others_alone(klass):
    out = str(klass["base"] / "regrade")
    shutil.copytree(klass["single"], out)
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:  # the instructor's review
        gb.find_grade("test_mul", "toy", "toy", "bob").manual_score = 3
        gb.db.commit()
    write_grades(out)
    assert rows(out)[("bob", "toy")]["score"] == "5"
    nbformat.write(toy._answer(klass["exercise"], toy.ADD, toy.MUL), os.path.join(klass["submissions"], "dave",
                                                                                  "toy2", "toy.ipynb"))
    others = lambda path: "/dave/toy2" not in path and "/workers/" not in path  # noqa: E731
    before, before_rows = fingerprint(out, others), rows(out)
    try:
        grade_class(klass["course"], klass["submissions"], out, students=["dave"], assignments=["toy2"],
                    limits=LIMITS, progress=False)
    finally:  # the other tests' class stays as it was
        nbformat.write(class_submissions(klass["exercise"])[("dave", "toy2")][0],
                       os.path.join(klass["submissions"], "dave", "toy2", "toy.ipynb"))
    after = rows(out)
    assert after[("dave", "toy2")]["score"] == "5"
    assert {k: v for k, v in after.items() if k != ("dave", "toy2")} == {
        k: v for k, v in before_rows.items() if k != ("dave", "toy2")}  # bob's reviewed 5 included
    mine = ("grades.csv", "records.json", ".db", "grading.lock")  # the grader's own files, rewritten by every run
    assert fingerprint(out, lambda p: others(p) and not p.endswith(mine)) == {
        k: v for k, v in before.items() if not k.endswith(mine)}
    toy_rows = {k: v for k, v in after.items() if k[1] == "toy"}
    toy2_files = lambda path: "/toy2/" in path and "/workers/" not in path  # noqa: E731
    toy2_before = fingerprint(out, toy2_files)
    grade_class(klass["course"], klass["submissions"], out, assignments=["toy2"], limits=LIMITS, progress=False)
    assert {k: v for k, v in rows(out).items() if k[1] == "toy"} == toy_rows
    assert fingerprint(out, lambda p: "/toy/" in p and "/workers/" not in p) == fingerprint(
        klass["single"], lambda p: "/toy/" in p and "/workers/" not in p)
    assert rows(out)[("dave", "toy2")]["score"] == "3" and fingerprint(out, toy2_files) != toy2_before


def test_exports_for_canvas_moodle_and_feedback_packages(klass):
    out = str(klass["base"] / "exported")
    shutil.copytree(klass["single"], out)
    with Gradebook("sqlite:///" + os.path.join(out, "gradebook.db")) as gb:  # a score changed in the formgrader
        gb.find_grade("test_mul", "toy", "toy", "bob").manual_score = 3
        gb.db.commit()
    result = subprocess.run([sys.executable, "-m", "autograder", "export", "--out", out], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    with open(os.path.join(out, "exports", "canvas.csv"), newline="") as handle:
        canvas = list(csv.reader(handle))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "toy", "toy2"]
    assert canvas[1] == ["Points Possible", "", "", "", "", "5", "5"]
    assert {row[3]: row[5:] for row in canvas[2:]} == {"alice": ["5", "3"], "bob": ["5", "5"], "carol": ["0", "0"],
                                                      "dave": ["5", "3"]}
    # no grading worksheet: Moodle's Identifier is its own participant number, which nbgrader's layout lacks
    assert not os.path.exists(os.path.join(out, "exports", "moodle-toy2.csv"))
    assert "feedback remade from the gradebook as it is now: bob's toy" in result.stdout  # bob's page shows 5 now
    with open(os.path.join(out, "feedback", "bob", "toy", "toy.html"), encoding="utf-8") as handle:
        assert "5.0 / 5.0" in handle.read()
    assert rows(out)[("bob", "toy")]["score"] == "5"  # grades.csv follows the formgrader too
    for student in ("alice", "bob", "carol", "dave"):
        with zipfile.ZipFile(os.path.join(out, "exports", "feedback", student + ".zip")) as archive:
            names = sorted(archive.namelist())
            pages = [archive.read(name).decode() for name in names]
        assert names == ["toy/toy.html", "toy2/toy.html"]
        assert not [text for page in pages for text in toy.HIDDEN_TEXTS if text in page]
