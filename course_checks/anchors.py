"""Stage 3, anchors and targets: ``generate_anchors``, ``iou``, ``match_anchors``, ``encode`` / ``decode``.

Lin et al., Sec. 4, "Anchors": 9 anchors per location (3 scales × 3 aspect ratios) on P3–P7 with areas 32²
to 512²; an anchor is positive at IoU ≥ 0.5 with its best ground-truth box, background below 0.4, ignored
in between; as in the paper's code (Detectron), each box also makes positive the anchors that overlap it
most, which keep their own best box. Box regression uses the R-CNN coding with variances.
"""

import math

import numpy as np

from retinanet.anchors import (ANCHOR_SCALES, ANCHOR_SIZES, ASPECT_RATIOS, PYRAMID_LEVELS, anchors_per_level,
                               generate_anchors as reference_anchors)
from retinanet.boxes import BOX_VARIANCES, decode as reference_decode, encode as reference_encode, iou as reference_iou
from retinanet.matching import NEGATIVE_IOU, POSITIVE_IOU, match_anchors as reference_match

from course_checks.harness import (Cause, Variant, as_array, call_learner, check, close, describe, diagnose, expect,
                                   fail, passed, random_generator)

# --------------------------------------------------------------------------------------------------
# Exercise 1: anchors
# --------------------------------------------------------------------------------------------------

ANCHOR_IMAGE_SIZES = ((64, 96), (128, 128))
"""A non-square image (x and y cannot be confused; P6 and P7 round up) and the course's square one."""

ANCHORS_SHAPE = Cause(
    "anchors.shape",
    "{what} should return shape {expected} ([x1, y1, x2, y2] per anchor), found {found}; levels P3–P7 with "
    "{anchors} anchors per location give {per_level} per level.")
ANCHORS_ONE_PER_LOCATION = Cause(
    "anchors.one_per_location",
    "{what} should return shape {expected}, found {found}: only one anchor per location; use 3 scales × 3 "
    "aspect ratios = {anchors}.")
ANCHORS_THREE_PER_LOCATION = Cause(
    "anchors.three_per_location",
    "{what} should return shape {expected}, found {found}: 3 anchors per location; combine every one of the 3 "
    "scales with every one of the 3 ratios ({anchors}).")
ANCHORS_FLOOR = Cause(
    "anchors.floor",
    "{what} should return shape {expected}, found {found}: a level of an image whose side is not a multiple of "
    "its stride has ceil(side / stride) cells ('same'-padded stride-2 convolutions round up), not floor.")
ANCHORS_SWAPPED_XY = Cause(
    "anchors.swapped_xy",
    "{what} has x and y swapped: boxes are [x1, y1, x2, y2] with x along the width (columns) and y along the "
    "height (rows).")
ANCHORS_NOT_CENTRED = Cause(
    "anchors.not_centred",
    "{what} puts anchor centres at the top-left corner of each cell; centre them at ((column + 0.5) · stride, "
    "(row + 0.5) · stride).")
ANCHORS_CENTRE_SIZE = Cause(
    "anchors.centre_size", "{what} returns [cx, cy, w, h]; convert to corners [x1, y1, x2, y2].")
ANCHORS_NORMALISED = Cause(
    "anchors.normalised",
    "{what} divides the anchors by the image size; anchors are in pixels, like every box of the course.")
ANCHORS_RATIO_INVERTED = Cause(
    "anchors.ratio_inverted",
    "{what} reads the aspect ratio as width : height; it is height : width, so ratio r gives width S/√r and "
    "height S·√r (ratio 0.5 is a wide anchor).")
ANCHORS_SCALE_ON_AREA = Cause(
    "anchors.scale_on_area",
    "{what} applies the scales to the area; they multiply the side: side = base size · scale, scales "
    "2^0, 2^(1/3), 2^(2/3).")
ANCHORS_AREA_NOT_KEPT = Cause(
    "anchors.area_not_kept",
    "{what} changes the anchor's area with its aspect ratio; keep the area S²: width S/√r and height S·√r.")
ANCHORS_SCALE_MAJOR = Cause(
    "anchors.scale_major",
    "{what} has the right anchors in the wrong order: the {anchors} anchors of a location go aspect ratio major, "
    "scale minor (ratio {ratios}, each with its 3 scales), the order of the model's output rows.")
