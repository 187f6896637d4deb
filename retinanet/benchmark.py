"""``python -m retinanet benchmark``: how fast training, the input pipeline and inference run here.

Measures, on whatever machine it runs on:

- training: images/s and seconds per step of the full training step (forward, focal + smooth-L1 loss,
  backward, SGD update) for each backbone, image size and batch size asked for, on fixed random inputs,
  so that the figure is the model's alone; on a GPU also with and without mixed precision and XLA;
- the ``tf.data`` input pipeline alone (decode, augment, anchor targets, batching) in images/s, to show
  that it is not the bottleneck;
- inference: milliseconds per image at 512×512 including decoding and NMS (batch 1);
- peak memory (the accelerator's, or the process's resident set on a CPU), the device, the load of the
  machine and the software versions.

The result is printed and written as JSON (default ``benchmarks/<device>.json``).
"""

import json
import os
import platform
import resource
import time

import numpy as np

from retinanet._tf import keras, tf


def add_arguments(parser):
    parser.add_argument("--train", default=None,
                        help="training cases backbone:size:batch, comma-separated (default on a CPU: both "
                             "backbones at 96:8, 128:8 and 256:4; on a GPU at 512:8 and 1024:2)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per case, after 2 warm-up steps")
    parser.add_argument("--pipeline-batches", type=int, default=40, help="timed input-pipeline batches (default 40)")
    parser.add_argument("--inference-size", type=int, default=512, help="image side for inference (default 512)")
    parser.add_argument("--inference-runs", type=int, default=10, help="timed inference runs (default 10)")
    parser.add_argument("--data-root", default=os.path.join("data", "shapes"), help="embedded data for the pipeline")
    parser.add_argument("--output", help="JSON path (default benchmarks/<device>.json)")


def device_description():
    """The machine in words: GPU names or the CPU model, core count, memory."""
    gpus = tf.config.list_physical_devices("GPU")
    cpu = platform.processor() or "unknown CPU"
    if os.path.isfile("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    description = {"cpu": cpu, "cpu_cores": os.cpu_count(), "memory_gib": round(memory_gib, 1),
                   "gpus": [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]}
    description["summary"] = (", ".join(description["gpus"]) if gpus else
                              f"{cpu}, {os.cpu_count()} cores, {memory_gib:.0f} GiB, no GPU")
    return description


def versions():
    import pycocotools

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "pycocotools": getattr(pycocotools, "__version__", "installed"),
            "platform": platform.platform()}


def _peak_memory_mib():
    if tf.config.list_physical_devices("GPU"):
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _reset_peak_memory():
    if tf.config.list_physical_devices("GPU"):
        tf.config.experimental.reset_memory_stats("GPU:0")


def _random_batch(image_size, batch_size, num_classes, seed=0):
    """Random images and the targets of a few random boxes per image (realistic positive counts)."""
    from retinanet.anchors import generate_anchors
    from retinanet.matching import assign_targets

    rng = np.random.default_rng(seed)
    anchors = generate_anchors(image_size, image_size)
    images = tf.constant(rng.uniform(-120, 130, (batch_size, image_size, image_size, 3)), tf.float32)
    targets = []
    for _ in range(batch_size):
        corners = rng.uniform(0, image_size * 0.7, (4, 2))
        sizes = rng.uniform(image_size * 0.1, image_size * 0.3, (4, 2))
        boxes = np.concatenate([corners, corners + sizes], axis=1)
        targets.append(assign_targets(anchors, boxes, rng.integers(0, num_classes, 4)))
    return images, tf.stack(targets)


def benchmark_training(backbone, image_size, batch_size, steps, mixed_precision=False, xla=False, num_classes=4):
    """Seconds per step and images/s of the full training step on one device."""
    from retinanet.train import TrainConfig, build_detector, make_optimizer, make_train_step

    keras.mixed_precision.set_dtype_policy("mixed_float16" if mixed_precision else "float32")
    try:
        keras.utils.set_random_seed(0)
        model = build_detector(num_classes, backbone, backbone_weights="none")
        config = TrainConfig("", "", "", steps=1000, optimizer="sgd", learning_rate=0.01,
                             mixed_precision="on" if mixed_precision else "off")
        optimizer, _ = make_optimizer(config)
        step = make_train_step(model, optimizer, num_classes, batch_size, tf.distribute.get_strategy(), xla)
        images, targets = _random_batch(image_size, batch_size, num_classes)
        _reset_peak_memory()
        for _ in range(2):
            step(images, targets).numpy()
        started = time.perf_counter()
        for _ in range(steps):
            step(images, targets).numpy()
        seconds = (time.perf_counter() - started) / steps
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    return {"backbone": backbone, "image_size": image_size, "batch_size": batch_size,
            "mixed_precision": mixed_precision, "xla": xla, "seconds_per_step": round(seconds, 4),
            "images_per_second": round(batch_size / seconds, 2), "peak_memory_mib": round(_peak_memory_mib(), 1)}


