"""Box geometry: pairwise IoU and the anchor-relative box coding.

Boxes are ``[x1, y1, x2, y2]`` in pixels on continuous coordinates: a box's width is ``x2 − x1`` (no
"+1" pixel convention). The regression targets are the R-CNN parameterisation that RetinaNet inherits
(Lin et al., Sec. 4, "Box Regression Subnet"; Girshick et al., Fast R-CNN), divided by the usual
variances so that all four targets have a similar spread.

Every function takes and returns tensors of the Keras backend (``keras.ops``), with any leading batch
dimensions.
"""

import math

from retinanet._keras import concrete_value, ops

BOX_VARIANCES = (0.1, 0.1, 0.2, 0.2)
"""Scale of the centre (x, y) and log-size (w, h) deltas: targets are divided by these."""

_EPSILON = 1e-8

MAX_LOG_SIZE_DELTA = math.log(1000.0 / 16.0)
"""Clamp on decoded log-size deltas (as in Detectron) so that an untrained head cannot overflow exp()."""


def _as_boxes(boxes, name):
    """``boxes`` as a float32 tensor ``(..., 4)``; clear ``ValueError`` for a wrong shape or, when values
    are known (eager execution), for a box with x2 < x1 or y2 < y1."""
    boxes = ops.convert_to_tensor(boxes, dtype="float32")
    if len(boxes.shape) < 1 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (..., 4) as [x1, y1, x2, y2], got {tuple(boxes.shape)}")
    values = concrete_value(boxes)
    if values is not None and ((values[..., 2] < values[..., 0]).any() or (values[..., 3] < values[..., 1]).any()):
        raise ValueError(f"{name} contains a box with negative width or height (x2 < x1 or y2 < y1)")
    return boxes


def box_areas(boxes):
    """Areas of ``[x1, y1, x2, y2]`` boxes."""
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def iou(boxes_a, boxes_b):
    """Pairwise intersection over union, ``(..., N, 4), (..., M, 4) → (..., N, M)``.

    Leading dimensions broadcast (anchors ``(N, 4)`` against a batch of boxes ``(B, M, 4)`` gives
    ``(B, N, M)``). Two empty boxes have IoU 0, not 0/0.
    """
    boxes_a, boxes_b = _as_boxes(boxes_a, "boxes_a"), _as_boxes(boxes_b, "boxes_b")
    if len(boxes_a.shape) < 2 or len(boxes_b.shape) < 2:
        raise ValueError(
            f"iou expects two (N, 4) matrices, got {tuple(boxes_a.shape)} and {tuple(boxes_b.shape)}"
        )
    top_left = ops.maximum(boxes_a[..., :, None, :2], boxes_b[..., None, :, :2])
    bottom_right = ops.minimum(boxes_a[..., :, None, 2:], boxes_b[..., None, :, 2:])
    overlap = ops.maximum(bottom_right - top_left, 0.0)
    intersection = overlap[..., 0] * overlap[..., 1]
    union = box_areas(boxes_a)[..., :, None] + box_areas(boxes_b)[..., None, :] - intersection
    return ops.divide_no_nan(intersection, union)


def to_centre_size(boxes):
    """``[x1, y1, x2, y2]`` → ``[cx, cy, w, h]``."""
    return ops.concatenate([(boxes[..., :2] + boxes[..., 2:]) / 2.0, boxes[..., 2:] - boxes[..., :2]], axis=-1)


def to_corners(boxes):
    """``[cx, cy, w, h]`` → ``[x1, y1, x2, y2]``."""
    return ops.concatenate([boxes[..., :2] - boxes[..., 2:] / 2.0, boxes[..., :2] + boxes[..., 2:] / 2.0], axis=-1)


def encode(anchors, boxes):
    """Regression targets of ``boxes`` relative to ``anchors`` (shapes ``(..., 4)``, corners).

    ``[(x − xa)/wa, (y − ya)/ha, log(w/wa), log(h/ha)] / BOX_VARIANCES``.
    """
    anchors = to_centre_size(_as_boxes(anchors, "anchors"))
    boxes = to_centre_size(_as_boxes(boxes, "boxes"))
    centre_deltas = (boxes[..., :2] - anchors[..., :2]) / anchors[..., 2:]
    size_deltas = ops.log(ops.maximum(boxes[..., 2:], _EPSILON) / anchors[..., 2:])
    return ops.concatenate([centre_deltas, size_deltas], axis=-1) / ops.convert_to_tensor(BOX_VARIANCES)


def decode(anchors, deltas):
    """Inverse of :func:`encode`: boxes ``[x1, y1, x2, y2]`` from anchors and predicted deltas."""
    anchors = to_centre_size(_as_boxes(anchors, "anchors"))
    deltas = ops.convert_to_tensor(deltas, dtype="float32")
    if len(deltas.shape) < 1 or deltas.shape[-1] != 4:
        raise ValueError(f"deltas must have shape (..., 4), got {tuple(deltas.shape)}")
    deltas = deltas * ops.convert_to_tensor(BOX_VARIANCES)
    centres = anchors[..., :2] + deltas[..., :2] * anchors[..., 2:]
    sizes = anchors[..., 2:] * ops.exp(ops.minimum(deltas[..., 2:], MAX_LOG_SIZE_DELTA))
    return to_corners(ops.concatenate([centres, sizes], axis=-1))