ANCHORS_COLUMN_MAJOR = Cause(
    "anchors.column_major",
    "{what} has the right anchors in the wrong order: the locations of a level go row by row (row major: "
    "row, then column), like the reshaped feature map.")
ANCHORS_LEVELS_REVERSED = Cause(
    "anchors.levels_reversed",
    "{what} has the right anchors in the wrong order: the levels go P3 first, P7 last, like the model's output.")
ANCHORS_ORDER = Cause(
    "anchors.order",
    "{what} has the right anchors in the wrong order; the order is level (P3 first), row, column, then the {anchors} "
    "anchors of a location (aspect ratio major, scale minor).")
ANCHORS_LEVEL_DIFFERS = Cause(
    "anchors.level_differs",
    "{what}: the anchors of P{level} (stride {stride}) differ; they should have sides {base:g} · (2^0, 2^(1/3), "
    "2^(2/3)) (found {smallest:.1f} … {largest:.1f}) and height/width ratios {ratios} (found {found_ratios}), "
    "centred in their cells.")


def anchor_grid(height, width, *, cells=math.ceil, offset=0.5, scale_major=False, column_major=False,
                ratio_inverted=False, scale_on_area=False, keep_area=True, levels_reversed=False):
    """The anchors of the paper with optional mistakes; without any it equals the reference's anchors."""
    levels = []
    for level, base in zip(PYRAMID_LEVELS, ANCHOR_SIZES):
        stride = 2 ** level
        rows, cols = cells(height / stride), cells(width / stride)
        ys, xs = (np.arange(rows) + offset) * stride, (np.arange(cols) + offset) * stride
        if column_major:
            centre_x, centre_y = np.meshgrid(xs, ys, indexing="ij")
        else:
            centre_y, centre_x = np.meshgrid(ys, xs, indexing="ij")
        pairs = ([(ratio, scale) for scale in ANCHOR_SCALES for ratio in ASPECT_RATIOS] if scale_major else
                 [(ratio, scale) for ratio in ASPECT_RATIOS for scale in ANCHOR_SCALES])
        shapes = []
        for ratio, scale in pairs:
            side = base * (math.sqrt(scale) if scale_on_area else scale)
            ratio = 1.0 / ratio if ratio_inverted else ratio
            shapes.append((side / math.sqrt(ratio), side * math.sqrt(ratio)) if keep_area else (side, side * ratio))
        centres = np.stack([centre_x, centre_y], axis=-1).reshape(-1, 1, 2)
        half = np.array(shapes).reshape(1, -1, 2) / 2.0
        levels.append(np.concatenate([centres - half, centres + half], axis=-1).reshape(-1, 4))
    return np.concatenate(levels[::-1] if levels_reversed else levels)


def _centre_size(boxes):
    return np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=1)


ANCHOR_VARIANTS = (
    Variant(ANCHORS_SWAPPED_XY, lambda h, w: anchor_grid(h, w)[:, [1, 0, 3, 2]]),
    Variant(ANCHORS_NOT_CENTRED, lambda h, w: anchor_grid(h, w, offset=0.0)),
    Variant(ANCHORS_CENTRE_SIZE, lambda h, w: _centre_size(anchor_grid(h, w))),
    Variant(ANCHORS_NORMALISED, lambda h, w: anchor_grid(h, w) / np.array([w, h, w, h])),
    Variant(ANCHORS_RATIO_INVERTED, lambda h, w: anchor_grid(h, w, ratio_inverted=True)),
    Variant(ANCHORS_SCALE_ON_AREA, lambda h, w: anchor_grid(h, w, scale_on_area=True)),
    Variant(ANCHORS_AREA_NOT_KEPT, lambda h, w: anchor_grid(h, w, keep_area=False)),
    Variant(ANCHORS_SCALE_MAJOR, lambda h, w: anchor_grid(h, w, scale_major=True)),
    Variant(ANCHORS_COLUMN_MAJOR, lambda h, w: anchor_grid(h, w, column_major=True)),
    Variant(ANCHORS_LEVELS_REVERSED, lambda h, w: anchor_grid(h, w, levels_reversed=True)),
)
"""The anchors with one mistake made, tried in this order."""


