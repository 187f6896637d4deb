"""Command line: ``python -m autograder grade|merge|export|schedule|exercises|release`` (``make grade``,
``make exercises``, ``make release``).

``grade``     grade submissions into a grading folder (``--student``, ``--assignment``, ``--shard i/n``)
``merge``     merge the grading folders of shards into one
``export``    grades.csv, Canvas and Moodle CSVs (filled into the LMS's own files when given) and per-student
              feedback packages from a grading folder, after remaking the feedback a manual grade made stale
``schedule``  write the course's due dates (``c.Schedule.due``) into its own gradebook, for plain nbgrader
``exercises`` generate ``exercises/`` from ``solutions/`` in a temporary folder; replace them only on success
``release``   the learner release: exercises, ``tests.py``, the packages they import, no solutions (folder + zip)

Exit codes: 0 the command ran (outcomes are in the CSV and the gradebook, never in the exit code); 2 it
was misused or could not run, with a one-line message (among them: another grader holds the grading folder,
see :mod:`autograder.grades.lock`; ``grade --wait`` waits for it instead); 130 it was stopped by Ctrl-C or
SIGTERM, with a one-line message saying what it left (``grade``: the whole class's ``grades.csv``, with
``not-graded`` rows).
"""

import argparse
import contextlib
import json
import os
import sys

from nbgrader.coursedir import CourseDirectory

from .course import GradingError, GradingInterrupted, load_config, put_environment_bin_on_path
from .driver import grade_class
from .grades.export import export
from .grades.lock import FolderLock
from .grades.schedule import apply_due_dates, lms_timezone, read_schedule
from .grades.shards import merge
from .intake.intake import SubmissionError
from .intake.layouts import LAYOUTS
from .release import build_release, generate_exercises
from .sandbox.sandbox import Limits


def _shard(text):
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard wants I/N (e.g. 2/8), not {text!r}") from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"--shard {text}: I must be between 1 and N")
    return index, count


def _grade_arguments(parser):
    defaults = Limits()
    parser.add_argument("--submissions", required=True,
                        help="nbgrader layout DIR/<student>/<assignment>/*.ipynb, or an LMS export of one "
                        "assignment (Moodle, Canvas, Blackboard, or flat <student>[_anything].ipynb/.zip), unzipped "
                        "or the LMS's zip itself")
    parser.add_argument("--out", required=True, help="grading folder (created; reruns update it)")
    parser.add_argument("--course", default=".", help="the course repository (default: .)")
    parser.add_argument("--assignment", action="append",
                        help="grade only this assignment (repeatable; default: every submitted one)")
    parser.add_argument("--student", action="append", help="grade only this student (repeatable)")
    parser.add_argument("--shard", type=_shard, help="I/N: grade only shard I of N of the students")
    parser.add_argument("--layout", choices=("auto",) + LAYOUTS, default="auto")
    parser.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: CPU count)")
    parser.add_argument("--wall-seconds", type=int, default=defaults.wall_seconds,
                        help=f"per submission: one student's assignment (default {defaults.wall_seconds})")
    parser.add_argument("--cell-timeout", type=int, default=defaults.cell_timeout,
                        help=f"per notebook cell (default {defaults.cell_timeout})")
    parser.add_argument("--memory-gb", type=float, default=defaults.memory_gb,
                        help=f"per kernel (default {defaults.memory_gb})")
    parser.add_argument("--cpu-seconds", type=int, default=defaults.cpu_seconds,
                        help=f"CPU time per kernel (default {defaults.cpu_seconds})")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run kernels without bubblewrap: only for notebooks you trust (your own solutions)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--wait", action="store_true", help="when another grader is grading into --out, wait "
                        "for it to finish (default: refuse at once, naming it)")
    parser.add_argument("--moodle-worksheet", metavar="CSV", help="the assignment's grading worksheet downloaded from "
                        "Moodle: submission times (Last modified (submission)) and extensions of a Moodle download, "
                        "for late policies (times in c.Schedule.lms_timezone)")


def _grade(args):
    limits = Limits(wall_seconds=args.wall_seconds, cell_timeout=args.cell_timeout, memory_gb=args.memory_gb,
                    cpu_seconds=args.cpu_seconds)
    records, summary = grade_class(
        args.course, args.submissions, args.out, assignments=args.assignment, students=args.student,
        shard=args.shard, layout=args.layout, jobs=args.jobs, limits=limits, sandboxed=not args.no_sandbox,
        progress=not args.quiet, wait=args.wait, moodle_worksheet=args.moodle_worksheet)
    width = max([len(r.student) for r in records] + [7])
    print(f"\n{'student':<{width}}  {'assignment':<18} {'score':>11}  status")
    for r in sorted(records, key=lambda r: (r.student, r.assignment)):
        print(f"{r.student:<{width}}  {r.assignment:<18} {r.score:>5g}/{r.max_score:<5g}  {r.status}")
    print("\nSummary: " + json.dumps(summary, indent=1))


def _merge(args):
    os.makedirs(args.out, exist_ok=True)
    with contextlib.ExitStack() as locks:  # the class folder, and no shard that is still being graded
        for folder in dict.fromkeys(os.path.realpath(f) for f in [args.out, *args.shards] if os.path.isdir(f)):
            locks.enter_context(FolderLock(folder, what="merge"))
        count = merge(args.out, args.shards)
    print(f"Merged {count} submissions from {len(args.shards)} shards into {args.out}; grades in "
          f"{os.path.join(args.out, 'grades.csv')}")


