"""Stage 3, exercise 2, IoU: ``iou(boxes_a, boxes_b)`` (TEST_IOU).

The pairwise intersection over union of two sets of [x1, y1, x2, y2] boxes in continuous coordinates: the
overlap that decides which anchors match which ground-truth boxes.
"""

import numpy as np

from retinanet.boxes import iou as reference_iou

from course_checks.harness import (Cause, Variant, as_array, call_learner, check, close, diagnose, expect, fail,
                                   passed, random_generator)


EMPTY_BOX = [5.0, 5.0, 5.0, 5.0]
"""A box without area; IoU of two empty boxes is 0/0, which must come out as 0."""

IOU_TRANSPOSED = Cause(
    "iou.transposed",
    "{what} should have shape (N, M) = {expected}, found {found}: rows index boxes_a and columns boxes_b.")
IOU_SHAPE = Cause(
    "iou.shape", "{what} should return the pairwise matrix of shape (N, M) = {expected}, found {found}.")
IOU_EMPTY_BOXES = Cause(
    "iou.empty_boxes",
    "{what} returned NaN for two empty boxes ({box_a} and {box_b}): their union is 0; return 0 there "
    "(`tf.math.divide_no_nan(intersection, union)`).")
IOU_PLUS_ONE = Cause(
    "iou.plus_one",
    "{what} uses the '+1' pixel convention (width = x2 − x1 + 1); the course's boxes are continuous, width = "
    "x2 − x1.")
IOU_NO_CLAMP = Cause(
    "iou.no_clamp",
    "{what} gives disjoint boxes a nonzero overlap: clamp the intersection's width and height at 0 "
    "(tf.maximum(..., 0.0)).")
IOU_NO_SUBTRACT = Cause(
    "iou.no_subtract",
    "{what}: the union must subtract the intersection: union = area_a + area_b − intersection.")
IOU_OVER_SMALLER = Cause(
    "iou.over_smaller",
    "{what} divides the intersection by the smaller box's area; IoU divides by the union, area_a + area_b − "
    "intersection.")
IOU_CORNERS_SWAPPED = Cause(
    "iou.corners_swapped",
    "{what}: the intersection runs from the larger top-left corner (maximum of x1 and of y1) to the smaller "
    "bottom-right corner (minimum of x2 and of y2); you took them the other way round.")
IOU_DIFFERS = Cause(
    "iou.differs",
    "{what} differs from the reference: IoU({box_a}, {box_b}) should be {expected}, found {found}; IoU = "
    "intersection / union.")


def _iou_with(a, b, plus=0.0, clamp=True, subtract=True, over_smaller=False, corners_swapped=False):
    """Pairwise IoU in float64 with optional mistakes; 0 where the denominator is 0."""
    pick_top_left, pick_bottom_right = (np.minimum, np.maximum) if corners_swapped else (np.maximum, np.minimum)
    top_left = pick_top_left(a[:, None, :2], b[None, :, :2])
    bottom_right = pick_bottom_right(a[:, None, 2:], b[None, :, 2:])
    size = bottom_right - top_left + plus
    if clamp:
        size = np.maximum(size, 0.0)
    intersection = size[..., 0] * size[..., 1]
    area_a = (a[:, 2] - a[:, 0] + plus) * (a[:, 3] - a[:, 1] + plus)
    area_b = (b[:, 2] - b[:, 0] + plus) * (b[:, 3] - b[:, 1] + plus)
    if over_smaller:
        denominator = np.minimum(area_a[:, None], area_b[None, :])
    else:
        denominator = area_a[:, None] + area_b[None, :] - (intersection if subtract else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator != 0, intersection / denominator, 0.0)


IOU_VARIANTS = (
    Variant(IOU_PLUS_ONE, lambda a, b: _iou_with(a, b, plus=1.0)),
    Variant(IOU_NO_CLAMP, lambda a, b: _iou_with(a, b, clamp=False)),
    Variant(IOU_NO_SUBTRACT, lambda a, b: _iou_with(a, b, subtract=False)),
    Variant(IOU_OVER_SMALLER, lambda a, b: _iou_with(a, b, over_smaller=True)),
    Variant(IOU_CORNERS_SWAPPED, lambda a, b: _iou_with(a, b, corners_swapped=True)),
)
"""IoU with one mistake made, tried in this order."""


def _iou_case():
    """Identical, overlapping, touching, disjoint, nested, empty and random boxes (N = 10, M = 7)."""
    corners = random_generator(4).uniform(0, 80, size=(7, 2, 2))
    random_boxes = np.concatenate([corners.min(1), corners.max(1)], axis=1)
    boxes_a = np.concatenate([[[0, 0, 10, 10], [20, 20, 30, 40], EMPTY_BOX], random_boxes]).astype(np.float32)
    boxes_b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [10, 10, 20, 20], [40, 0, 50, 30], [22, 25, 28, 35],
                        [0, 0, 100, 100], EMPTY_BOX], np.float32)
    return boxes_a, boxes_b


def _box(box):
    return "[" + ", ".join(f"{v:g}" for v in np.round(box, 2)) + "]"


def _two_values(expected, found):
    """The two numbers printed with as many digits as it takes for them to read differently."""
    for digits in (3, 5, 7, 9):
        texts = f"{expected:.{digits}g}", f"{found:.{digits}g}"
        if texts[0] != texts[1]:
            return texts
    return texts


@check
def TEST_IOU(iou):
    """``iou(boxes_a, boxes_b)`` → pairwise (N, M) IoU, continuous coordinates."""
    boxes_a, boxes_b = _iou_case()
    what = "iou(boxes_a, boxes_b)"
    found = as_array(call_learner(what, iou, boxes_a, boxes_b), f"{what}'s result")
    expected = np.asarray(reference_iou(boxes_a, boxes_b), np.float64)
    details = dict(what=what, expected=expected.shape, found=found.shape)
    expect(not (found.shape == expected.shape[::-1] and found.shape != expected.shape), IOU_TRANSPOSED, **details)
    expect(found.shape == expected.shape, IOU_SHAPE, **details)
    bad = np.argwhere(~np.isfinite(found))
    empty_a, empty_b = _areas(boxes_a) == 0, _areas(boxes_b) == 0
    if len(bad) and all(empty_a[i] and empty_b[j] for i, j in bad):
        i, j = bad[0]
        fail(IOU_EMPTY_BOXES, what=what, box_a=_box(boxes_a[i]), box_b=_box(boxes_b[j]))
    if close(found, expected, atol=1e-5):
        passed("TEST_IOU passed: pairwise IoU matches the reference on identical, overlapping, touching, disjoint, "
               "nested and empty boxes.")
        return
    diagnose(found, IOU_VARIANTS, lambda f, e: close(f, e, atol=1e-4), boxes_a.astype(np.float64),
             boxes_b.astype(np.float64), what=what)
    i, j = np.unravel_index(np.argmax(np.nan_to_num(np.abs(found - expected), nan=np.inf)), expected.shape)
    expected_text, found_text = _two_values(expected[i, j], found[i, j])
    fail(IOU_DIFFERS, what=what, box_a=_box(boxes_a[i]), box_b=_box(boxes_b[j]), expected=expected_text,
         found=found_text)


def _areas(boxes):
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
