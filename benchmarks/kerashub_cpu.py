"""ResNet50 RetinaNet training on this CPU against KerasHub's ``RetinaNetObjectDetector.fit()``, in one run.

Both sides train an R50-FPN RetinaNet at 256 px, batch 4, float32, from random weights on random images
with three random boxes each, on Keras' TensorFlow backend, each in a fresh process; the sides alternate
for ``--repeats`` rounds, so that a change of machine load hits both. The peer is
``../shared/peers/kerashub_retinanet.py`` (KerasHub 0.32.0, ``fit()``: 3 untimed steps, then ``--steps``
timed, every layer training), run by ``--peer-python``, an environment with ``keras-hub`` installed (a
scratch copy of this project's, never its pins). This project's side times its training step as
``python -m retinanet train --backbone resnet50`` runs it on TensorFlow (``train_on_batch`` in a loop, see
:func:`retinanet.run.loop.run_steps`), 3 untimed steps and then ``--steps`` timed, in four configurations:

- ``paper_scratch``: the paper's network (256-channel pyramid and subnets, as KerasHub's), every layer
  training: the like-for-like comparison;
- ``paper_finetune``: the same network as ``train`` fine-tunes it from ImageNet weights, as the paper's
  codebase does (Detectron: batch norm frozen, the stem and stage 2 frozen;
  :func:`retinanet.run.recipes.freeze_for_finetuning`);
- ``cpu_scratch`` and ``cpu_finetune``: the same two with the CPU recipe's 64-channel pyramid and subnets
  (:data:`retinanet.run.recipes.CPU_HEAD_CHANNELS`), what ``train --backbone resnet50`` runs on a CPU by default.

The peer's script times one ``fit()`` call, which in about a third of the runs on the 2-core EPYC
(6 of 19 on 2026-11-26) spends some 5 s outside its steps (its steps themselves take the same 0.9 s
either way): its figure then nearly halves. The peer therefore runs inside a wrapper (``--time-peer``)
that adds this project's benchmark clock (:class:`retinanet.tools.benchmark.StepClock`) to its ``fit()`` and
also reports its steady rate, from the median interval between the ends of consecutive timed steps. The
verdicts are the ratios of the medians of this project's images/s to the peer's steady rate (the peer's
own figure is recorded beside it). Random weights time like ImageNet weights. To say how close the
like-for-like step is to what this CPU can do at all, the report also gives each
network's forward-pass floating-point operations per image (TensorFlow's graph profiler) and this CPU's
float32 matrix-multiply rate. Writes ``benchmarks/kerashub-cpu.json``. With ``ONEDNN_MAX_CPU_ISA=AVX2``
in the environment both sides' oneDNN kernels stop at AVX2, as on CPUs without AVX-512 (the report
records the setting; ``benchmarks/kerashub-cpu-avx2.json``).

    .venv/bin/python benchmarks/kerashub_cpu.py --peer-python /tmp/khvenv/bin/python [--repeats 3] [--steps 6]
"""

