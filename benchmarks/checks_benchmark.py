"""Median run time of each learner-facing check on the reference implementation.

The budget is 3 s per check on a 2-core CPU once TensorFlow is imported (issue 4). Each check runs
``--repeats`` times in one process, as a learner re-runs a check cell; the first run, which also builds the
cached reference models, is reported separately. TEST_BACKBONE_MODEL and TEST_RESNET use ResNet50 at
128×128 exactly as the notebook does. TEST_RESNET is timed twice: on a model that has been called once
(the check's own cost) and on a fresh ``RetinaNet(num_classes=10)``, whose first forward pass also builds
its layers inside the check (about 2.5 s of the total on an idle 2-core CPU).

    .venv/bin/python benchmarks/checks_benchmark.py            # writes benchmarks/checks.json
"""

import argparse
import contextlib
import functools
import io
import json
import os
import pathlib
import platform
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import tests  # noqa: E402
from retinanet import anchors, boxes, fpn, heads, losses, matching, model, postprocess  # noqa: E402
from retinanet.backbone import get_backbone  # noqa: E402

def _called_once(retinanet):
    """The model after its first forward pass, which builds its layers (Keras does that lazily)."""
    retinanet(tests._images(128, 128))
    return retinanet


CASES = {
    "TEST_BACKBONE_MODEL": lambda: (functools.partial(get_backbone, weights=None),),
    "TEST_FPN": lambda: (fpn.FeaturePyramidNetwork,),
    "TEST_HEAD_MODEL": lambda: (heads.build_head,),
    "TEST_RESNET": lambda: (_called_once(model.RetinaNet(num_classes=10, backbone=get_backbone(weights=None))),),
    "TEST_RESNET (fresh model)": lambda: (model.RetinaNet(num_classes=10, backbone=get_backbone(weights=None)),),
    "TEST_FOCAL_LOSS": lambda: (losses.sigmoid_focal_loss,),
    "TEST_ANCHORS": lambda: (anchors.generate_anchors,),
    "TEST_IOU": lambda: (boxes.iou,),
    "TEST_MATCHING": lambda: (matching.match_anchors,),
    "TEST_BOX_CODING": lambda: (boxes.encode, boxes.decode),
    "TEST_DETECTION_LOSS": lambda: (losses.detection_loss_terms,),
    "TEST_DECODE": lambda: (postprocess.decode_detections,),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default=str(pathlib.Path(__file__).with_name("checks.json")))
    args = parser.parse_args()
    results = {}
    for label, make_arguments in CASES.items():
        name = label.split()[0]
        times = []
        for _ in range(args.repeats):
            arguments = make_arguments()  # building the learner's model is not part of the check
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                getattr(tests, name)(*arguments)
            times.append(time.perf_counter() - started)
        results[label] = {"first_s": round(times[0], 3), "median_s": round(statistics.median(times), 3),
                         "max_s": round(max(times), 3)}
        print(f"{label:28s} first {times[0]:6.2f} s   median {statistics.median(times):6.2f} s")
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "load_average_1min_at_end": round(os.getloadavg()[0], 2), "repeats": args.repeats,
              "budget_s": 3.0, "checks": results,
              "note": "wall-clock on a shared machine; other processes inflate the numbers"}
    pathlib.Path(args.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
