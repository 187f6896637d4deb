"""Command line: ``python -m retinanet.grading --submissions DIR --out DIR`` (``make grade``)."""

import argparse
import json
import sys

from .driver import GradingError, grade_class
from .intake import SubmissionError
from .sandbox import Limits


def parse_args(argv):
    defaults = Limits()
    parser = argparse.ArgumentParser(
        prog="python -m retinanet.grading",
        description="Autograde every submission with nbgrader, in parallel and sandboxed; write "
        "OUT/grades.csv, the class gradebook OUT/gradebook.db and feedback in OUT/feedback/.",
    )
    parser.add_argument("--submissions", required=True,
                        help="nbgrader layout DIR/<student>/<assignment>/*.ipynb, or an LMS export: "
                        "DIR/<student>[_anything].ipynb or .zip (then also pass --assignment)")
    parser.add_argument("--out", required=True, help="grading folder (created; reruns update it)")
    parser.add_argument("--course", default=".", help="the course repository (default: .)")
    parser.add_argument("--assignment", action="append",
                        help="grade only this assignment (repeatable; default: every submitted one)")
    parser.add_argument("--layout", choices=("auto", "nbgrader", "lms"), default="auto")
    parser.add_argument("--jobs", type=int, default=None,
                        help="submissions graded at once (default: CPU count)")
    parser.add_argument("--wall-seconds", type=int, default=defaults.wall_seconds,
                        help=f"per submission: one student's assignment (default {defaults.wall_seconds})")
    parser.add_argument("--cell-timeout", type=int, default=defaults.cell_timeout,
                        help=f"per notebook cell (default {defaults.cell_timeout})")
    parser.add_argument("--memory-gb", type=float, default=defaults.memory_gb,
                        help=f"per kernel (default {defaults.memory_gb})")
    parser.add_argument("--no-isolation", action="store_true",
                        help="skip namespaces and the separate user id even when running as root")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    limits = Limits(wall_seconds=args.wall_seconds, cell_timeout=args.cell_timeout, memory_gb=args.memory_gb)
    try:
        outcomes, summary = grade_class(
            args.course, args.submissions, args.out, assignments=args.assignment, layout=args.layout,
            jobs=args.jobs, limits=limits, isolate=False if args.no_isolation else None,
            progress=not args.quiet,
        )
    except (GradingError, SubmissionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    width = max([len(o.student) for o in outcomes] + [7])
    print(f"\n{'student':<{width}}  {'assignment':<18} {'score':>11}  status")
    for o in sorted(outcomes, key=lambda o: (o.student, o.assignment)):
        print(f"{o.student:<{width}}  {o.assignment:<18} {o.score:>5g}/{o.max_score:<5g}  {o.status}")
    print("\nSummary: " + json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
