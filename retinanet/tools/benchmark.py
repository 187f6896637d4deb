"""``python -m retinanet benchmark``: how fast training, the input pipeline and inference run here.

Measures, on whatever backend and machine it runs on:

- training: images/s of ``Detector.fit()``'s steady steps (:class:`StepClock`) — forward, target
  assignment, focal + smooth-L1 loss, backward and the optimizer update in one compiled step — on random
  images with three random boxes each, held in memory as the peers' benchmarks hold theirs, so that the
  figure is the step's alone; the network as ``train`` builds it on this machine (``--recipe``); on an
  accelerator in ``mixed_bfloat16`` and in float32;
- the input pipeline alone (:class:`retinanet.data.loader.TrainingBatches`: decode, flip, scale jitter,
  padding) in images/s with its worker threads, to show whether it can feed the step;
- inference: milliseconds per image (batch 1) for the network plus decoding, top-k and NMS, with the
  paper's score threshold and with none (every candidate reaches NMS);
- peak memory (the accelerator's allocator, or the process's resident set), the device, the load and
  the software versions.

The result is printed and written as JSON (default ``benchmarks/<device>.json``).
"""

import json
import os
import platform
import resource
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from retinanet._keras import BACKEND, accelerators, keras

RANDOM_BOXES_PER_IMAGE = 3
"""Objects per random training image (as in the peers' benchmarks)."""

INFERENCE_CLASSES = 80
"""Classes of the inference benchmark: COCO's, so that top-k and NMS see as many candidates as on COCO."""

TRAINING_CASE = (("backbone", "size", "batch"), "precision")
PIPELINE_CASE = (("size", "batch"), None)
INFERENCE_CASE = (("backbone", "size"), "precision")
"""The fields of a case of ``--train``, ``--pipeline`` and ``--inference``, and the optional last one."""

PRECISIONS = ("float32", "bfloat16", "float16")
"""The precisions a case may name (float32, or mixed precision computing in bfloat16 or float16)."""


def add_arguments(parser):
    """The ``benchmark`` command's flags; a value that cannot be used is refused as argparse refuses any."""
    from retinanet.run.recipes import RECIPES
    from retinanet.tools.cli import flag_type, positive_int

    at_least_two = flag_type(int, lambda v: v >= 2, "a whole number of at least 2 (a step's time is the interval "
                                                    "between two step ends)")
    parser.add_argument("--train", default=None, type=case_list(*TRAINING_CASE),
                        help="training cases backbone:size:batch[:precision], comma-separated, or none (default on "
                             "a CPU: the light backbone at 96:8 and 128:8, resnet50 at 256:4; on an accelerator "
                             "resnet50 at 512:16 and 800:8); precision float32 or bfloat16 (default: both on an "
                             "accelerator, float32 on a CPU)")
    parser.add_argument("--recipe", choices=RECIPES, default="auto",
                        help="the network's pyramid and subnets as `train --recipe` makes them: paper 256 channels, "
                             "cpu 64; auto: paper on an accelerator, cpu on a CPU (default auto)")
    parser.add_argument("--steps", type=at_least_two, default=5,
                        help="timed training steps per case, after warm-up (default 5)")
    parser.add_argument("--warmup-steps", type=positive_int, default=3,
                        help="untimed steps that compile the step (default 3)")
    parser.add_argument("--clock", choices=CLOCKS, default="steps",
                        help="how training is timed: steps, the median interval between step ends (each step "
                             "waited for); fit_call, a whole fit() call of the timed steps, waited for at its end "
                             "(default steps)")
    parser.add_argument("--frozen", action="store_true",
                        help="train ResNet50 as the paper fine-tunes it: stem, stage 2 and every batch norm frozen "
                             "(Detectron FREEZE_AT=2; random weights time as ImageNet's)")
    parser.add_argument("--pipeline", default="96:8", type=case_list(*PIPELINE_CASE),
                        help="input pipeline case size:batch, or none (default 96:8)")
    parser.add_argument("--pipeline-batches", type=positive_int, default=40,
                        help="timed input-pipeline batches (default 40)")
    parser.add_argument("--workers", type=positive_int, default=None, help="pipeline threads (default: the CPU count)")
    parser.add_argument("--inference", default=None, type=case_list(*INFERENCE_CASE),
                        help="inference cases backbone:size[:precision], comma-separated, or none (default "
                             "light:512,resnet50:512 on a CPU; resnet50:512 and resnet50:800 on an accelerator, in "
                             "float32 and bfloat16)")
    parser.add_argument("--inference-runs", type=positive_int, default=10, help="timed inference runs (default 10)")
    parser.add_argument("--data-root", default=os.path.join("data", "shapes"), help="embedded data for the pipeline")
    parser.add_argument("--output", help="JSON path (default benchmarks/<device>.json)")