def _sorted_rows(boxes):
    boxes = np.round(np.asarray(boxes, np.float64), 3)
    return boxes[np.lexsort(boxes.T[::-1])]


def _anchors_match(found, expected):
    return close(found, expected, atol=1e-3)


def _check_anchor_count(found, expected, height, width, what):
    __tracebackhide__ = True  # noqa: F841
    if found.shape == expected.shape:
        return
    details = dict(what=what, expected=expected.shape, found=found.shape)
    if found.ndim == 2 and found.shape[1] == 4:
        if found.shape[0] * 9 == expected.shape[0]:
            fail(ANCHORS_ONE_PER_LOCATION, **details)
        if found.shape[0] * 3 == expected.shape[0]:
            fail(ANCHORS_THREE_PER_LOCATION, **details)
        if found.shape == anchor_grid(height, width, cells=math.floor).shape:
            fail(ANCHORS_FLOOR, **details)
    fail(ANCHORS_SHAPE, per_level=anchors_per_level(height, width), **details)


def _diagnose_level(found, expected, height, width, what):
    __tracebackhide__ = True  # noqa: F841
    start = 0
    for level, count, base in zip(PYRAMID_LEVELS, anchors_per_level(height, width), ANCHOR_SIZES):
        chunk = slice(start, start + count)
        start += count
        if close(found[chunk], expected[chunk], atol=1e-3):
            continue
        boxes = found[chunk]
        sides = np.sqrt(np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 0.0))
        ratios = np.unique(np.round((boxes[:, 3] - boxes[:, 1]) / np.maximum(boxes[:, 2] - boxes[:, 0], 1e-9), 2))
        fail(ANCHORS_LEVEL_DIFFERS, what=what, level=level, stride=2 ** level, base=base, smallest=sides.min(),
             largest=sides.max(), found_ratios=", ".join(f"{r:g}" for r in ratios[:6]))


@check
def TEST_ANCHORS(generate_anchors):
    """``generate_anchors(image_height, image_width)``: count, order, centres, sizes and aspect ratios."""
    __tracebackhide__ = True  # noqa: F841
    for height, width in ANCHOR_IMAGE_SIZES:
        what = f"generate_anchors({height}, {width})"
        found = as_array(call_learner(what, generate_anchors, height, width), f"{what}'s result")
        expected = reference_anchors(height, width).astype(np.float64)
        _check_anchor_count(found, expected, height, width, what)
        if _anchors_match(found, expected):
            continue
        diagnose(found, ANCHOR_VARIANTS, _anchors_match, height, width, what=what)
        expect(not close(_sorted_rows(found), _sorted_rows(expected), atol=1e-3), ANCHORS_ORDER, what=what)
        _diagnose_level(found, expected, height, width, what)
    passed(f"TEST_ANCHORS passed: {len(ANCHOR_SCALES) * len(ASPECT_RATIOS)} anchors per location on P3–P7, in the "
           "reference order, with the paper's sizes, ratios and centres.")


# --------------------------------------------------------------------------------------------------
# Exercise 2: IoU
# --------------------------------------------------------------------------------------------------

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
    __tracebackhide__ = True  # noqa: F841
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


# --------------------------------------------------------------------------------------------------
# Exercise 3: matching
# --------------------------------------------------------------------------------------------------

MATCHING_RETURNS = Cause(
    "matching.returns",
    "{what} should return three things (matched_index, positive, ignored), found {found}.")
MATCHING_SHAPES = Cause(
    "matching.shapes",
    "{what} should return three vectors with one entry per anchor, shape {expected}, found {found}.")
MATCHING_NO_OVERLAP_CLAIMS = Cause(
    "matching.no_overlap_claims",
    "Box {box} overlaps no anchor (IoU 0 with all of them), yet anchor {anchor}, which overlaps no box, is "
    "positive: only a box whose best IoU is above 0 makes its best anchors positive.")
MATCHING_BOTH = Cause(
    "matching.both",
    "Anchor {anchor} is both positive and ignored; an ignored anchor is one that is neither positive nor "
    "background.")