def _pairs(values, option, default_key=None):
    """``{assignment: value}`` from repeated ``[ASSIGNMENT=]VALUE`` options (``default_key`` for a bare VALUE)."""
    pairs = {}
    for text in values or ():
        key, sep, value = text.partition("=")
        if not sep or os.path.exists(text):
            key, value = default_key, text
        if key is None:
            raise GradingError(f"{option} {text!r}: say which assignment, as {option} ASSIGNMENT=VALUE (the grading "
                               "folder has more than one)")
        pairs[key] = value
    return pairs


def _export(args):
    if not os.path.isfile(os.path.join(args.out, "gradebook.db")):
        raise GradingError(f"{args.out!r} is not a grading folder (no gradebook.db): grade into it first.")
    try:
        config = load_config(os.path.realpath(args.out))  # the grading folder's: the course's, as graded
        tz = lms_timezone(config)
    except ValueError as error:
        raise GradingError(f"{error} (nbgrader_config.py)") from None
    with FolderLock(args.out, what="export"):
        graded = sorted({name for name in os.listdir(os.path.join(args.out, "source"))}
                        if os.path.isdir(os.path.join(args.out, "source")) else [])
        only = graded[0] if len(graded) == 1 else None
        for path in [*_pairs(args.moodle_worksheet, "--moodle-worksheet", only).values(),
                     *([args.canvas_gradebook] if args.canvas_gradebook else [])]:
            if not os.path.isfile(path):
                raise GradingError(f"{path!r} does not exist (an LMS file given to export).")
        written, notes = export(args.out, _pairs(args.moodle_worksheet, "--moodle-worksheet", only),
                                args.canvas_gradebook, _pairs(args.canvas_column, "--canvas-column"), tz,
                                regenerate=not args.no_regenerate, config=config)
    for note in notes:
        print(f"note: {note}")
    for path in written:
        print(path)


def _schedule(args):
    root = os.path.realpath(args.course)
    config = load_config(root)
    try:
        dates, policies = read_schedule(config)
    except ValueError as error:
        raise GradingError(f"{error} (nbgrader_config.py)") from None
    db_url = CourseDirectory(config=config, root=root).db_url
    apply_due_dates(db_url, dates)
    for assignment in sorted(set(dates) | set(policies)):
        due = dates[assignment].isoformat() + " UTC" if assignment in dates else "no due date"
        print(f"{assignment}: {due}, late policy {policies.get(assignment, 'LateSubmissionPlugin.penalty_method')}")
    if not dates:
        print("No due dates in c.Schedule.due (nbgrader_config.py): no submission is late.")


def _exercises(args):
    folder = generate_exercises(args.course, args.assignments)
    print(f"Generated {', '.join(args.assignments) or 'every assignment'} into {folder}")


def _release(args):
    folder, archive = build_release(args.course, args.out, args.zip)
    print(f"Learner release: {folder}" + (f" and {archive}" if archive else ""))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m autograder",
                                     description="Autograde a class with nbgrader, sandboxed and in parallel.")
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="grade submissions into a grading folder: grades.csv, the class "
                                "gradebook, feedback")
    _grade_arguments(grade)
    grade.set_defaults(run=_grade)
    merging = commands.add_parser("merge", help="merge the grading folders of shards (grade --shard i/n)")
    merging.add_argument("--out", required=True, help="the class's grading folder (created; merging again is safe)")
    merging.add_argument("shards", nargs="+", help="the shards' grading folders")
    merging.set_defaults(run=_merge)
    exporting = commands.add_parser("export", help="grades.csv, Canvas and Moodle CSVs, feedback per student")
    exporting.add_argument("--out", required=True, help="the grading folder (exports go to OUT/exports)")
    exporting.add_argument("--moodle-worksheet", action="append", metavar="[ASSIGNMENT=]CSV",
                           help="a grading worksheet downloaded from Moodle: exports/moodle-<assignment>.csv is it, "
                           "filled in (repeatable; ASSIGNMENT= may be left out when one assignment was graded)")
    exporting.add_argument("--canvas-gradebook", metavar="CSV", help="the gradebook exported from Canvas: "
                           "exports/canvas.csv is it, each assignment's column filled in")
    exporting.add_argument("--canvas-column", action="append", metavar="ASSIGNMENT=COLUMN",
                           help="the Canvas gradebook column of an assignment whose Canvas title is not its name "
                           "(the column's header, title or Canvas id; repeatable)")
    exporting.add_argument("--no-regenerate", action="store_true", help="refuse, naming the command, instead of "
                           "remaking feedback pages that a manual grade made stale")
    exporting.set_defaults(run=_export)
    schedule = commands.add_parser("schedule", help="write c.Schedule's due dates into the course's gradebook")
    schedule.add_argument("--course", default=".", help="the course repository (default: .)")
    schedule.set_defaults(run=_schedule)
    exercises = commands.add_parser("exercises", help="generate the exercises from the solutions (nbgrader "
                                    "generate_assignment in a temporary folder; replaced only on success)")
    exercises.add_argument("--course", default=".", help="the course repository (default: .)")
    exercises.add_argument("assignments", nargs="*", help="the assignments (default: every one in solutions/)")
    exercises.set_defaults(run=_exercises)
    release = commands.add_parser("release", help="the learner release: exercises, tests.py, the packages they "
                                  "import, no solutions or hidden tests")
    release.add_argument("--course", default=".", help="the course repository (default: .)")
    release.add_argument("--out", default="release", help="the release folder (replaced; default: release)")
    release.add_argument("--zip", help="also write this zip of the release folder")
    release.set_defaults(run=_release)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    put_environment_bin_on_path()  # nbgrader's gradebook runs this environment's alembic
    try:
        args.run(args)
    except (GradingError, SubmissionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except GradingInterrupted as stopped:
        print(f"autograder: {stopped}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # before grade's own handling began, or merge, export, schedule: rerun them
        print("\nautograder: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
