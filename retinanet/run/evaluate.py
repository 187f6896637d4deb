"""COCO evaluation: mAP@[.5:.95], mAP@0.5 and per-class AP, computed by pycocotools.

The paper reports COCO's AP (Lin et al., Sec. 5: "AP" averaged over IoU 0.5:0.05:0.95, plus AP50, AP75 and
by object size). The official ``pycocotools`` implementation computes them here, so the numbers mean what
COCO numbers mean (101-point interpolated precision, crowd handling, at most 100 detections per image);
a hand-written mAP would be one more thing to get subtly wrong.
"""

import contextlib
import io
import json
import os

import numpy as np

from retinanet.data import DatasetError, load_coco
from retinanet.data.loader import evaluation_batches


def detections_to_coco(detections, scales, image_ids, category_ids, count=None):
    """COCO result records ``{image_id, category_id, bbox: [x, y, w, h], score}`` for a batch.

    ``detections`` is a dict of NumPy arrays (``boxes``, ``scores``, ``classes``, ``num_detections``) as
    :meth:`retinanet.detector.InferenceModel.detect` returns them; boxes are divided by each image's
    ``scale`` to go back to the original image's pixels. Only the first ``count`` images are real.
    """
    results = []
    boxes, scores = np.asarray(detections["boxes"]), np.asarray(detections["scores"])
    classes, counts = np.asarray(detections["classes"]), np.asarray(detections["num_detections"])
    rows = zip(np.asarray(scales), np.asarray(image_ids))
    for i, (scale, image_id) in enumerate(list(rows)[:count]):
        for box, score, label in zip(boxes[i, : counts[i]] / scale, scores[i, : counts[i]], classes[i, : counts[i]]):
            x1, y1, x2, y2 = (float(v) for v in box)
            results.append({"image_id": int(image_id), "category_id": int(category_ids[int(label)]),
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score)})
    return results


def coco_evaluate(annotations_path, results):
    """Run pycocotools' COCOeval on ``results`` (COCO result records) against an annotation file.

    Returns:
        ``{"mAP": AP@[.5:.95], "mAP50": AP@0.5, "mAP75": ..., "mAP_small/medium/large": ...,
        "per_class": {name: {"AP": ..., "AP50": ...}}, "num_detections": n}``; AP of a class without
        ground truth is ``None``.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO(annotations_path)
        if results:
            detections = ground_truth.loadRes(results)
        else:
            detections = COCO()
            detections.dataset = {"images": ground_truth.dataset["images"], "annotations": [],
                                  "categories": ground_truth.dataset["categories"]}
            detections.createIndex()
        evaluator = COCOeval(ground_truth, detections, iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [float(v) for v in evaluator.stats]
    precision = evaluator.eval["precision"]  # (IoU thresholds, recall points, classes, area ranges, max dets)
    per_class = {}
    for k, category_id in enumerate(evaluator.params.catIds):
        name = ground_truth.cats[category_id]["name"]
        all_ious = precision[:, :, k, 0, -1]
        at_50 = precision[0, :, k, 0, -1]
        per_class[name] = {
            "AP": float(all_ious[all_ious > -1].mean()) if (all_ious > -1).any() else None,
            "AP50": float(at_50[at_50 > -1].mean()) if (at_50 > -1).any() else None,
        }
    names = ("mAP", "mAP50", "mAP75", "mAP_small", "mAP_medium", "mAP_large")
    metrics = {name: (value if value >= 0 else None) for name, value in zip(names, stats[:6])}
    metrics["per_class"] = per_class
    metrics["num_detections"] = len(results)
    return metrics


def predict_dataset(detector, records, category_ids, batch_size=16):
    """Run a :class:`~retinanet.detector.Detector` over records; COCO result records in original-image pixels."""
    from retinanet.detector import InferenceModel

    inference, results = InferenceModel(detector), []
    for images, scales, image_ids, count in evaluation_batches(records, detector.image_size, batch_size):
        detections = inference.detect(images)
        results.extend(detections_to_coco(detections, scales, image_ids, category_ids, count))
    return results


def format_table(metrics):
    """A plain-text table of the overall and per-class AP."""
    percent = lambda v: "   n/a" if v is None else f"{100 * v:6.1f}"  # noqa: E731
    lines = [f"{'':14s} {'AP':>6s} {'AP50':>6s}", f"{'all classes':14s} {percent(metrics['mAP'])} {percent(metrics['mAP50'])}"]
    for name, values in metrics["per_class"].items():
        lines.append(f"{name:14s} {percent(values['AP'])} {percent(values['AP50'])}")
    lines.append(f"AP75 {percent(metrics['mAP75'])}   AP small/medium/large "
                 f"{percent(metrics['mAP_small'])} {percent(metrics['mAP_medium'])} {percent(metrics['mAP_large'])}")
    return "\n".join(lines)


def check_evaluation_set(dataset):
    """:class:`DatasetError` when COCO AP cannot be computed on ``dataset``: no images, or no object to find
    (pycocotools would answer every AP with -1, "n/a")."""
    if not dataset.records:
        raise DatasetError(f"{dataset.annotations_path}: no images to evaluate on; pass an annotation file with "
                           "images and their objects")
    if not any(len(record.boxes) for record in dataset.records):
        raise DatasetError(f"{dataset.annotations_path}: no objects to evaluate against (its "
                           f"{len(dataset.records)} images have no annotations that are not crowd regions), so "
                           "every AP would be n/a; pass an annotation file with objects")


def evaluate(run_dir, annotations, images, output=None, batch_size=16):
    """Evaluate a trained run on a COCO-format dataset; writes ``output`` (JSON) and returns the metrics.

    Raises:
        DatasetError: a dataset that cannot be used (:func:`retinanet.data.load_coco`), or one with no images
            or no objects (:func:`check_evaluation_set`); checked before the model is loaded.
    """
    from retinanet.run.run_dir import RunError, load_trained_model

    dataset = load_coco(annotations, images)
    check_evaluation_set(dataset)
    detector, config = load_trained_model(run_dir)
    if dataset.class_names != config.class_names:
        raise RunError(f"{annotations} has classes {dataset.class_names}, the model in {run_dir} was trained on "
                       f"{config.class_names}")
    results = predict_dataset(detector, dataset.records, dataset.category_ids, batch_size)
    metrics = coco_evaluate(annotations, results)
    metrics.update({"annotations": os.path.abspath(annotations), "run_dir": os.path.abspath(run_dir),
                    "num_images": len(dataset.records), "image_size": config.image_size})
    if output:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        with open(output, "w") as f:
            json.dump(metrics, f, indent=1)
    return metrics
