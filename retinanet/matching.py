"""Target assignment: which anchor learns which object.

Lin et al., Sec. 4, "Anchors": an anchor is assigned to the ground-truth box it overlaps most if their
IoU is at least 0.5 (foreground), to background if its best IoU is below 0.4, and is ignored during
training in between. As in torchvision's and detectron2's ``Matcher`` with ``allow_low_quality_matches``
(``torchvision/models/detection/_utils.py``, ``detectron2/modeling/matcher.py``), every ground-truth box
also makes positive the anchors that overlap it most, all of those that tie, whatever that IoU (also below
0.4), so that a small or oddly shaped object still trains some anchor; unlike them, only a box that
overlaps some anchor (IoU > 0) does so, since every anchor ties for the best IoU of a box that overlaps
none. Such an anchor is never ignored, and it regresses, like every positive anchor, to the box it overlaps
most (its own best box, not the box that claimed it as SSD would). The paper's code, Detectron
(``detectron/roi_data/retinanet.py``, ``_get_retinanet_blobs``), sets ``labels[bg_inds] = 0`` after the
low-quality labels, so there a claimed anchor below IoU 0.4 is background again.

Shapes are fixed, so that assignment runs inside a compiled training step on any backend: the ground
truth of an image is padded to a maximum count ``M`` and a validity mask says which rows are real
(images without objects have no valid row). Every function accepts leading batch dimensions.

A target row per anchor is ``[dx, dy, dw, dh, label]``: the encoded box (see :mod:`retinanet.boxes`)
and the class id for a positive anchor, :data:`BACKGROUND` or :data:`IGNORE` otherwise.
"""

from retinanet._keras import ops
from retinanet.boxes import encode, iou

POSITIVE_IOU = 0.5
"""An anchor whose best IoU with a ground-truth box is ≥ 0.5 is foreground (Sec. 4)."""

NEGATIVE_IOU = 0.4
"""An anchor whose best IoU is < 0.4 is background; in [0.4, 0.5) it is ignored (Sec. 4)."""

BACKGROUND = -1.0
"""Label of a background anchor in the targets' last column."""

IGNORE = -2.0
"""Label of an ignored anchor in the targets' last column."""

def _append_row(values, axis, fill=0):
    """``values`` with one more row filled with ``fill`` at the end of ``axis`` (-1 or -2); works with
    unknown leading dimensions (a traced batch)."""
    rank = len(values.shape)
    widths = [(0, 0)] * rank
    widths[rank + axis] = (0, 1)
    return ops.pad(values, widths, constant_values=fill)


def _pad_one_invalid_box(gt_boxes, gt_valid):
    """Append one invalid row, so that every reduction over boxes has something to reduce, even M = 0."""
    gt_valid = ops.cast(_append_row(ops.cast(gt_valid, "int32"), -1), "bool")
    return _append_row(gt_boxes, -2), gt_valid


def _same_shape(shape_a, shape_b):
    """Whether two shapes can be equal (unknown sizes, ``None``, match anything)."""
    return len(shape_a) == len(shape_b) and all(a is None or b is None or a == b for a, b in zip(shape_a, shape_b))


def _as_ground_truth(gt_boxes, gt_valid):
    """``gt_boxes`` as float32 ``(..., M, 4)`` (an empty list becomes ``(0, 4)``) and a bool mask ``(..., M)``."""
    gt_boxes = ops.convert_to_tensor(gt_boxes, dtype="float32")
    if len(gt_boxes.shape) == 1 and gt_boxes.shape[0] == 0:
        gt_boxes = ops.reshape(gt_boxes, (0, 4))
    if len(gt_boxes.shape) < 2 or gt_boxes.shape[-1] != 4:
        raise ValueError(f"gt_boxes must have shape (M, 4) as [x1, y1, x2, y2], got {tuple(gt_boxes.shape)}")
    if gt_valid is None:
        gt_valid = ops.ones_like(gt_boxes[..., 0], dtype="bool")
    gt_valid = ops.convert_to_tensor(gt_valid, dtype="bool")
    if not _same_shape(gt_valid.shape, gt_boxes.shape[:-1]):
        raise ValueError(f"gt_valid must have shape {tuple(gt_boxes.shape[:-1])}, got {tuple(gt_valid.shape)}")
    return gt_boxes, gt_valid