MATCHING_THRESHOLDS = Cause(
    "matching.thresholds",
    "An anchor with a best IoU of {iou:.2f} should be {expected}, found {found}; the rule is IoU ≥ "
    "{positive_iou} → positive, IoU < {negative_iou} → background, and anchors in [{negative_iou}, "
    "{positive_iou}) are ignored (check the thresholds).")
MATCHING_STRICT_POSITIVE = Cause(
    "matching.strict_positive",
    "An anchor with a best IoU of exactly {positive_iou} should be positive, found {found}: positive means "
    "IoU ≥ {positive_iou} (≥ vs >).")
MATCHING_STRICT_NEGATIVE = Cause(
    "matching.strict_negative",
    "An anchor with a best IoU of exactly {negative_iou} should be ignored, found {found}: background means "
    "IoU < {negative_iou} (< vs ≤).")
MATCHING_NO_LOW_QUALITY = Cause(
    "matching.no_low_quality",
    "Anchor {anchor} is the best anchor of a small ground-truth box but has only an IoU of {iou:.2f}; it "
    "should be positive, found {found}: every ground-truth box makes its best-overlapping anchor positive "
    "(low-quality match), so no object is left without an anchor.")
MATCHING_TIES = Cause(
    "matching.ties",
    "Anchors {tied} tie for box {box}'s best IoU ({iou:.2f}), so all of them are positive, but anchor "
    "{anchor} is {found}: a box makes positive every anchor whose IoU equals its best (compare with the "
    "column's maximum, not argmax, which picks one).")
MATCHING_FORCED_IN_BAND = Cause(
    "matching.forced_in_band",
    "Anchor {anchor} is box {box}'s best anchor with an IoU of {iou:.2f}, inside the ignored band; it should "
    "be positive and not ignored, found {found}: a box's best anchors are positive whatever their IoU, and "
    "a positive anchor is never ignored.")
MATCHING_REASSIGNED = Cause(
    "matching.reassigned",
    "Anchor {anchor} is matched to box {found}, which claims it as its best anchor, but the anchor overlaps "
    "box {expected} more (IoU {own:.2f} vs {claimed:.2f}): matched_index is the argmax of the anchor's own "
    "IoU row, also for claimed anchors (as in the paper's Detectron code and torchvision).")
MATCHING_WRONG_BOX = Cause(
    "matching.wrong_box",
    "Positive anchor {anchor} is matched to box {found}, but its highest IoU is with box {expected}; "
    "matched_index[i] is the argmax of anchor i's IoU row (axis 1).")
MATCHING_EMPTY = Cause(
    "matching.empty",
    "With no ground-truth boxes every anchor should be background (no positive, no ignored anchor), found "
    "{found}.")


def matching_case():
    """Anchors around the 0.4 / 0.5 thresholds of box 0 and the low-quality cases of boxes 1–5.

    Box 1: two anchors tie for its best IoU (0.16). Box 2: its best anchor sits inside the ignored band
    (IoU 0.45). Boxes 3 and 4: anchor 12 is box 3 itself (IoU 1) and box 4's best anchor (IoU 1/3). Box 5
    overlaps no anchor. Anchor 0 overlaps nothing, so that argmax of an all-zero column lands on it.
    """
    gt_boxes = np.array([[0, 0, 10, 10], [100, 100, 104, 104], [200, 0, 210, 10], [300, 0, 310, 10],
                         [300, 0, 330, 10], [500, 500, 510, 510]], np.float32)
    anchors = np.array([
        [50, 50, 60, 60],      # 0: IoU 0                → background
        [0, 0, 10, 10],        # 1: IoU 1 with box 0     → positive
        [0, 0, 10, 5],         # 2: IoU 0.5 exactly      → positive
        [0, 0, 10, 4.5],       # 3: IoU 0.45             → ignored
        [0, 0, 10, 4],         # 4: IoU 0.4 exactly      → ignored
        [0, 0, 10, 3.9],       # 5: IoU 0.39             → background
        [0, 0, 10, 6],         # 6: IoU 0.6              → positive
        [100, 100, 110, 110],  # 7: IoU 0.16 with box 1, tied best → positive
        [94, 94, 104, 104],    # 8: IoU 0.16 with box 1, tied best → positive
        [98, 98, 110, 110],    # 9: IoU 0.11 with box 1  → background
        [200, 0, 210, 4.5],    # 10: IoU 0.45, box 2's best → positive, not ignored
        [200, 0, 210, 3],      # 11: IoU 0.3 with box 2  → background
        [300, 0, 310, 10],     # 12: IoU 1 with box 3, box 4's best (1/3) → positive, matched to box 3
    ], np.float32)
    return anchors, gt_boxes


