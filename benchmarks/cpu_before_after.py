"""Training speed on this CPU, TensorFlow backend: an earlier commit against the working tree, in one run.

Each side trains the old ``make demo`` configuration (light backbone, 256-channel subnets initialised as
the paper says, 96 px, batch 8, scale jitter ×[0.75, 1.25], the embedded shapes; the working tree's own
defaults became the lighter CPU recipe later, so it gets :data:`SAME_WORK_FLAGS`) for ``--steps`` steps through its own command line, in a fresh process; the sides alternate for
``--repeats`` rounds, so that a change of machine load hits both. Two figures per run: the median of the
steady-state ``images_per_second`` windows of its ``history.csv`` (the first window, which includes
tracing, is left out), and the CPU seconds (user + system) the whole process used, which other jobs on
the machine disturb much less than wall time. The verdict is the ratio of the two sides' medians.

    .venv/bin/python benchmarks/cpu_before_after.py [--before d9564ca] [--steps 120] [--repeats 3]

The earlier commit is checked out with ``git worktree`` into a temporary folder and run with the same
environment. Writes ``benchmarks/cpu-before-after.json``.
"""

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAST_TENSORFLOW_ONLY_COMMIT = "d9564ca"
SAME_WORK_FLAGS = ["--image-size", "96", "--head-channels", "256", "--head-init", "paper", "--jitter-min", "0.75",
                   "--jitter-max", "1.25"]
"""What the working tree needs to train what the earlier commit's defaults train."""


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=LAST_TENSORFLOW_ONLY_COMMIT, help="git revision of the 'before' side")
    parser.add_argument("--steps", type=int, default=120, help="training steps per run (default 120)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of before/after (default 3)")
    parser.add_argument("--output", default=os.path.join(REPOSITORY, "benchmarks", "cpu-before-after.json"))
    return parser.parse_args()


def steady_images_per_second(run_dir):
    with open(os.path.join(run_dir, "history.csv")) as f:
        rates = [float(row["images_per_second"]) for row in csv.DictReader(f)]
    return statistics.median(rates[1:])


def train(tree, data_root, run_dir, steps, extra_flags=()):
    command = [sys.executable, "-m", "retinanet", "train", "--annotations", f"{data_root}/annotations/train.json",
               "--images", f"{data_root}/train", "--run-dir", run_dir, "--steps", str(steps),
               "--checkpoint-every", str(steps), "--log-every", "10", "--backbone", "light", "--no-progress", *extra_flags]
    started, usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, cwd=tree, check=True, capture_output=True, text=True,
                   env={**os.environ, "PYTHONPATH": tree, "KERAS_BACKEND": "tensorflow"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
    return time.perf_counter() - started, cpu_seconds


def main():
    from retinanet.tools.benchmark import cpu_model

    args = parse_arguments()
    scratch = tempfile.mkdtemp(prefix="before-after-")
    before_tree = os.path.join(scratch, "before")
    subprocess.run(["git", "worktree", "add", "--detach", before_tree, args.before], cwd=REPOSITORY, check=True,
                   capture_output=True)
    data_root = os.path.join(scratch, "shapes")
    subprocess.run([sys.executable, "-m", "retinanet", "make-data", "--root", data_root], cwd=REPOSITORY, check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": REPOSITORY})
    sides = {"before": before_tree, "after": REPOSITORY}
    runs = {side: [] for side in sides}
    load = [os.getloadavg()[0]]
    try:
        for repeat in range(args.repeats):
            for side, tree in sides.items():
                run_dir = os.path.join(scratch, f"{side}-{repeat}")
                seconds, cpu_seconds = train(tree, data_root, run_dir, args.steps,
                                             SAME_WORK_FLAGS if side == "after" else ())
                rate = steady_images_per_second(run_dir)
                runs[side].append({"images_per_second": round(rate, 2), "seconds_per_step": round(8 / rate, 4),
                                   "wall_seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1),
                                   "load_average": os.getloadavg()[0]})
                print(f"{side:6s} round {repeat + 1}: {8 / rate:.3f} s/step ({rate:.1f} img/s), whole run "
                      f"{seconds:.0f} s wall, {cpu_seconds:.0f} CPU-s, load {os.getloadavg()[0]:.2f}", flush=True)
                load.append(os.getloadavg()[0])
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", before_tree], cwd=REPOSITORY, capture_output=True)
    medians = {side: statistics.median(r["images_per_second"] for r in values) for side, values in runs.items()}
    cpu = {side: statistics.median(r["cpu_seconds"] for r in values) for side, values in runs.items()}
    report = {
        "what": "the old demo training configuration (light backbone, 256-channel subnets, 96 px, batch 8, scale "
                "jitter) on both sides, TensorFlow backend, steady-state "
                "images/s per run (median of 10-step windows after the first)",
        "cpu": cpu_model(), "cpu_cores": os.cpu_count(), "before": args.before, "after": "working tree",
        "steps": args.steps, "runs": runs, "median_images_per_second": medians,
        "after_over_before": round(medians["after"] / medians["before"], 3),
        "median_cpu_seconds_per_run": cpu, "cpu_seconds_after_over_before": round(cpu["after"] / cpu["before"], 3),
        "load_average_range": [min(load), max(load)], "date": time.strftime("%Y-%m-%d"),
    }
    with open(args.output, "w") as f:
        json.dump(report, f, indent=1)
    print(f"after / before = {report['after_over_before']:.3f} (median img/s {medians['after']:.1f} vs "
          f"{medians['before']:.1f}); CPU seconds per run {cpu['after']:.0f} vs {cpu['before']:.0f}; on "
          f"{report['cpu']}; written to {args.output}")


if __name__ == "__main__":
    main()
