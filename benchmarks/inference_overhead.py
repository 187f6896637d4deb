"""Per-call cost of inference on this backend, before and after ``InferenceModel.detect`` became one jitted
pure function (issue 23), measured in one process, alternating.

- ``predict_on_batch``: what ``detect`` called before: Keras's predict step, which on JAX gathers the state,
  donates it, re-assigns every variable and fetches each output on its own;
- ``detect``: :meth:`retinanet.detector.InferenceModel.detect` now: ``jax.jit`` of ``stateless_call`` on
  the variables' current values, one ``jax.device_get`` of the result.

Both run the same network (the light backbone, the CPU recipe's 64 channels, batch 1) on the same ``uint8``
image, ``--rounds`` alternating blocks of ``--calls`` calls each; the figure is each side's median block,
in ms per call. Cases (``--cases size:classes``): 256 px with COCO's 80 classes, and 128 px with 4
classes, where the network and NMS cost little and the per-call overhead shows. The detections of both
must be identical (the script fails otherwise)::

    KERAS_BACKEND=jax .venv-jax/bin/python benchmarks/inference_overhead.py [--cases light:256:80,resnet50:64:1] [--calls 20]
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import time

import numpy as np

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPOSITORY)

from retinanet._keras import BACKEND, keras  # noqa: E402
from retinanet.tools.benchmark import device_description, versions  # noqa: E402


def measure(size, classes, backbone, calls, rounds):
    from retinanet.detector import InferenceModel
    from retinanet.run.recipes import TrainConfig, build_detector, resolve_auto

    config = resolve_auto(TrainConfig("", "", "", recipe="cpu", backbone=backbone))
    keras.utils.set_random_seed(0)
    detector = build_detector(classes, size, backbone, "none", config.head_channels, config.head_init)
    inference = InferenceModel(detector)
    image = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    sides = {"predict_on_batch": inference.predict_on_batch, "detect": inference.detect}
    results = {name: call(image) for name, call in sides.items()}  # compiles each
    for name in results["detect"]:
        if not np.array_equal(results["detect"][name], results["predict_on_batch"][name]):
            raise SystemExit(f"detect and predict_on_batch differ in {name}")
    load_before = os.getloadavg()
    blocks = {name: [] for name in sides}
    for _ in range(rounds):
        for name, call in sides.items():
            started = time.perf_counter()
            for _ in range(calls):
                call(image)
            blocks[name].append(1000 * (time.perf_counter() - started) / calls)
    case = {"backbone": backbone, "channels": config.head_channels, "image_size": size, "classes": classes,
            "batch_size": 1, "calls_per_block": calls, "rounds": rounds,
            "detections": int(results["detect"]["num_detections"][0]), "identical_detections": True,
            "variables": len(inference.variables), "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "ms_per_call": {name: {"median": round(statistics.median(v), 3), "min": round(min(v), 3),
                                   "blocks": [round(x, 3) for x in v]} for name, v in blocks.items()}}
    case["saved_ms_per_call"] = round(case["ms_per_call"]["predict_on_batch"]["median"]
                                      - case["ms_per_call"]["detect"]["median"], 3)
    return case


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="light:256:80,light:128:4,light:64:1,resnet50:64:1",
                        help="backbone:size:classes, comma-separated (default light:256:80,light:128:4,light:64:1,"
                             "resnet50:64:1)")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", default=os.path.join(REPOSITORY, "benchmarks", "inference-overhead.json"))
    args = parser.parse_args()
    report = {"what": __doc__.split("\n\n")[0].replace("\n", " "), "device": device_description(),
              "versions": versions(), "backend": BACKEND, "date": datetime.date.today().isoformat(), "cases": []}
    for text in args.cases.split(","):
        backbone, size, classes = text.split(":")
        case = measure(int(size), int(classes), backbone, args.calls, args.rounds)
        report["cases"].append(case)
        print(json.dumps({k: case[k] for k in ("backbone", "image_size", "classes", "variables", "detections", "saved_ms_per_call",
                                               "load_average_before")}),
              {name: value["median"] for name, value in case["ms_per_call"].items()}, flush=True)
    with open(args.output, "w") as f:
        json.dump(report, f, indent=1)
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
