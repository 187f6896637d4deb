"""ResNet50 RetinaNet training on this CPU against KerasHub's ``RetinaNetObjectDetector.fit()``, in one run.

Both sides train the R50-FPN RetinaNet at 256 px, batch 4, float32, from random weights on random images
with three random boxes each, on Keras' TensorFlow backend, each in a fresh process; the sides alternate
for ``--repeats`` rounds, so that a change of machine load hits both. The peer is
``../shared/peers/kerashub_retinanet.py`` (KerasHub 0.32.0, ``fit()``: 3 untimed steps, then ``--steps``
timed), run by ``--peer-python``, an environment with ``keras-hub`` installed (a scratch copy of this
project's, never its pins). This project's side times its training step as ``python -m retinanet train``
runs it on TensorFlow (``train_on_batch`` in a loop, see :func:`retinanet.train.run_steps`), 3 untimed
steps and then ``--steps`` timed, in two configurations:

- ``scratch``: every layer trains (what ``train --backbone resnet50`` does without ImageNet weights);
- ``finetune``: what it does with ImageNet weights, as the paper's codebase fine-tunes (Detectron:
  batch-norm statistics and affine parameters frozen, the stem and stage 2 frozen;
  :func:`retinanet.train.freeze_for_finetuning`).

The verdict is the ratio of the medians of the images/s. Writes ``benchmarks/kerashub-cpu.json``.

    .venv/bin/python benchmarks/kerashub_cpu.py --peer-python /tmp/khvenv/bin/python [--repeats 3] [--steps 6]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_SCRIPT = os.path.join(REPOSITORY, "..", "shared", "peers", "kerashub_retinanet.py")
IMAGE_SIZE, BATCH_SIZE, WARMUP_STEPS = 256, 4, 3
CONFIGURATIONS = ("scratch", "finetune")


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-python", help="a Python with keras-hub 0.32.0 and TensorFlow")
    parser.add_argument("--peer-script", default=PEER_SCRIPT, help="the peer's benchmark script")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per run (default 6, as the peer's README)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the three runs (default 3)")
    parser.add_argument("--output", default=os.path.join(REPOSITORY, "benchmarks", "kerashub-cpu.json"))
    parser.add_argument("--ours", choices=CONFIGURATIONS, help=argparse.SUPPRESS)  # one timed run, in a child
    return parser.parse_args()


def time_our_step(configuration, steps):
    """Images/s of this project's training step (TensorFlow, ``train_on_batch`` as ``train`` runs it)."""
    os.environ["KERAS_BACKEND"] = "tensorflow"
    from retinanet._keras import keras
    from retinanet.benchmark import random_batches
    from retinanet.train import TrainConfig, build_detector, freeze_for_finetuning, make_optimizer, resolve_auto

    keras.utils.set_random_seed(0)
    config = resolve_auto(TrainConfig("", "", "", steps=100_000, optimizer="sgd", backbone="resnet50"))
    detector = build_detector(4, IMAGE_SIZE, "resnet50", backbone_weights="none")
    if configuration == "finetune":
        freeze_for_finetuning(detector.retinanet.fpn.backbone)
    detector.compile(optimizer=make_optimizer(config)[0])
    images, ground_truth = random_batches(IMAGE_SIZE, BATCH_SIZE * (WARMUP_STEPS + steps), 4)

    def batch(index):
        rows = slice(index * BATCH_SIZE, (index + 1) * BATCH_SIZE)
        return images[rows], {key: value[rows] for key, value in ground_truth.items()}

    for index in range(WARMUP_STEPS):
        detector.train_on_batch(*batch(index))
    started = time.perf_counter()
    for index in range(WARMUP_STEPS, WARMUP_STEPS + steps):
        detector.train_on_batch(*batch(index))
    seconds = time.perf_counter() - started
    print(json.dumps({"img_per_s": round(BATCH_SIZE * steps / seconds, 3)}), flush=True)


def run_side(command, env):
    """``(images/s, process CPU seconds, wall seconds, load before)`` of one benchmark process."""
    load, started = os.getloadavg()[0], time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, env=env, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    return {"images_per_second": result["img_per_s"], "load_average": round(load, 2),
            "process_cpu_seconds": round(after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime, 1),
            "process_wall_seconds": round(time.perf_counter() - started, 1)}


def main():
    args = parse_arguments()
    if args.ours:
        return time_our_step(args.ours, args.steps)
    if not args.peer_python:
        sys.exit("give --peer-python: a Python with keras-hub (see ../shared/peers/README.md)")
    from retinanet.benchmark import cpu_model

    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPOSITORY}
    commands = {configuration: [sys.executable, os.path.abspath(__file__), "--ours", configuration,
                                "--steps", str(args.steps)] for configuration in CONFIGURATIONS}
    commands["kerashub"] = [args.peer_python, args.peer_script, str(IMAGE_SIZE), str(BATCH_SIZE), str(args.steps),
                            "float32"]
    runs = {side: [] for side in commands}
    for repeat in range(args.repeats):
        for side, command in commands.items():
            runs[side].append(run_side(command, env))
            print(f"round {repeat + 1}: {side:9s} {runs[side][-1]}", flush=True)
    medians = {side: statistics.median(run["images_per_second"] for run in rows) for side, rows in runs.items()}
    report = {
        "what": f"ResNet50-FPN RetinaNet training images/s at {IMAGE_SIZE} px, batch {BATCH_SIZE}, float32, random "
                "weights and boxes, TensorFlow backend; this project's step (train_on_batch, as `train` runs it) "
                "against KerasHub's RetinaNetObjectDetector.fit(), alternating runs, each a fresh process",
        "cpu": cpu_model(), "cpu_cores": os.cpu_count(), "timed_steps": args.steps, "warmup_steps": WARMUP_STEPS,
        "started_load_average": runs["kerashub"][0]["load_average"],
        "runs": runs, "median_images_per_second": medians,
        "ratio_scratch_to_kerashub": round(medians["scratch"] / medians["kerashub"], 2),
        "ratio_finetune_to_kerashub": round(medians["finetune"] / medians["kerashub"], 2),
    }
    with open(args.output, "w") as f:
        json.dump(report, f, indent=1)
    print(f"{report['cpu']}: this project {medians['scratch']:.2f} img/s from scratch, {medians['finetune']:.2f} "
          f"fine-tuning; KerasHub fit() {medians['kerashub']:.2f} img/s; ratios {report['ratio_scratch_to_kerashub']}× "
          f"and {report['ratio_finetune_to_kerashub']}×; written to {args.output}")


if __name__ == "__main__":
    main()