def cpu_model():
    if os.path.isfile("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            return names[0]
    return platform.processor() or "unknown CPU"


def accelerator_names():
    """Human names of the accelerators (``NVIDIA H200``), or ``[]``."""
    if BACKEND == "jax":
        import jax

        return [device.device_kind for device in jax.local_devices() if device.platform != "cpu"]
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
                for gpu in tf.config.list_physical_devices("GPU")]
    return []


def device_description():
    """The machine in words: accelerator names or the CPU model, core count, memory, backend."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    names = accelerator_names()
    description = {"backend": BACKEND, "cpu": cpu_model(), "cpu_cores": os.cpu_count(),
                   "memory_gib": round(memory_gib, 1), "accelerators": names}
    description["summary"] = (f"{', '.join(names)} (Keras {BACKEND})" if names else
                              f"{description['cpu']}, {os.cpu_count()} cores, {memory_gib:.0f} GiB, no GPU "
                              f"(Keras {BACKEND})")
    return description


def versions():
    import pycocotools

    found = {"python": platform.python_version(), "keras": keras.__version__, "numpy": np.__version__,
             "pycocotools": getattr(pycocotools, "__version__", "installed"), "platform": platform.platform()}
    if BACKEND == "jax":
        import jax

        found["jax"] = jax.__version__
    if BACKEND == "tensorflow":
        import tensorflow as tf

        found["tensorflow"] = tf.__version__
    return found


def peak_memory_mib():
    """The accelerator allocator's peak since the last reset, or the process's peak resident set on a CPU."""
    if accelerators():
        if BACKEND == "jax":
            import jax

            return jax.local_devices()[0].memory_stats().get("peak_bytes_in_use", 0) / 2 ** 20
        if BACKEND == "tensorflow":
            import tensorflow as tf

            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def random_batches(image_size, count, num_classes, seed=0):
    """``count`` random ``uint8`` images with :data:`RANDOM_BOXES_PER_IMAGE` random boxes each, as the
    training pipeline delivers them."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, image_size, image_size, 3), dtype=np.uint8)
    corners = rng.uniform(0, image_size * 0.6, (count, RANDOM_BOXES_PER_IMAGE, 2))
    sizes = rng.uniform(16, image_size * 0.4, (count, RANDOM_BOXES_PER_IMAGE, 2))
    boxes = np.concatenate([corners, corners + sizes], axis=-1).astype(np.float32)
    classes = rng.integers(0, num_classes, (count, RANDOM_BOXES_PER_IMAGE)).astype(np.int32)
    return images, {"boxes": boxes, "classes": classes}


def _reset_peak_memory():
    if BACKEND == "tensorflow" and accelerators():
        import tensorflow as tf

        tf.config.experimental.reset_memory_stats("GPU:0")


class StepClock(keras.callbacks.Callback):
    """The steady time of a training step: the median interval between the ends of consecutive steps, each
    end taken once its loss has arrived on the host (accelerators run steps asynchronously). A ``fit()``
    call's own set-up (its data adapter, its iterator) is not a step's: with a few timed steps it can
    double the call's time per step."""

    def __init__(self):
        super().__init__()
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs:
            keras.ops.convert_to_numpy(logs["loss"])
        self.ends.append(time.perf_counter())

    def seconds_per_step(self):
        if len(self.ends) < 2:
            raise ValueError("timing a training step needs at least 2 timed steps (--steps)")
        return float(np.median(np.diff(self.ends)))


CLOCKS = ("steps", "fit_call")
"""How a training case is timed: ``steps``, the median interval between step ends (:class:`StepClock`, which
waits for each step's loss: every step synchronous, right on a CPU, whose steps are synchronous anyway);
``fit_call``, one whole ``fit()`` call of the timed steps with no callback, ended once the trained state
has arrived (:func:`fit_call_seconds`): an accelerator runs the steps asynchronously, as in training. The
GPU check times this project and the KerasHub peer with ``fit_call`` both (``benchmarks/gpu/run.py``)."""


