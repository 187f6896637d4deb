"""Time the grader on the real course (``python -m retinanet.grading.benchmark``) → benchmarks/grading.json.

Targets of the grading issue: one full course submission (every assignment, correct) graded in ≤ 90 s on
2 cores, and a class of 8 graded ≥ 1.7× faster with one job per core than with one job. The class is 8
submissions of 01-architecture (half correct, half untouched), graded from scratch each time.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import time

import nbformat

from .driver import course_assignments, grade_class
from .sandbox import Limits

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _completed(assignment, notebook):
    """The released exercise and the same notebook with every solution cell filled in."""
    read = lambda kind: nbformat.read(os.path.join(REPOSITORY, kind, assignment, notebook + ".ipynb"), 4)  # noqa: E731
    exercise, solution = read("exercises"), read("solutions")
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in solution.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    completed = read("exercises")
    for cell in completed.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = "\n".join(line for line in answers[grade_id].split("\n")
                                    if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)
    return exercise, completed


def _write(folder, student, assignment, notebook, nb):
    os.makedirs(os.path.join(folder, student, assignment), exist_ok=True)
    nbformat.write(nb, os.path.join(folder, student, assignment, notebook + ".ipynb"))


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed_run(submissions, jobs, base):
    """Grade ``submissions`` into a fresh folder; wall and CPU seconds, the load around it, the grades."""
    out = tempfile.mkdtemp(dir=base)
    load_before, cpu_before, started = os.getloadavg()[0], _cpu_seconds(), time.monotonic()
    outcomes, _ = grade_class(REPOSITORY, submissions, out, jobs=jobs, limits=Limits(), progress=False)
    timing = {"jobs": jobs, "seconds": round(time.monotonic() - started, 1),
              "cpu_seconds": round(_cpu_seconds() - cpu_before, 1),
              "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)]}
    return timing, sorted((o.student, o.assignment, o.score, o.max_score, o.status) for o in outcomes)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--class-size", type=int, default=8)
    parser.add_argument("--output", default=os.path.join(REPOSITORY, "benchmarks", "grading.json"))
    args = parser.parse_args(argv)
    _, assignments = course_assignments(REPOSITORY)
    base = tempfile.mkdtemp(prefix="grading-benchmark-")
    try:
        course = os.path.join(base, "course")
        for assignment, notebooks in assignments.items():
            for notebook in notebooks:
                _write(course, "learner", assignment, notebook, _completed(assignment, notebook)[1])
        course_timing, course_outcomes = _timed_run(course, os.cpu_count(), base)

        klass = os.path.join(base, "class")
        exercise, completed = _completed("01-architecture", "architecture")
        for index in range(args.class_size):
            _write(klass, f"student{index:02d}", "01-architecture", "architecture",
                   completed if index % 2 == 0 else exercise)
        serial, serial_outcomes = _timed_run(klass, 1, base)
        parallel, parallel_outcomes = _timed_run(klass, os.cpu_count(), base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    record = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU",
        "note": "Measured while other engineers' TensorFlow jobs shared the same 2 cores: see each run's "
                "load average (runnable processes; 2 means both cores busy). cpu_seconds counts the "
                "grader's processes only.",
        "full_course_submission": {"assignments": sorted(assignments), **course_timing, "target_seconds": 90,
                                   "outcomes": course_outcomes},
        "class": {"students": args.class_size, "assignment": "01-architecture", "serial": serial,
                  "parallel": parallel, "speedup": round(serial["seconds"] / parallel["seconds"], 2),
                  "target_speedup": 1.7, "same_grades": serial_outcomes == parallel_outcomes},
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as handle:
        json.dump(record, handle, indent=1)
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
