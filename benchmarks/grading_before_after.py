"""Grading time of one correct submission: an earlier checkout against this one, interleaved in one run.

    python benchmarks/grading_before_after.py --before /tmp/before [--assignment 01-architecture] [--rounds 3]

``--before`` is another checkout of the course with its own ``.venv`` (``git worktree add /tmp/before
<commit> && make -C /tmp/before venv``). Each round grades the same correct submission (every solution
cell filled in) with each checkout's own Python, grader and checks, in the full sandbox, one job, in
alternating order; the JSON (``benchmarks/grading-before-after.json``) has every round's wall seconds,
the load averages around it and the CPU model, so figures are compared only within one run.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

GRADE = """
import json, sys, time
from autograder.driver import grade_class
started = time.monotonic()
records, _ = grade_class(sys.argv[1], sys.argv[2], sys.argv[3], jobs=1, progress=False)  # the default Limits()
print(json.dumps({"seconds": round(time.monotonic() - started, 2),
                  "outcomes": sorted([r.student, r.assignment, r.score, r.max_score, r.status] for r in records)}))
"""


def cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def write_submission(checkout, folder, assignment):
    """A correct submission of ``assignment`` made from ``checkout``'s own notebooks."""
    code = (f"import sys; sys.path[:0] = [{os.path.join(checkout, 'test_suite')!r}, "  # the toy course: flat or
            f"{os.path.join(checkout, 'test_suite', 'grading')!r}]; "  # in grading/ (since the suite has folders)
            "import nbformat, os; from test_grading_course import completed_exercise; "
            f"_, nb = completed_exercise({assignment!r}, {assignment.split('-', 1)[1]!r}); "
            f"os.makedirs({os.path.join(folder, 'learner', assignment)!r}, exist_ok=True); "
            f"nbformat.write(nb, {os.path.join(folder, 'learner', assignment, assignment.split('-', 1)[1] + '.ipynb')!r})")
    subprocess.run([os.path.join(checkout, ".venv", "bin", "python"), "-c", code], cwd=checkout, check=True,
                   capture_output=True)


def grade(checkout, submissions, base):
    out = tempfile.mkdtemp(dir=base)
    load = [round(x, 2) for x in os.getloadavg()]
    result = subprocess.run([os.path.join(checkout, ".venv", "bin", "python"), "-c", GRADE, checkout, submissions, out],
                            cwd=checkout, check=True, capture_output=True, text=True)
    record = json.loads(result.stdout.strip().splitlines()[-1])
    record["load_average_before"] = load
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="another checkout of the course, with its .venv")
    parser.add_argument("--assignment", default="01-architecture")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default=os.path.join(REPOSITORY, "benchmarks", "grading-before-after.json"))
    args = parser.parse_args(argv)
    sides = {"before": os.path.abspath(args.before), "after": REPOSITORY}
    commits = {name: subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip() for name, path in sides.items()}
    base = tempfile.mkdtemp(prefix="grading-before-after-")
    submissions = {}
    for name, path in sides.items():
        submissions[name] = os.path.join(base, f"submitted-{name}")
        write_submission(path, submissions[name], args.assignment)
    rounds = []
    for index in range(args.rounds):
        order = ("before", "after") if index % 2 == 0 else ("after", "before")
        rounds.append({name: grade(sides[name], submissions[name], base) for name in order})
        print(json.dumps(rounds[-1]), flush=True)
    median = {name: sorted(r[name]["seconds"] for r in rounds)[len(rounds) // 2] for name in sides}
    record = {
        "machine": f"{cpu_model()}, {os.cpu_count()} cores, no GPU; Python {sys.version.split()[0]}",
        "what": f"one correct {args.assignment} submission, one job, full sandbox, wall seconds of grade_class",
        "commits": commits, "note": "before = HEAD without the uncommitted changes when run from a work tree",
        "rounds": rounds, "median_seconds": median,
        "after_over_before": round(median["after"] / median["before"], 2),
        "date": time.strftime("%Y-%m-%d"),
    }
    with open(args.output, "w") as handle:
        json.dump(record, handle, indent=1)
    print(json.dumps({k: record[k] for k in ("machine", "median_seconds", "after_over_before")}, indent=1))


if __name__ == "__main__":
    main()