def wait_for_state(model):
    """Block until every variable of ``model`` (its optimizer's included) holds its final value."""
    if BACKEND == "jax":
        import jax

        jax.block_until_ready([variable.value for variable in model.variables])
        if getattr(model, "optimizer", None) is not None:
            jax.block_until_ready([variable.value for variable in model.optimizer.variables])
    elif getattr(model, "optimizer", None) is not None:
        keras.ops.convert_to_numpy(model.optimizer.iterations)


def fit_call_seconds(model, x, y, batch_size, callbacks=None):
    """Seconds of one ``model.fit(x, y)`` epoch, from the call until the trained state has arrived (no
    per-step synchronisation): the clock both sides of the GPU check use."""
    started = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=False, callbacks=callbacks)
    wait_for_state(model)
    return time.perf_counter() - started


def freeze_like_detectron(resnet, frozen_prefixes):
    """Freeze a ResNet as Detectron's ``FREEZE_AT = 2`` does: the stem and stage 2 (the layers whose names
    start with ``frozen_prefixes``) and every batch-norm layer (a fixed affine map)."""
    frozen = 0
    for layer in resnet.layers:
        if isinstance(layer, keras.layers.BatchNormalization) or layer.name.startswith(tuple(frozen_prefixes)):
            layer.trainable = False
            frozen += 1
    return frozen


def benchmark_training(backbone, image_size, batch_size, steps, warmup_steps, precision="float32", num_classes=4,
                       recipe="auto", clock="steps", frozen=False):
    """Images/s of ``fit()`` on one process's devices, SGD as in the paper, data in memory; the pyramid and
    subnets as ``recipe`` makes them (:data:`retinanet.run.recipes.RECIPES`), timed by ``clock``
    (:data:`CLOCKS`). ``frozen``: the paper's fine-tuning recipe (ResNet50's stem, stage 2 and batch norm
    frozen, :func:`retinanet.run.recipes.freeze_for_finetuning`; random weights time as ImageNet's)."""
    from retinanet.run.recipes import (TrainConfig, build_detector, dtype_policy, freeze_for_finetuning,
                                       make_optimizer, resolve_auto)

    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {CLOCKS}, got {clock!r}")
    if frozen and backbone != "resnet50":
        raise ValueError("the frozen (fine-tuning) recipe freezes ResNet50's stages: use the resnet50 backbone")
    mixed_precision = "off" if precision == "float32" else precision
    config = resolve_auto(TrainConfig("", "", "", steps=100_000, optimizer="sgd", learning_rate=0.01, recipe=recipe,
                                      backbone=backbone, mixed_precision=mixed_precision))
    keras.mixed_precision.set_dtype_policy(dtype_policy(mixed_precision))
    try:
        keras.utils.set_random_seed(0)
        detector = build_detector(num_classes, image_size, backbone, "none", config.head_channels, config.head_init)
        if frozen:
            freeze_for_finetuning(detector.retinanet.fpn.backbone)
        optimizer, _ = make_optimizer(config)
        detector.compile(optimizer=optimizer, jit_compile=config.xla == "on")
        _reset_peak_memory()
        images, ground_truth = random_batches(image_size, batch_size * warmup_steps, num_classes)
        warmup = fit_call_seconds(detector, images, ground_truth, batch_size)
        images, ground_truth = random_batches(image_size, batch_size * steps, num_classes, seed=1)
        step_clock = StepClock() if clock == "steps" else None
        call_seconds = fit_call_seconds(detector, images, ground_truth, batch_size,
                                        callbacks=[step_clock] if step_clock else None) / steps
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    seconds = step_clock.seconds_per_step() if step_clock else call_seconds
    return {"backbone": backbone, "channels": config.head_channels, "image_size": image_size,
            "batch_size": batch_size, "precision": precision, "frozen": frozen, "clock": clock, "steps": steps,
            "warmup_seconds": round(warmup, 1), "seconds_per_step": round(seconds, 4),
            "images_per_second": round(batch_size / seconds, 1), "fit_call_seconds_per_step": round(call_seconds, 4),
            "trainable_weights": len(detector.trainable_weights), "peak_memory_mib": round(peak_memory_mib(), 1)}


