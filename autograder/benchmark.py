"""Time the grader (``python -m autograder.benchmark``) → ``benchmarks/grading.json``.

Targets of the grading issues: one full course submission (every assignment, correct) graded in ≤ 90 s
on 2 cores; a class of 8 graded ≥ 1.7× faster with one job per core than with one job; and, measured
alongside, the driver's peak memory and the hostile catalogue of the test suite (its size and time).
Everything is graded from scratch in temporary folders, in the full sandbox. Other jobs on the machine
slow every figure down: each run records the load averages around it.
"""

import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time

import nbformat

from .course import course_assignments
from .driver import grade_class
from .sandbox.sandbox import Limits, describe

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def _timed_run(course, submissions, jobs, base, limits=Limits()):
    """Grade ``submissions`` into a fresh folder; wall seconds, the load around it, the grades."""
    out = tempfile.mkdtemp(dir=base)
    load_before, started = os.getloadavg(), time.monotonic()
    records, _ = grade_class(course, submissions, out, jobs=jobs, limits=limits, progress=False)
    timing = {"jobs": jobs, "seconds": round(time.monotonic() - started, 1),
              "load_average_before": [round(x, 1) for x in load_before],
              "load_average_after": [round(x, 1) for x in os.getloadavg()]}
    return timing, sorted((r.student, r.assignment, r.score, r.max_score, r.status) for r in records)


def _catalogue(base):
    """The test suite's hostile catalogue (toy course): its size, time and whether every case got its status."""
    path = os.path.join(REPOSITORY, "test_suite", "grading", "grading_toy_course.py")
    spec = importlib.util.spec_from_file_location("grading_toy_course", path)
    toy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(toy)
    course, out, submissions = (os.path.join(base, name) for name in ("toy-course", "toy-out", "toy-submissions"))
    other = os.path.join(base, "toy-other")
    exercise = toy.make_course(course)
    toy.make_course(other)
    cases = toy.catalogue(exercise, course, out, other)
    toy.write_submissions(submissions, cases)
    started = time.monotonic()
    records, _ = grade_class(course, submissions, out, jobs=os.cpu_count(), progress=False,
                             limits=Limits(cell_timeout=5, wall_seconds=240, memory_gb=1))
    got = {r.student: (r.status, r.score) for r in records}
    return {"cases": len(cases) + 2, "seconds": round(time.monotonic() - started, 1),
            "all_as_expected": all(got.get(s) == (c.status, c.score) for s, c in cases.items())}


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
        course_timing, course_outcomes = _timed_run(REPOSITORY, course, os.cpu_count(), base)

        klass = os.path.join(base, "class")
        exercise, completed = _completed("01-architecture", "architecture")
        for index in range(args.class_size):
            _write(klass, f"student{index:02d}", "01-architecture", "architecture",
                   completed if index % 2 == 0 else exercise)
        serial, serial_outcomes = _timed_run(REPOSITORY, klass, 1, base)
        parallel, parallel_outcomes = _timed_run(REPOSITORY, klass, os.cpu_count(), base)
        catalogue = _catalogue(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    record = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU; Python {sys.version.split()[0]}",
        "sandbox": describe(),
        "note": "Other jobs may share the cores: see each run's load averages (1, 5, 15 min; 2 means both "
                "cores busy).",
        "full_course_submission": {"assignments": sorted(assignments), **course_timing, "target_seconds": 90,
                                   "outcomes": course_outcomes},
        "class": {"students": args.class_size, "assignment": "01-architecture", "serial": serial,
                  "parallel": parallel, "speedup": round(serial["seconds"] / parallel["seconds"], 2),
                  "target_speedup": 1.7, "same_grades": serial_outcomes == parallel_outcomes},
        "peak_driver_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "hostile_catalogue": catalogue,
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as handle:
        json.dump(record, handle, indent=1)
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