import argparse
import contextlib
import io
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
CONFIGURATIONS = ("paper_scratch", "paper_finetune", "cpu_scratch", "cpu_finetune")


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-python", help="a Python with keras-hub 0.32.0 and TensorFlow")
    parser.add_argument("--peer-script", default=PEER_SCRIPT, help="the peer's benchmark script")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per run (default 6, as the peer's README)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the five runs (default 3)")
    parser.add_argument("--output", default=os.path.join(REPOSITORY, "benchmarks", "kerashub-cpu.json"))
    parser.add_argument("--ours", choices=CONFIGURATIONS, help=argparse.SUPPRESS)  # one timed run, in a child
    parser.add_argument("--time-peer", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)  # the peer, in a child
    return parser.parse_args()


def forward_gflops_per_image(retinanet):
    """Floating-point operations of one image's forward pass (TensorFlow's graph profiler), in billions."""
    import tensorflow as tf

    graph = tf.function(lambda images: retinanet(images, training=False)).get_concrete_function(
        tf.TensorSpec([1, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32)).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops / 1e9


def matmul_gflops_per_second(size=2048, repeats=20):
    """This CPU's float32 rate on a large matrix product (TensorFlow, oneDNN): the step's ceiling."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf

    a, b = tf.random.normal([size, size]), tf.random.normal([size, size])
    product = tf.function(lambda: tf.matmul(a, b))
    product().numpy()
    started = time.perf_counter()
    for _ in range(repeats):
        product().numpy()
    return 2 * size ** 3 * repeats / (time.perf_counter() - started) / 1e9


def vector_extensions():
    """The CPU's widest vector instructions (the same model name comes with and without AVX-512)."""
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    return " ".join(name for name in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if name in flags)


def time_our_step(configuration, steps):
    """Images/s of this project's training step (TensorFlow, ``train_on_batch`` as ``train`` runs it)."""
    os.environ["KERAS_BACKEND"] = "tensorflow"
    from retinanet._keras import keras
    from retinanet.run.recipes import TrainConfig, build_detector, freeze_for_finetuning, make_optimizer, resolve_auto
    from retinanet.tools.benchmark import random_batches

    keras.utils.set_random_seed(0)
    recipe, weights = configuration.split("_")
    config = resolve_auto(TrainConfig("", "", "", steps=100_000, recipe=recipe, backbone="resnet50"))
    detector = build_detector(4, IMAGE_SIZE, "resnet50", "none", config.head_channels, config.head_init)
    if weights == "finetune":
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
    print(json.dumps({"img_per_s": round(BATCH_SIZE * steps / seconds, 3), "channels": config.head_channels,
                      "forward_gflops_per_image": round(forward_gflops_per_image(detector.retinanet), 2)}),
          flush=True)


def time_peer(script_and_arguments):
    """Run the peer's script (in the peer's Python) with a :class:`~retinanet.tools.benchmark.StepClock` on each of
    its ``fit()`` calls; print its own result with the steady rate of the last call's steps added."""
    import runpy

    import keras

    from retinanet.tools.benchmark import StepClock

    clocks = []
    fit = keras.Model.fit

    def fit_with_clock(self, *args, callbacks=None, **kwargs):
        clocks.append(StepClock())
        return fit(self, *args, callbacks=[*(callbacks or []), clocks[-1]], **kwargs)

    keras.Model.fit = fit_with_clock
    output = io.StringIO()
    sys.argv = list(script_and_arguments)
    with contextlib.redirect_stdout(output):
        runpy.run_path(script_and_arguments[0], run_name="__main__")
    result = json.loads(output.getvalue().strip().splitlines()[-1])
    print(json.dumps({**result, "steady_img_per_s": round(result["batch"] / clocks[-1].seconds_per_step(), 3)}))


def run_side(command, env):
    """The benchmark process's result, with its process CPU seconds, wall seconds and the load before it."""
    load, started = os.getloadavg()[0], time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, env=env, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    return {"images_per_second": result.get("steady_img_per_s", result["img_per_s"]),
            **({"script_images_per_second": result["img_per_s"]} if "steady_img_per_s" in result else {}),
            "load_average": round(load, 2),
            "process_cpu_seconds": round(after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime, 1),
            "process_wall_seconds": round(time.perf_counter() - started, 1),
            **{key: result[key] for key in ("channels", "forward_gflops_per_image") if key in result}}


def main():
    args = parse_arguments()
    if args.ours:
        return time_our_step(args.ours, args.steps)
    if args.time_peer:
        return time_peer(args.time_peer)
    if not args.peer_python:
        sys.exit("give --peer-python: a Python with keras-hub (see ../shared/peers/README.md)")
    from retinanet.tools.benchmark import cpu_model

    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPOSITORY}
    commands = {configuration: [sys.executable, os.path.abspath(__file__), "--ours", configuration,
                                "--steps", str(args.steps)] for configuration in CONFIGURATIONS}
    commands["kerashub"] = [args.peer_python, os.path.abspath(__file__), "--time-peer", args.peer_script,
                            str(IMAGE_SIZE), str(BATCH_SIZE), str(args.steps), "float32"]
    runs = {side: [] for side in commands}
    for repeat in range(args.repeats):
        for side, command in commands.items():
            runs[side].append(run_side(command, env))
            print(f"round {repeat + 1}: {side:14s} {runs[side][-1]}", flush=True)
    medians = {side: statistics.median(run["images_per_second"] for run in rows) for side, rows in runs.items()}
    peer_script_median = statistics.median(run["script_images_per_second"] for run in runs["kerashub"])
    ratios = {side: round(medians[side] / medians["kerashub"], 2) for side in CONFIGURATIONS}
    forward = {side: runs[side][0]["forward_gflops_per_image"] for side in CONFIGURATIONS}
    ceiling = matmul_gflops_per_second()
    # Training costs about three forward passes (the forward, the gradients of the inputs and of the weights);
    # KerasHub's network is the paper's, the like-for-like configuration's.
    achieved = {side: round(3 * forward["paper_scratch"] * medians[side]) for side in ("paper_scratch", "kerashub")}
    report = {
        "what": f"ResNet50-FPN RetinaNet training images/s (steady steps) at {IMAGE_SIZE} px, batch {BATCH_SIZE}, "
                "float32, random weights and boxes, TensorFlow backend; this project's step (train_on_batch, as "
                "`train` runs it) in four configurations against KerasHub's RetinaNetObjectDetector.fit(), "
                "alternating runs, each a fresh process",
        "cpu": cpu_model(), "cpu_cores": os.cpu_count(), "timed_steps": args.steps, "warmup_steps": WARMUP_STEPS,
        "vector_extensions": vector_extensions(),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "not limited"),
        "started_load_average": runs[CONFIGURATIONS[0]][0]["load_average"],
        "runs": runs, "median_images_per_second": medians, "ratio_to_kerashub": ratios,
        "kerashub_script_median_images_per_second": peer_script_median,
        "ratio_to_kerashub_script_figure": {side: round(medians[side] / peer_script_median, 2)
                                            for side in CONFIGURATIONS},
        "forward_gflops_per_image": forward,
        "matmul_gflops_per_second": round(ceiling),
        "training_gflops_per_second_like_for_like": achieved,
    }
    with open(args.output, "w") as f:
        json.dump(report, f, indent=1)
    print(f"{report['cpu']} ({report['vector_extensions']}; oneDNN ISA {report['onednn_max_cpu_isa']}), "
          f"{os.cpu_count()} cores: KerasHub fit() {medians['kerashub']:.2f} img/s steady "
          f"({peer_script_median:.2f} by its script); this project "
          + ", ".join(f"{side} {medians[side]:.2f} img/s ({ratios[side]}×)" for side in CONFIGURATIONS)
          + f"; the like-for-like step computes ≈ {achieved['paper_scratch']} GFLOP/s of the {round(ceiling)} a "
          f"matrix product reaches; written to {args.output}")


if __name__ == "__main__":
    main()