def benchmark_pipeline(data_root, image_size, batch_size, batches, workers):
    """Images/s of the training input pipeline alone with ``workers`` threads (as ``fit()`` runs it),
    after one pass that decodes every image into the cache."""
    from retinanet.data import load_coco
    from retinanet.data.loader import TrainingBatches
    from retinanet.data.synthetic import make_dataset, split_paths

    make_dataset(data_root)
    dataset = load_coco(*split_paths(data_root, "train"))
    warm = len(dataset.records) // batch_size + 1
    pipeline = TrainingBatches(dataset.records, image_size, batch_size, steps=warm + batches, workers=workers)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(pipeline.__getitem__, range(warm)):
            pass
        started = time.perf_counter()
        for _ in pool.map(pipeline.__getitem__, range(warm, warm + batches)):
            pass
        seconds = time.perf_counter() - started
    return {"image_size": image_size, "batch_size": batch_size, "workers": workers,
            "images_per_second": round(batches * batch_size / seconds, 1)}


def benchmark_inference(backbone, image_size, runs, score_threshold, precision="float32",
                        num_classes=INFERENCE_CLASSES, recipe="auto"):
    """Milliseconds per image (batch 1, ``uint8`` from the host) for the network plus decoding and NMS; the
    pyramid and subnets as ``recipe`` makes them. One row of :func:`benchmark_inference_variants`."""
    return benchmark_inference_variants(backbone, image_size, runs, (score_threshold,), precision, num_classes,
                                        recipe)[0]


def benchmark_inference_variants(backbone, image_size, runs, score_thresholds, precision="float32",
                                 num_classes=INFERENCE_CLASSES, recipe="auto"):
    """One row of :func:`benchmark_inference` per entry of ``score_thresholds``, on ONE model compiled once:
    the paper's threshold (0.05) is the untrained network as it is; any other means "every candidate", for
    which the classification prior's bias is set to zero (scores near 0.5, far above any threshold) — new
    weights, the same compiled program."""
    from retinanet.detector import InferenceModel
    from retinanet.postprocess import SCORE_THRESHOLD
    from retinanet.run.recipes import TrainConfig, build_detector, dtype_policy, resolve_auto

    config = resolve_auto(TrainConfig("", "", "", recipe=recipe, backbone=backbone))
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_dtype_policy(dtype_policy("off" if precision == "float32" else precision))
    try:
        detector = build_detector(num_classes, image_size, backbone, "none", config.head_channels, config.head_init)
        inference = InferenceModel(detector)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    prior = detector.retinanet.cls_head.layers[-1].bias
    paper_prior = keras.ops.convert_to_numpy(prior)
    image = np.random.default_rng(0).integers(0, 256, (1, image_size, image_size, 3), dtype=np.uint8)
    rows = []
    for score_threshold in score_thresholds:
        paper = score_threshold == SCORE_THRESHOLD
        prior.assign(paper_prior if paper else np.zeros(prior.shape, np.float32))
        started = time.perf_counter()
        for _ in range(3):
            inference.detect(image)
        warmup = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(runs):
            detections = inference.detect(image)
        rows.append({"backbone": backbone, "channels": config.head_channels, "image_size": image_size, "batch_size": 1,
                     "classes": num_classes, "precision": precision,
                     "candidates": "paper (score > 0.05)" if paper else "all (untrained prior 0.5)",
                     "detections": int(detections["num_detections"][0]), "warmup_seconds": round(warmup, 2),
                     "milliseconds_per_image": round(1000 * (time.perf_counter() - started) / runs, 2)})
    return rows


