"""The prepared GPU check: stages in parts, each part one call of the `device` tool on a bare GPU machine.

A device call may run 7 minutes; a part's stages have time limits that add up to at most
:data:`PART_SECONDS` (380 s), which leaves the wheel install, the machine's start and the transfers their
margin. Each stage is a subprocess with its own limit; the JSON is rewritten after every stage, so a stage
that runs out of time still leaves the others'. **The exit status is not 0 unless every stage of the part
succeeded** (a stage that failed, timed out or was skipped for the deadline fails the run, and the last
lines name each); ``run.sh`` also stops before any stage when the environment is incomplete.

The split (two calls make the check, a third adds the rest when device time is left):

1. ``--part 1`` (speed, same call, same clock): ``train_512``, this project's R50-FPN from scratch at 512 px,
   batch 16, ``mixed_bfloat16``, and ``peer_kerashub_512``, KerasHub's ``RetinaNetObjectDetector.fit()`` at
   the same settings; ``train_paper_512`` and ``peer_kerashub_paper_512``: the paper's recipe (ResNet50's
   stem, stage 2 and batch norm frozen, Detectron ``FREEZE_AT = 2``) on both sides, batch 16;
2. ``--part 2`` (quality): ``inference``, ms/image at 512 and 800 px, batch 1, incl. decoding and NMS (80
   classes; the paper's threshold and every candidate, on one compiled model per case); ``shapes_*``, a
   short training on the synthetic shapes at 512 px scored with COCO mAP; ``tests``, the backend-neutral
   tests of the core on JAX on the GPU (NMS, decoding, parity with the TensorFlow implementation, the step);
3. ``--part 3`` (more): the paper's recipe at batch 32 on both sides (``train_paper_512_b32``,
   ``peer_kerashub_paper_512_b32``), the input pipeline's img/s, float32 at 512 px and bf16 at 800 px.

Both sides are timed by the same clock: one whole ``fit()`` call of the timed steps after a warm-up call, no
per-step synchronisation, ended once the trained state has arrived
(:func:`retinanet.tools.benchmark.fit_call_seconds`; ``--clock fit_call``; the peer through
``benchmarks/gpu/kerashub_peer.py``).

Usage (from the repository root; ``run.sh`` installs and checks the carried wheels first)::

    bash benchmarks/gpu/run.sh --part 1                 # then --part 2 (and --part 3)
    bash benchmarks/gpu/run.sh --smoke --part all       # every stage at tiny sizes, on a CPU with JAX

``--smoke`` shrinks every stage (tiny images, few steps; the paper's 256-channel network in bfloat16 too)
so that the script can be tried on a CPU with JAX; ``--no-peer`` leaves the KerasHub stages out (reported as
such, not as measured). The result is ``<out>/gpu-<device>-part<N>.json`` (``$OUT`` on the device machine,
else ``benchmarks/``).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEER = os.path.join(REPOSITORY, "benchmarks", "gpu", "kerashub_peer.py")

PART_SECONDS = 380
"""The stages of one part may take at most this long together (a device call is 7 minutes at most)."""

PEER_STAGE = re.compile(r"^peer_")


def stage_plan(smoke):
    """``{part: [(stage name, limit in seconds, what it runs)]}``; what it runs is a tuple the runner reads."""
    if smoke:
        size, big, batch, batch32, steps = 64, 96, 2, 4, 2
        ours, more = "resnet50", "light"
        inference = "light:64:float32,resnet50:64:bfloat16"
        pipeline, shapes = "64:4", (64, 4, 2, ["--train", "16", "--val", "0", "--test", "4"])
    else:
        size, big, batch, batch32, steps = 512, 800, 16, 32, 40
        ours, more = "resnet50", "resnet50"
        inference = "resnet50:512:float32,resnet50:800:float32,resnet50:800:bfloat16"
        pipeline, shapes = "512:16", (512, 1200, 16, ["--train", "1200", "--val", "0", "--test", "200"])
    precision = "bfloat16"  # the smoke runs the paper's network in bfloat16 too (on a CPU: slow but faithful)
    peer_policy = "mixed_bfloat16"
    return {
        "1": [("train_512", 95, ("benchmark", ["--train", f"{ours}:{size}:{batch}:{precision}", "--steps", str(steps),
                                               "--recipe", "paper"])),
              ("peer_kerashub_512", 80, ("peer", [str(size), str(batch), str(steps), peer_policy])),
              ("train_paper_512", 90, ("benchmark", ["--train", f"resnet50:{size}:{batch}:{precision}", "--steps",
                                                     str(steps), "--recipe", "paper", "--frozen"])),
              ("peer_kerashub_paper_512", 80, ("peer", [str(size), str(batch), str(steps), peer_policy, "--frozen"]))],
        "2": [("inference", 85, ("inference", ["--inference", inference, "--inference-runs", "20", "--recipe",
                                               "paper"])),
              ("shapes_data", 35, ("shapes_data", shapes)),
              ("shapes_train", 130, ("shapes_train", shapes)),
              ("shapes_evaluate", 40, ("shapes_evaluate", shapes)),
              ("tests", 85, ("tests", SMOKE_TESTS if smoke else TESTS))],
        "3": [("train_paper_512_b32", 95, ("benchmark", ["--train", f"resnet50:{size}:{batch32}:{precision}",
                                                         "--steps", str(steps), "--recipe", "paper", "--frozen"])),
              ("peer_kerashub_paper_512_b32", 85, ("peer", [str(size), str(batch32), str(steps), peer_policy,
                                                            "--frozen"])),
              ("pipeline", 40, ("pipeline", ["--pipeline", pipeline, "--pipeline-batches", "40"])),
              ("train_more", 150, ("benchmark", ["--train", f"{ours}:{size}:{batch}:float32,{more}:{big}:{batch // 2}:"
                                                            f"{precision}", "--steps", str(steps), "--recipe", "paper"]))],
    }


TESTS = ["paper/test_boxes", "paper/test_matching", "paper/test_losses", "paper/test_nms", "paper/test_postprocess",
         "paper/test_legacy_parity", "run/test_training", "run/test_inference"]
"""The backend-neutral tests of the core that the ``tests`` stage runs on the GPU."""

SMOKE_TESTS = ["paper/test_boxes", "paper/test_nms", "run/test_inference"]
"""What the ``tests`` stage runs with ``--smoke``: a CPU shared with others needs more than the stage's time
for all of :data:`TESTS` (a smoke tries the stage, the GPU runs the suite)."""


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("1", "2", "3", "all"), required=True,
                        help="which part's stages (1, 2, 3: one device call each; all: every stage, for --smoke)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to try the script on a CPU with JAX")
    parser.add_argument("--no-peer", action="store_true", help="leave the KerasHub stages out (keras-hub absent)")
    parser.add_argument("--stages", help="only these stages of the part, comma-separated")
    parser.add_argument("--deadline", type=float, default=PART_SECONDS,
                        help=f"seconds for the part's stages (default {PART_SECONDS})")
    parser.add_argument("--limit-scale", type=float, default=None,
                        help="multiply every stage's limit and the deadline (default 1; 4 with --smoke: a CPU compiles "
                             "the paper's network far more slowly than a GPU runs it)")
    parser.add_argument("--scratch", default=os.environ.get("TMPDIR", "/tmp"), help="a folder for data and runs")
    parser.add_argument("--out", default=os.environ.get("OUT") or os.path.join(REPOSITORY, "benchmarks"))
    args = parser.parse_args(argv)
    if args.part == "all" and not args.smoke:
        parser.error("--part all is for --smoke: on a GPU one part fits one device call")
    if args.limit_scale is None:
        args.limit_scale = 4.0 if args.smoke else 1.0
    return args


class Check:
    """Runs the stages and keeps the JSON report up to date."""

    def __init__(self, out, deadline, part):
        self.started = time.monotonic()
        self.deadline = deadline
        self.out = out
        self.report = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "part": part,
                       "load_average_before": os.getloadavg(), "stages": {}}
        self.path = os.path.join(out, f"gpu-check-part{part}.json")

    def seconds_left(self):
        return self.deadline - (time.monotonic() - self.started)

    def run(self, name, command, limit, env=None):
        """Run ``command`` (a list) for at most ``limit`` seconds (less if the deadline is nearer); returns
        its stdout, or ``None`` after recording why it did not finish."""
        limit = min(limit, self.seconds_left())
        stage = self.report["stages"].setdefault(name, {})
        if limit < 10:
            stage["status"] = "skipped: the part's deadline was reached"
            self.save()
            return None
        print(f"== {name} (at most {limit:.0f} s): {' '.join(command)}", flush=True)
        started = time.monotonic()
        try:
            completed = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=limit,
                                       env={**os.environ, **(env or {})})
        except subprocess.TimeoutExpired as expired:
            tail = expired.stdout or ""
            tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
            stage.update(status=f"timed out after {limit:.0f} s", tail=tail[-2000:])
            self.save()
            return None
        stage["seconds"] = round(time.monotonic() - started, 1)
        print(completed.stdout[-3000:], completed.stderr[-3000:], sep="\n", flush=True)
        if completed.returncode != 0:
            stage.update(status=f"failed with exit code {completed.returncode}", tail=completed.stderr[-3000:])
            self.save()
            return None
        stage["status"] = "ok"
        self.save()
        return completed.stdout

    def result(self, name, value):
        self.report["stages"][name]["result"] = value
        self.save()

    def save(self):
        self.report["elapsed_seconds"] = round(time.monotonic() - self.started, 1)
        os.makedirs(self.out, exist_ok=True)
        with open(self.path, "w") as f:
            json.dump(self.report, f, indent=1)

    def failures(self):
        return [f"{name}: {stage['status']}" for name, stage in self.report["stages"].items()
                if stage.get("status") != "ok" and not stage.get("status", "").startswith("left out")]

    def rename_for_device(self):
        accelerators = self.report.get("device", {}).get("accelerators") or ["cpu"]
        slug = re.sub(r"[^a-z0-9-]+", "-", accelerators[0].lower()).strip("-")
        final = os.path.join(self.out, f"gpu-{slug}-part{self.report['part']}.json")
        os.replace(self.path, final)
        return final


def run_stage(check, name, limit, kind, arguments, scratch):
    python = [sys.executable, "-m", "retinanet"]
    if kind in ("benchmark", "inference", "pipeline"):
        output = os.path.join(scratch, f"{name}.json")
        base = {"benchmark": ["--clock", "fit_call", "--pipeline", "none", "--inference", "none"],
                "inference": ["--train", "none", "--pipeline", "none"],
                "pipeline": ["--train", "none", "--inference", "none", "--data-root",
                             os.path.join(scratch, "pipeline-shapes")]}[kind]
        if check.run(name, [*python, "benchmark", *base, *arguments, "--output", output], limit) is not None:
            with open(output) as f:
                result = json.load(f)
            check.report.setdefault("device", result["device"])
            check.report.setdefault("versions", result["versions"])
            check.result(name, result)
    elif kind == "peer":
        stdout = check.run(name, [sys.executable, PEER, *arguments], limit)
        if stdout is not None:
            check.result(name, json.loads(stdout.strip().splitlines()[-1]))
    elif kind.startswith("shapes_"):
        shapes_stage(check, name, limit, kind, arguments, scratch)
    elif kind == "tests":
        check.run(name, [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                         *[f"test_suite/{test}.py" for test in arguments]], limit)
    else:
        raise ValueError(kind)


def shapes_stage(check, name, limit, kind, shapes, scratch):
    """Make the shapes, train from scratch, score with COCO mAP on the held-out test split."""
    size, steps, batch, sizes = shapes
    data, run = os.path.join(scratch, "shapes"), os.path.join(scratch, "shapes-run")
    python = [sys.executable, "-m", "retinanet"]
    if kind == "shapes_data":
        check.run(name, [*python, "make-data", "--root", data, "--image-size", str(size), *sizes,
                         "--min-object-size", "0.05", "--max-object-size", "0.6"], limit)
    elif kind == "shapes_train":
        check.run(name, [*python, "train", "--annotations", f"{data}/annotations/train.json", "--images",
                         f"{data}/train", "--run-dir", run, "--image-size", str(size), "--batch-size", str(batch),
                         "--steps", str(steps), "--backbone", "resnet50", "--backbone-weights", "none", "--head-init",
                         "he", "--optimizer", "adamw", "--learning-rate", "0.001", "--warmup-steps",
                         str(max(steps // 15, 1)), "--checkpoint-every", str(steps), "--log-every",
                         str(max(steps // 10, 1)), "--workers", "12", "--no-progress", "--mixed-precision",
                         "bfloat16"], limit)
    else:
        output = os.path.join(scratch, "shapes-evaluation.json")
        if check.run(name, [*python, "evaluate", "--run-dir", run, "--annotations", f"{data}/annotations/test.json",
                            "--images", f"{data}/test", "--output", output], limit) is None:
            return
        with open(output) as f:
            metrics = json.load(f)
        with open(os.path.join(run, "history.csv")) as f:
            history = f.read().strip().splitlines()
        check.result(name, {"mAP50": metrics["mAP50"], "mAP": metrics["mAP"], "per_class": metrics["per_class"],
                            "image_size": size, "steps": steps, "batch_size": batch,
                            "recipe": "ResNet50 from scratch, 256-channel He-initialised subnets, AdamW 1e-3, "
                                      "no scale jitter, bf16", "history_tail": history[-3:]})


def main(argv=None):
    args = parse_arguments(argv)
    plan = stage_plan(args.smoke)
    parts = list(plan) if args.part == "all" else [args.part]
    stages = [stage for part in parts for stage in plan[part]]
    if args.stages:
        wanted = args.stages.split(",")
        unknown = sorted(set(wanted) - {stage[0] for stage in stages})
        if unknown:
            raise SystemExit(f"run.py: no stage {', '.join(unknown)} in part {args.part}")
        stages = [stage for stage in stages if stage[0] in wanted]
    check = Check(args.out, args.deadline * len(parts) * args.limit_scale, args.part)
    check.report.update(smoke=args.smoke, clock="fit_call: one whole fit() call per side, waited for at its end")
    os.makedirs(args.scratch, exist_ok=True)
    for name, limit, (kind, arguments) in stages:
        if args.no_peer and PEER_STAGE.match(name):
            check.report["stages"][name] = {"status": "left out by --no-peer"}
            continue
        try:
            run_stage(check, name, limit * args.limit_scale, kind, arguments, args.scratch)
        except (OSError, ValueError, KeyError) as error:  # the stage ran but its result cannot be read
            check.report["stages"][name].update(status=f"failed: {type(error).__name__}: {error}")
            check.save()
    check.report["load_average_after"] = os.getloadavg()
    check.save()
    print(f"report: {check.rename_for_device()}")
    failures = check.failures()
    if failures:
        print(f"run.py: {len(failures)} stage(s) of part {args.part} did not succeed:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    print(f"run.py: every stage of part {args.part} succeeded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