def _label(positive, ignored):
    if positive and ignored:
        return "both positive and ignored"
    return "positive" if positive else "ignored" if ignored else "background"


def _diagnose_labels(positive, ignored, anchors, gt_boxes, ref_positive, ref_ignored):
    """The cause of a wrong label, by the rule that the wrong anchor tests (most basic rule first)."""
    __tracebackhide__ = True  # noqa: F841
    overlaps = np.asarray(reference_iou(anchors, gt_boxes))
    best = overlaps.max(axis=1)
    box_best = overlaps.max(axis=0)
    claimed = (overlaps == box_best) & (box_best > 0)  # (anchor, box): the box's best anchors, ties included
    forced = claimed.any(axis=1) & (best < POSITIVE_IOU)  # positive only because a box claims it
    at_threshold = np.isclose(best, POSITIVE_IOU, atol=1e-6) | np.isclose(best, NEGATIVE_IOU, atol=1e-6)
    found = [_label(p, i) for p, i in zip(positive, ignored)]
    wrong = [i for i in range(len(anchors)) if (positive[i], ignored[i]) != (ref_positive[i], ref_ignored[i])]

    for i in wrong:
        if best[i] == 0 and positive[i]:
            fail(MATCHING_NO_OVERLAP_CLAIMS, box=int(np.flatnonzero(box_best <= 0)[0]), anchor=i)
    for i in wrong:
        if positive[i] and ignored[i] and not forced[i]:
            fail(MATCHING_BOTH, anchor=i)
    for i in wrong:
        if not forced[i] and not at_threshold[i]:
            fail(MATCHING_THRESHOLDS, iou=best[i], expected=_label(ref_positive[i], ref_ignored[i]), found=found[i])
    for i in wrong:
        if not forced[i]:
            positive_edge = np.isclose(best[i], POSITIVE_IOU, atol=1e-6)
            fail(MATCHING_STRICT_POSITIVE if positive_edge else MATCHING_STRICT_NEGATIVE, found=found[i])
    for i in wrong:
        box = int(np.flatnonzero(claimed[i])[0])
        details = dict(anchor=i, box=box, iou=best[i], found=found[i])
        if best[i] >= NEGATIVE_IOU:
            fail(MATCHING_FORCED_IN_BAND, **details)
        tied = np.flatnonzero(claimed[:, box])
        if len(tied) > 1 and positive[tied].any():
            fail(MATCHING_TIES, tied=" and ".join(str(t) for t in tied), **details)
        fail(MATCHING_NO_LOW_QUALITY, **details)


def _diagnose_matched_boxes(matched, positive, anchors, gt_boxes):
    __tracebackhide__ = True  # noqa: F841
    overlaps = np.asarray(reference_iou(anchors, gt_boxes))
    box_best = overlaps.max(axis=0)
    for i in np.flatnonzero(positive):
        row = overlaps[i]
        found = int(matched[i])
        if 0 <= found < len(row) and row[found] == row.max():
            continue
        expected = int(row.argmax())
        if 0 <= found < len(row) and row[found] == box_best[found]:
            fail(MATCHING_REASSIGNED, anchor=i, found=found, expected=expected, own=row[expected],
                 claimed=row[found])
        fail(MATCHING_WRONG_BOX, anchor=i, found=found, expected=expected)


def _vectors(result, what):
    __tracebackhide__ = True  # noqa: F841
    expect(isinstance(result, (tuple, list)) and len(result) == 3, MATCHING_RETURNS, what=what, found=describe(result))
    matched = as_array(result[0], "matched_index")
    positive = as_array(result[1], "positive").astype(bool)
    ignored = as_array(result[2], "ignored").astype(bool)
    return matched, positive, ignored