def _cases(text, default, fields, optional=None):
    """Parse ``a:b:c,...`` into tuples (``none`` → no case); an ``optional`` last field may be left out.
    ``ValueError`` names the case that does not fit."""
    from retinanet.run.recipes import BACKBONES

    text = text or default
    if text == "none":
        return []
    cases = []
    for item in text.split(","):
        parts = item.split(":")
        if optional is not None and len(parts) == len(fields):
            parts.append(None)
        names = fields + ((optional,) if optional else ())
        if len(parts) != len(names):
            raise ValueError(f"expected {':'.join(names)} in {item!r}")
        case = []
        for part, name in zip(parts, names):
            if name == "backbone" and part not in BACKBONES:
                raise ValueError(f"expected a backbone of {', '.join(BACKBONES)} in {item!r}")
            if name == "precision" and part not in (None, *PRECISIONS):
                raise ValueError(f"expected a precision of {', '.join(PRECISIONS)} in {item!r}")
            if name not in ("backbone", "precision"):
                if not part.isdigit() or int(part) < 1 or (name == "size" and int(part) % 32):
                    requirement = "a multiple of 32" if name == "size" else "a whole number of at least 1"
                    raise ValueError(f"expected {name} to be {requirement} in {item!r}")
                part = int(part)
            case.append(part)
        cases.append(tuple(case))
    return cases


def case_list(fields, optional=None):
    """An argparse ``type`` that checks a ``--train``/``--pipeline``/``--inference`` value as :func:`_cases`
    reads it, and keeps the text."""
    import argparse

    def parse(text):
        try:
            _cases(text, None, fields, optional)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return text

    return parse


def run_benchmark(args):
    from retinanet.postprocess import SCORE_THRESHOLD

    on_accelerator = bool(accelerators())
    device = device_description()
    report = {"device": device, "versions": versions(), "load_average_before": os.getloadavg(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "training": []}
    print(f"device: {device['summary']}; load average {os.getloadavg()[0]:.2f}", flush=True)
    default_precisions = ("bfloat16", "float32") if on_accelerator else ("float32",)
    default_train = "resnet50:512:16,resnet50:800:8" if on_accelerator else "light:96:8,light:128:8,resnet50:256:4"
    for backbone, size, batch, precision in _cases(args.train, default_train, *TRAINING_CASE):
        for precision in (precision,) if precision else default_precisions:
            row = benchmark_training(backbone, size, batch, args.steps, args.warmup_steps, precision,
                                     recipe=args.recipe, clock=args.clock, frozen=args.frozen)
            report["training"].append(row)
            print(f"train  {backbone:8s} {row['channels']:3d} ch {size:5d} px batch {batch:3d} {precision:8s} "
                  f"{row['seconds_per_step']:.4f} s/step {row['images_per_second']:8.1f} img/s "
                  f"(peak {row['peak_memory_mib']:.0f} MiB)", flush=True)
    for size, batch in _cases(args.pipeline, "96:8", *PIPELINE_CASE):
        report["input_pipeline"] = benchmark_pipeline(args.data_root, size, batch, args.pipeline_batches,
                                                      args.workers or os.cpu_count())
        print(f"input pipeline alone: {report['input_pipeline']['images_per_second']:.1f} img/s at {size} px "
              f"({report['input_pipeline']['workers']} threads)", flush=True)
    default_inference = "resnet50:512,resnet50:800" if on_accelerator else "light:512,resnet50:512"
    report["inference"] = []
    for backbone, size, precision in _cases(args.inference, default_inference, *INFERENCE_CASE):
        for precision in (precision,) if precision else default_precisions:
            # Both thresholds on one model: the second variant needs new weights, not a second compilation.
            for row in benchmark_inference_variants(backbone, size, args.inference_runs, (SCORE_THRESHOLD, -1.0),
                                                    precision, recipe=args.recipe):
                report["inference"].append(row)
                print(f"inference {backbone:8s} {row['channels']:3d} ch {size} px {precision:8s} {row['candidates']}: "
                      f"{row['milliseconds_per_image']:.2f} ms/image incl. NMS", flush=True)
    report["peak_memory_mib"] = round(peak_memory_mib(), 1)
    report["peak_memory_kind"] = "accelerator allocator peak" if on_accelerator else "process resident set (ru_maxrss)"
    report["load_average_after"] = os.getloadavg()
    print(f"peak memory: {report['peak_memory_mib']:.0f} MiB ({report['peak_memory_kind']}); "
          f"load average after {os.getloadavg()[0]:.2f}")
    slug = ("gpu-" + device["accelerators"][0] if on_accelerator else f"cpu-{device['cpu_cores']}core-{BACKEND}").lower()
    output = args.output or os.path.join("benchmarks", "".join(c if c.isalnum() or c == "-" else "-" for c in slug) + ".json")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
        json.dump(report, f, indent=1)
    print(f"written to {output}")
    return report