def match_anchors(anchors, gt_boxes, positive_iou=POSITIVE_IOU, negative_iou=NEGATIVE_IOU, gt_valid=None):
    """Match anchors ``(N, 4)`` to ground-truth boxes ``(..., M, 4)``.

    Args:
        anchors: ``(N, 4)`` boxes.
        gt_boxes: ``(..., M, 4)`` boxes; ``M`` may be 0.
        positive_iou, negative_iou: the two IoU thresholds (0.5 and 0.4 in the paper).
        gt_valid: optional boolean ``(..., M)``: which rows of ``gt_boxes`` are real objects (padding
            rows are ignored); all by default.

    Returns:
        ``(matched_index, positive, ignored)``, each ``(..., N)``: the index of the valid box each anchor
        overlaps most (0 when there is none; the argmax of its IoU row, also for an anchor made positive by
        another box), and two boolean masks: positive (IoU ≥ ``positive_iou``, or among the tied best anchors
        of a box it overlaps) and ignored (best IoU in [``negative_iou``, ``positive_iou``) and not positive).
        An anchor that is neither positive nor ignored is background.
    """
    if not 0.0 <= negative_iou <= positive_iou <= 1.0:
        raise ValueError(f"need 0 <= negative_iou <= positive_iou <= 1, got {negative_iou}, {positive_iou}")
    gt_boxes, gt_valid = _pad_one_invalid_box(*_as_ground_truth(gt_boxes, gt_valid))
    overlaps = ops.where(gt_valid[..., None, :], iou(anchors, gt_boxes), -1.0)  # (..., N, M + 1)

    best_iou = ops.max(overlaps, axis=-1)
    matched_index = ops.cast(ops.argmax(overlaps, axis=-1), "int32")
    positive = best_iou >= positive_iou
    ignored = ops.logical_and(best_iou >= negative_iou, ops.logical_not(positive))

    # Low-quality matches: each box that overlaps some anchor makes its best anchors positive (all that
    # tie for the best IoU), whatever that IoU is.
    best_per_box = ops.max(overlaps, axis=-2, keepdims=True)  # (..., 1, M + 1)
    claims = ops.logical_and(gt_valid[..., None, :], best_per_box > 0.0)
    forced = ops.any(ops.logical_and(overlaps == best_per_box, claims), axis=-1)
    return matched_index, ops.logical_or(positive, forced), ops.logical_and(ignored, ops.logical_not(forced))


def _gather_boxes(gt_boxes, index):
    """Rows ``index (..., N)`` of ``gt_boxes (..., M, 4)``: ``(..., N, 4)``."""
    return ops.take_along_axis(gt_boxes, ops.expand_dims(index, -1), axis=-2)


def assign_targets(anchors, gt_boxes, gt_classes, gt_valid=None):
    """Training targets ``(..., N, 5)`` = ``[encoded box (4), label]``.

    Args:
        anchors: ``(N, 4)`` from :func:`retinanet.anchors.generate_anchors`.
        gt_boxes: ``(..., M, 4)`` ground-truth boxes in pixels (``M`` may be 0).
        gt_classes: ``(..., M)`` class ids in ``[0, K)``.
        gt_valid: optional boolean ``(..., M)`` marking the real rows of padded ground truth.
    """
    anchors = ops.convert_to_tensor(anchors, dtype="float32")
    gt_boxes, gt_valid = _as_ground_truth(gt_boxes, gt_valid)
    gt_classes = ops.cast(ops.convert_to_tensor(gt_classes), "float32")
    if len(gt_classes.shape) == 1 and gt_classes.shape[0] == 0:
        gt_classes = ops.zeros_like(gt_boxes[..., 0])
    if not _same_shape(gt_classes.shape, gt_boxes.shape[:-1]):
        raise ValueError(
            f"need one class per box: got gt_boxes {tuple(gt_boxes.shape)} and gt_classes {tuple(gt_classes.shape)}"
        )
    matched_index, positive, ignored = match_anchors(anchors, gt_boxes, gt_valid=gt_valid)

    gt_boxes, _ = _pad_one_invalid_box(gt_boxes, gt_valid)  # so that index 0 exists when M = 0
    gt_classes = _append_row(gt_classes, -1, fill=BACKGROUND)
    safe_boxes = ops.where(positive[..., None], _gather_boxes(gt_boxes, matched_index), anchors)
    box_targets = ops.where(positive[..., None], encode(anchors, safe_boxes), 0.0)
    labels = ops.where(positive, ops.take_along_axis(gt_classes, matched_index, axis=-1), BACKGROUND)
    labels = ops.where(ignored, IGNORE, labels)
    return ops.concatenate([box_targets, labels[..., None]], axis=-1)