@check
def TEST_MATCHING(match_anchors):
    """``match_anchors(anchors, gt_boxes)`` → (matched_index, positive, ignored) with the 0.5 / 0.4 rule."""
    __tracebackhide__ = True  # noqa: F841
    anchors, gt_boxes = matching_case()
    what = "match_anchors(anchors, gt_boxes)"
    matched, positive, ignored = _vectors(call_learner(what, match_anchors, anchors, gt_boxes), what)
    _, ref_positive, ref_ignored = (np.asarray(x) for x in reference_match(anchors, gt_boxes))
    shapes = (matched.shape, positive.shape, ignored.shape)
    expect(all(shape == ref_positive.shape for shape in shapes), MATCHING_SHAPES, what=what,
           expected=ref_positive.shape, found=", ".join(str(shape) for shape in shapes))
    if not (np.array_equal(positive, ref_positive) and np.array_equal(ignored, ref_ignored)):
        _diagnose_labels(positive, ignored, anchors, gt_boxes, ref_positive, ref_ignored)
    _diagnose_matched_boxes(matched, positive, anchors, gt_boxes)

    empty_what = f"{what} with no ground-truth boxes"
    _, positive, ignored = _vectors(call_learner(empty_what, match_anchors, anchors, np.zeros((0, 4), np.float32)),
                                    empty_what)
    expect(not positive.any() and not ignored.any(), MATCHING_EMPTY,
           found=f"{int(positive.sum())} positive and {int(ignored.sum())} ignored")
    passed(f"TEST_MATCHING passed: IoU ≥ {POSITIVE_IOU:g} positive, < {NEGATIVE_IOU:g} background, ignored between; "
           "every box's best anchors (ties included) positive and matched to their own best box.")


# --------------------------------------------------------------------------------------------------
# Exercise 4: box coding
# --------------------------------------------------------------------------------------------------

LEADING_SHAPE = (2, 6, 4)
"""Encode and decode take (..., 4): the check also passes the boxes as a batch of 2 × 6."""

ENCODE_SHAPE = Cause(
    "box_coding.encode_shape", "encode(anchors, boxes) should return shape {expected}, found {found}.")
ENCODE_NO_VARIANCES = Cause(
    "box_coding.encode_no_variances",
    "encode forgets the variances: divide [dx, dy, dw, dh] by BOX_VARIANCES ({variances}).")
ENCODE_TIMES_VARIANCES = Cause(
    "box_coding.encode_times_variances",
    "encode multiplies by the variances; divide [dx, dy, dw, dh] by BOX_VARIANCES ({variances}) (decode is the "
    "one that multiplies).")
ENCODE_SWAPPED_XY = Cause(
    "box_coding.encode_swapped_xy",
    "encode has x and y swapped: the order is [dx, dy, dw, dh] with x along the width.")
ENCODE_CENTRE_SIGN = Cause(
    "box_coding.encode_centre_sign",
    "encode's centre deltas have the wrong sign: dx = (x − x_a) / w_a, the box's centre minus the anchor's.")
ENCODE_SIZE_INVERTED = Cause(
    "box_coding.encode_size_inverted",
    "encode's size deltas have the wrong sign: dw = log(w / w_a), the box's size over the anchor's.")
ENCODE_NO_LOG = Cause(
    "box_coding.encode_no_log",
    "encode's size deltas are not logarithms: dw = log(w / w_a) / {variance_size}, dh = log(h / h_a) / "
    "{variance_size} (tf.math.log).")
ENCODE_OVER_BOX_SIZE = Cause(
    "box_coding.encode_over_box_size",
    "encode divides the centre offsets by the box's size; divide by the anchor's: dx = (x − x_a) / w_a.")
ENCODE_CORNERS = Cause(
    "box_coding.encode_corners",
    "encode works on corners; convert both to centres and sizes first (to_centre_size), then dx = (x − x_a) / "
    "w_a, dw = log(w / w_a).")
ENCODE_DIFFERS = Cause(
    "box_coding.encode_differs",
    "encode differs from the reference: for anchor {anchor} and box {given} it should give {expected}, found "
    "{found}.")
DECODE_SHAPE = Cause(
    "box_coding.decode_shape", "decode(anchors, deltas) should return shape {expected}, found {found}.")
DECODE_NO_VARIANCES = Cause(
    "box_coding.decode_no_variances",
    "decode forgets the variances: multiply the deltas by BOX_VARIANCES ({variances}) before using them.")