def benchmark_pipeline(data_root, image_size=96, batch_size=8, batches=40):
    """Images/s of the training input pipeline alone, after one warm-up pass fills the cache."""
    from retinanet.data import load_coco
    from retinanet.data.pipeline import make_dataset
    from retinanet.data.synthetic import make_dataset as make_synthetic, split_paths

    make_synthetic(data_root)
    dataset = load_coco(*split_paths(data_root, "train"))
    iterator = iter(make_dataset(dataset.records, image_size, batch_size, training=True))
    for _ in range(len(dataset.records) // batch_size + 1):  # first epoch: decode and fill the cache
        next(iterator)
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    seconds = time.perf_counter() - started
    return {"image_size": image_size, "batch_size": batch_size, "images_per_second": round(batches * batch_size / seconds, 1)}


def benchmark_inference(backbone, image_size, runs, num_classes=4):
    """Milliseconds per image (batch 1) for the model plus decoding, top-k and NMS."""
    from retinanet.postprocess import decode_detections
    from retinanet.train import build_detector

    keras.utils.set_random_seed(0)
    model = build_detector(num_classes, backbone, backbone_weights="none")

    @tf.function
    def detect(images):
        return decode_detections(model(images, training=False), image_size, image_size)

    images = tf.random.uniform([1, image_size, image_size, 3], -120, 130)
    for _ in range(2):
        detect(images).num_detections.numpy()
    started = time.perf_counter()
    for _ in range(runs):
        detect(images).num_detections.numpy()
    return {"backbone": backbone, "image_size": image_size, "batch_size": 1,
            "milliseconds_per_image": round(1000 * (time.perf_counter() - started) / runs, 1)}


def _training_cases(text, on_gpu):
    if text is None:
        sizes = ((512, 8), (1024, 2)) if on_gpu else ((96, 8), (128, 8), (256, 4))
        text = ",".join(f"{b}:{s}:{n}" for b in ("light", "resnet50") for s, n in sizes)
    cases = []
    for item in text.split(","):
        backbone, size, batch = item.split(":")
        cases.append((backbone, int(size), int(batch)))
    return cases


def run_benchmark(args):
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    device = device_description()
    report = {"device": device, "versions": versions(), "load_average_before": os.getloadavg(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "training": []}
    print(f"device: {device['summary']}; load average {os.getloadavg()[0]:.2f}")
    precision_modes = ((False, False), (True, False), (True, True)) if on_gpu else ((False, False),)
    for backbone, size, batch in _training_cases(args.train, on_gpu):
        for mixed, xla in precision_modes:
            row = benchmark_training(backbone, size, batch, args.steps, mixed, xla)
            report["training"].append(row)
            print(f"train  {backbone:8s} {size:5d} px batch {batch:3d} mixed={str(mixed):5s} xla={str(xla):5s} "
                  f"{row['seconds_per_step']:.3f} s/step  {row['images_per_second']:8.1f} img/s")
    report["input_pipeline"] = benchmark_pipeline(args.data_root, batches=args.pipeline_batches)
    print(f"input pipeline alone: {report['input_pipeline']['images_per_second']:.1f} img/s")
    report["inference"] = [benchmark_inference(b, args.inference_size, args.inference_runs) for b in ("light", "resnet50")]
    for row in report["inference"]:
        print(f"inference {row['backbone']:8s} {row['image_size']} px: {row['milliseconds_per_image']:.1f} ms/image incl. NMS")
    report["peak_memory_mib"] = round(_peak_memory_mib(), 1)
    report["peak_memory_kind"] = "GPU:0 allocator peak" if on_gpu else "process resident set (ru_maxrss)"
    report["load_average_after"] = os.getloadavg()
    print(f"peak memory: {report['peak_memory_mib']:.0f} MiB ({report['peak_memory_kind']}); "
          f"load average after {os.getloadavg()[0]:.2f}")
    slug = ("gpu-" + device["gpus"][0] if on_gpu else f"cpu-{device['cpu_cores']}core").lower()
    output = args.output or os.path.join("benchmarks", "".join(c if c.isalnum() or c == "-" else "-" for c in slug) + ".json")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
        json.dump(report, f, indent=1)
    print(f"written to {output}")
    return report
