"""The prepared GPU check: one call of the `device` tool, at most ~7 minutes, on a bare GPU machine.

Stages, in order of importance, each a subprocess with its own time limit inside one overall deadline;
the JSON is rewritten after every stage, so a stage that runs out of time still leaves the others':

1. ``train_512``: the reference R50-FPN, 512 px, batch 16, ``mixed_bfloat16``, ``fit()`` img/s — and
   ``peer_kerashub_512``: KerasHub's ``RetinaNetObjectDetector.fit()`` at the same settings, same call;
2. ``inference``: ms/image at 512 and 800 px, batch 1, including decoding and NMS (80 classes);
3. ``pipeline``: the input pipeline's img/s at 512 px (can it feed the step?); ``train_more``: float32 at
   512 px and bfloat16 at 800 px, batch 8;
4. ``shapes_512``: a short training on the synthetic shapes at 512 px, scored with COCO mAP;
5. ``tests``: the backend-neutral tests of the core (boxes, matching, losses, NMS, decoding, parity with the
   TensorFlow implementation, the training step) on JAX, on the GPU.

Usage (from the repository root; ``run.sh`` installs the carried wheels first)::

    python3 benchmarks/gpu/run.py [--smoke] [--deadline SECONDS] [--out DIR]

``--smoke`` shrinks every stage (tiny images, few steps) so that the script can be tried on a CPU with
JAX. The result is ``<out>/gpu-<device>.json`` (``$OUT`` on the device machine, else ``benchmarks/``).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEERS = os.path.join(REPOSITORY, ".gpu", "peers")


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to try the script on a CPU")
    parser.add_argument("--deadline", type=float, default=480.0, help="seconds for all stages (default 480)")
    parser.add_argument("--out", default=os.environ.get("OUT") or os.path.join(REPOSITORY, "benchmarks"))
    return parser.parse_args()


class Check:
    """Runs the stages and keeps the JSON report up to date."""

    def __init__(self, out, deadline):
        self.started = time.monotonic()
        self.deadline = deadline
        self.out = out
        self.report = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "stages": {}}
        self.path = os.path.join(out, "gpu-check.json")

    def seconds_left(self):
        return self.deadline - (time.monotonic() - self.started)

    def run(self, name, command, limit, env=None):
        """Run ``command`` (a list) for at most ``limit`` seconds (less if the deadline is nearer); returns
        its stdout, or ``None`` after recording why it did not finish."""
        limit = min(limit, self.seconds_left())
        stage = self.report["stages"].setdefault(name, {})
        if limit < 10:
            stage["status"] = "skipped: the overall deadline was reached"
            self.save()
            return None
        print(f"== {name} (at most {limit:.0f} s): {' '.join(command)}", flush=True)
        started = time.monotonic()
        try:
            completed = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=limit,
                                       env={**os.environ, **(env or {})})
        except subprocess.TimeoutExpired as expired:
            stage.update(status=f"timed out after {limit:.0f} s", tail=(expired.stdout or b"")[-2000:].decode(errors="replace")
                         if isinstance(expired.stdout, bytes) else (expired.stdout or "")[-2000:])
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

    def save(self):
        self.report["elapsed_seconds"] = round(time.monotonic() - self.started, 1)
        os.makedirs(self.out, exist_ok=True)
        with open(self.path, "w") as f:
            json.dump(self.report, f, indent=1)

    def rename_for_device(self):
        accelerators = self.report.get("device", {}).get("accelerators") or ["cpu"]
        slug = re.sub(r"[^a-z0-9-]+", "-", accelerators[0].lower()).strip("-")
        final = os.path.join(self.out, f"gpu-{slug}.json")
        os.replace(self.path, final)
        return final


def benchmark(check, name, arguments, limit, output):
    """One ``python -m retinanet benchmark`` run; its JSON goes into the report under ``name``."""
    stdout = check.run(name, [sys.executable, "-m", "retinanet", "benchmark", *arguments, "--output", output], limit)
    if stdout is not None:
        with open(output) as f:
            result = json.load(f)
        check.report.setdefault("device", result["device"])
        check.report.setdefault("versions", result["versions"])
        check.report["stages"][name]["result"] = result
        check.save()


def kerashub_peer(check, size, batch, steps, policy):
    stdout = check.run(f"peer_kerashub_{size}", [sys.executable, os.path.join(PEERS, "kerashub_retinanet.py"),
                                                 str(size), str(batch), str(steps), policy], 300,
                       env={"KERAS_BACKEND": "jax"})
    if stdout is not None:
        check.report["stages"][f"peer_kerashub_{size}"]["result"] = json.loads(stdout.strip().splitlines()[-1])
        check.save()


def shapes_training(check, smoke, scratch):
    """Make the shapes at 512 px, train from scratch, score with COCO mAP on the held-out test split."""
    size, steps, batch = (64, 4, 2) if smoke else (512, 1500, 16)
    sizes = ["--train", "16", "--val", "0", "--test", "4"] if smoke else ["--train", "2000", "--val", "0", "--test", "300"]
    data, run = os.path.join(scratch, "shapes"), os.path.join(scratch, "shapes-run")
    python = [sys.executable, "-m", "retinanet"]
    if check.run("shapes_data", [*python, "make-data", "--root", data, "--image-size", str(size), *sizes,
                                 "--min-object-size", "0.05", "--max-object-size", "0.6"], 90) is None:
        return
    train = [*python, "train", "--annotations", f"{data}/annotations/train.json", "--images", f"{data}/train",
             "--run-dir", run, "--image-size", str(size), "--batch-size", str(batch), "--steps", str(steps),
             "--backbone", "resnet50", "--backbone-weights", "none", "--head-init", "he", "--optimizer", "adamw",
             "--learning-rate", "0.001", "--warmup-steps", str(max(steps // 15, 1)),
             "--checkpoint-every", str(steps), "--log-every", str(max(steps // 10, 1)), "--workers", "12", "--no-progress"]
    if check.run("shapes_train", train, 200) is None:
        return
    output = os.path.join(scratch, "shapes-evaluation.json")
    if check.run("shapes_evaluate", [*python, "evaluate", "--run-dir", run, "--annotations",
                                     f"{data}/annotations/test.json", "--images", f"{data}/test",
                                     "--output", output], 90) is None:
        return
    with open(output) as f:
        metrics = json.load(f)
    with open(os.path.join(run, "history.csv")) as f:
        history = f.read().strip().splitlines()
    check.report["stages"]["shapes_evaluate"]["result"] = {
        "mAP50": metrics["mAP50"], "mAP": metrics["mAP"], "per_class": metrics["per_class"],
        "image_size": size, "steps": steps, "batch_size": batch, "recipe": "ResNet50 from scratch, 256-channel He-initialised subnets, AdamW 1e-3, "
                  "no scale jitter, bf16",
        "history_tail": history[-3:]}
    check.save()


def main():
    args = parse_arguments()
    check = Check(args.out, args.deadline)
    scratch = os.environ.get("TMPDIR", "/tmp")
    check.report["smoke"] = args.smoke
    if args.smoke:
        train_512, train_800, inference, pipeline = "resnet50:64:2", "light:64:2", "light:64,light:96", "64:4"
        peer, steps = (64, 2, 2, "float32"), "2"
    else:
        train_512, train_800, pipeline = "resnet50:512:16", "resnet50:800:8", "512:16"
        inference = "resnet50:512:float32,resnet50:800:float32,resnet50:800:bfloat16"
        peer, steps = (512, 16, 40, "mixed_bfloat16"), "40"
    data = ["--data-root", os.path.join(scratch, "pipeline-shapes")]
    nothing_else = ["--pipeline", "none", "--inference", "none"]
    json_path = lambda name: os.path.join(scratch, f"{name}.json")  # noqa: E731
    low_precision = "float32" if args.smoke else "bfloat16"
    benchmark(check, "train_512", ["--train", f"{train_512}:{low_precision}", "--steps", steps, *nothing_else],
              240, json_path("train_512"))
    kerashub_peer(check, *peer)
    benchmark(check, "inference", ["--train", "none", "--pipeline", "none", "--inference", inference,
                                   "--inference-runs", "20"], 150, json_path("inference"))
    benchmark(check, "pipeline", ["--train", "none", "--inference", "none", "--pipeline", pipeline,
                                  "--pipeline-batches", "40", *data], 90, json_path("pipeline"))
    benchmark(check, "train_more", ["--train", f"{train_512}:float32,{train_800}:{low_precision}", "--steps", steps,
                                    *nothing_else], 240, json_path("train_more"))
    shapes_training(check, args.smoke, scratch)
    core = ["paper/test_boxes", "paper/test_matching", "paper/test_losses", "paper/test_nms", "paper/test_postprocess",
            "paper/test_legacy_parity", "run/test_training"]
    check.run("tests", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        *[f"test_suite/{name}.py" for name in core]], 150, env={"KERAS_BACKEND": "jax"})
    print(f"report: {check.rename_for_device()}")


if __name__ == "__main__":
    main()