DECODE_OVER_VARIANCES = Cause(
    "box_coding.decode_over_variances",
    "decode divides the deltas by the variances; multiply them by BOX_VARIANCES ({variances}) (encode is the "
    "one that divides).")
DECODE_SWAPPED_XY = Cause(
    "box_coding.decode_swapped_xy",
    "decode has x and y swapped: deltas are [dx, dy, dw, dh], boxes [x1, y1, x2, y2], x along the width.")
DECODE_NO_EXP = Cause(
    "box_coding.decode_no_exp",
    "decode's sizes must undo the logarithm: w = w_a · exp(dw · {variance_size}) (tf.exp).")
DECODE_CENTRE_SIZE = Cause(
    "box_coding.decode_centre_size",
    "decode returns [cx, cy, w, h]; convert back to corners [x1, y1, x2, y2] (to_corners).")
DECODE_DIFFERS = Cause(
    "box_coding.decode_differs",
    "decode differs from the reference: for anchor {anchor} and deltas {given} it should give {expected}, found "
    "{found}.")
LEADING_DIMENSIONS = Cause(
    "box_coding.leading_dimensions",
    "{what} on boxes of shape {shape} {outcome}: both functions take (..., 4) boxes, so index the last axis "
    "(`boxes[..., :2]`, not `boxes[:, :2]`).")

VARIANCES = np.array(BOX_VARIANCES)


def _encode_with(anchors, boxes, variances=VARIANCES, centre_sign=1.0, size_sign=1.0, log=True,
                 over_box_size=False, corners=False):
    """The box coding in float64 with optional mistakes."""
    a, b = _centre_size(anchors), _centre_size(boxes)
    if corners:
        return (boxes - anchors) / np.concatenate([a[:, 2:], a[:, 2:]], axis=1) / variances
    centre = centre_sign * (b[:, :2] - a[:, :2]) / (b[:, 2:] if over_box_size else a[:, 2:])
    ratio = b[:, 2:] / a[:, 2:]
    size = size_sign * np.log(ratio) if log else ratio - 1.0
    return np.concatenate([centre, size], axis=1) / variances


def _corners(centre_size):
    return np.concatenate([centre_size[:, :2] - centre_size[:, 2:] / 2, centre_size[:, :2] + centre_size[:, 2:] / 2],
                          axis=1)


def _decode_with(anchors, deltas, variances=VARIANCES, exp=True, corners=True):
    a = _centre_size(anchors)
    deltas = deltas * variances
    centres = a[:, :2] + deltas[:, :2] * a[:, 2:]
    sizes = a[:, 2:] * (np.exp(deltas[:, 2:]) if exp else 1.0 + deltas[:, 2:])
    boxes = np.concatenate([centres, sizes], axis=1)
    return _corners(boxes) if corners else boxes


ENCODE_VARIANTS = (
    Variant(ENCODE_NO_VARIANCES, lambda a, b: _encode_with(a, b, variances=1.0)),
    Variant(ENCODE_TIMES_VARIANCES, lambda a, b: _encode_with(a, b, variances=1.0 / VARIANCES)),
    Variant(ENCODE_SWAPPED_XY, lambda a, b: _encode_with(a, b)[:, [1, 0, 3, 2]]),
    Variant(ENCODE_CENTRE_SIGN, lambda a, b: _encode_with(a, b, centre_sign=-1.0)),
    Variant(ENCODE_SIZE_INVERTED, lambda a, b: _encode_with(a, b, size_sign=-1.0)),
    Variant(ENCODE_NO_LOG, lambda a, b: _encode_with(a, b, log=False)),
    Variant(ENCODE_OVER_BOX_SIZE, lambda a, b: _encode_with(a, b, over_box_size=True)),
    Variant(ENCODE_CORNERS, lambda a, b: _encode_with(a, b, corners=True)),
)
DECODE_VARIANTS = (
    Variant(DECODE_NO_VARIANCES, lambda a, d: _decode_with(a, d, variances=1.0)),
    Variant(DECODE_OVER_VARIANCES, lambda a, d: _decode_with(a, d, variances=1.0 / VARIANCES)),
    Variant(DECODE_SWAPPED_XY, lambda a, d: _decode_with(a, d[:, [1, 0, 3, 2]])),
    Variant(DECODE_NO_EXP, lambda a, d: _decode_with(a, d, exp=False)),
    Variant(DECODE_CENTRE_SIZE, lambda a, d: _decode_with(a, d, corners=False)),
)


def box_coding_case():
    """12 anchors of different widths and heights, boxes near them, and random deltas."""
    rng = random_generator(5)
    centres = rng.uniform(20, 100, size=(12, 2))
    sizes = rng.uniform(8, 60, size=(12, 2))
    anchors = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1).astype(np.float32)
    shifts = rng.normal(0, 4, size=(12, 2))
    scales = np.exp(rng.normal(0, 0.3, size=(12, 2)))
    boxes = np.concatenate([centres + shifts - sizes * scales / 2, centres + shifts + sizes * scales / 2],
                           axis=1).astype(np.float32)
    deltas = rng.normal(0, 1.0, size=(12, 4)).astype(np.float32)
    return anchors, boxes, deltas


def _row(values):
    return "[" + ", ".join(f"{v:.3g}" for v in values) + "]"


def _check_coding(function, name, anchors, second, reference, variants, shape_cause, differs_cause, atol):
    __tracebackhide__ = True  # noqa: F841
    argument = "boxes" if name == "encode" else "deltas"
    what = f"{name}(anchors, {argument})"
    found = as_array(call_learner(what, function, anchors, second), f"{name}'s result")
    expected = np.asarray(reference(anchors, second), np.float64)
    expect(found.shape == expected.shape, shape_cause, expected=expected.shape, found=found.shape)
    if close(found, expected, atol=atol):
        return
    diagnose(found, variants, lambda f, e: close(f, e, atol=atol), anchors.astype(np.float64),
             second.astype(np.float64))
    i = int(np.argmax(np.abs(found - expected).max(axis=1)))
    fail(differs_cause, anchor=_row(anchors[i]), given=_row(second[i]), expected=_row(expected[i]),
         found=_row(found[i]))


def _check_leading_dimensions(function, name, anchors, second, reference, atol):
    __tracebackhide__ = True  # noqa: F841
    what = f"{name}(anchors, {'boxes' if name == 'encode' else 'deltas'})"
    batched = [x[: np.prod(LEADING_SHAPE[:-1])].reshape(LEADING_SHAPE) for x in (anchors, second)]
    try:
        found = np.asarray(function(*batched), np.float64)
    except Exception as error:
        fail(LEADING_DIMENSIONS, what=what, shape=LEADING_SHAPE, outcome=f"raised {type(error).__name__}")
    expected = np.asarray(reference(*batched), np.float64)
    outcome = (f"gives shape {found.shape} instead of {expected.shape}" if found.shape != expected.shape else
               f"gives other values than the same boxes as ({len(anchors[: np.prod(LEADING_SHAPE[:-1])])}, 4)")
    expect(close(found, expected, atol=atol), LEADING_DIMENSIONS, what=what, shape=LEADING_SHAPE, outcome=outcome)


@check
def TEST_BOX_CODING(encode, decode):
    """``encode(anchors, boxes)`` and ``decode(anchors, deltas)`` against the reference, on (N, 4) and (..., 4)."""
    __tracebackhide__ = True  # noqa: F841
    anchors, boxes, deltas = box_coding_case()
    _check_coding(encode, "encode", anchors, boxes, reference_encode, ENCODE_VARIANTS, ENCODE_SHAPE, ENCODE_DIFFERS,
                  atol=1e-4)
    _check_coding(decode, "decode", anchors, deltas, reference_decode, DECODE_VARIANTS, DECODE_SHAPE, DECODE_DIFFERS,
                  atol=1e-3)
    _check_leading_dimensions(encode, "encode", anchors, boxes, reference_encode, atol=1e-4)
    _check_leading_dimensions(decode, "decode", anchors, deltas, reference_decode, atol=1e-3)
    passed(f"TEST_BOX_CODING passed: encode and decode match the reference (variances "
           f"{', '.join(f'{v:g}' for v in BOX_VARIANCES)}) on (N, 4) boxes and on a batch of them.")
