"""Stage 3, exercise 1, anchors: ``generate_anchors(image_height, image_width)`` (TEST_ANCHORS).

Lin et al., Sec. 4, "Anchors": 9 anchors per location (3 scales × 3 aspect ratios) on P3–P7 with areas 32²
to 512². :func:`centre_size` also serves the box coding's check (:mod:`course_checks.box_coding`).
"""

import math

import numpy as np

from retinanet.anchors import (ANCHOR_SCALES, ANCHOR_SIZES, ASPECT_RATIOS, PYRAMID_LEVELS, anchors_per_level,
                               generate_anchors as reference_anchors)

from course_checks.harness import (Cause, Variant, as_array, call_learner, check, close, diagnose, expect, fail,
                                   passed)


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
ANCHORS_HALF_PIXEL = Cause(
    "anchors.half_pixel",
    "{what} puts every anchor centre ½ pixel off ({shift}): the centre of a cell is ((column + 0.5) · stride, "
    "(row + 0.5) · stride) in continuous pixel coordinates, with no ± 0.5 pixel-index correction.")
ANCHORS_PLUS_ONE = Cause(
    "anchors.plus_one",
    "{what} uses the '+1' pixel convention (sides w − 1, x2 = x1 + w − 1); the course's boxes are continuous: "
    "an anchor of width w has x2 − x1 = w.")
ANCHORS_STRIDE_FROM_CELLS = Cause(
    "anchors.stride_from_cells",
    "{what}: the centres of P{level} are {found:g} pixels apart, image size / cells; the stride of level l is "
    "2^l = {stride} whatever the image size ('same' padding rounds the cells up, so the last cell may "
    "overhang the image).")
ANCHORS_LEVEL_DIFFERS = Cause(
    "anchors.level_differs",
    "{what}: the anchors of P{level} (stride {stride}) differ; they should have sides {base:g} · (2^0, 2^(1/3), "
    "2^(2/3)) (found {smallest:.1f} … {largest:.1f}) and height/width ratios {ratios} (found {found_ratios}), "
    "centred in their cells.")


def anchor_grid(height, width, *, cells=math.ceil, offset=0.5, scale_major=False, column_major=False,
                ratio_inverted=False, scale_on_area=False, keep_area=True, levels_reversed=False,
                stride_from_cells=False):
    """The anchors of the paper with optional mistakes; without any it equals the reference's anchors."""
    levels = []
    for level, base in zip(PYRAMID_LEVELS, ANCHOR_SIZES):
        stride = 2 ** level
        rows, cols = cells(height / stride), cells(width / stride)
        stride_y, stride_x = (height / rows, width / cols) if stride_from_cells else (stride, stride)
        ys, xs = (np.arange(rows) + offset) * stride_y, (np.arange(cols) + offset) * stride_x
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


def centre_size(boxes):
    return np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=1)


ANCHOR_VARIANTS = (
    Variant(ANCHORS_SWAPPED_XY, lambda h, w: anchor_grid(h, w)[:, [1, 0, 3, 2]]),
    Variant(ANCHORS_NOT_CENTRED, lambda h, w: anchor_grid(h, w, offset=0.0)),
    Variant(ANCHORS_CENTRE_SIZE, lambda h, w: centre_size(anchor_grid(h, w))),
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


ANCHOR_TOLERANCE = 1e-4
"""Each coordinate may differ by this fraction of its own anchor's size (width + height): 6·10⁻³ pixel on a
32-pixel P3 anchor, far below a ½-pixel or one-pixel mistake, far above float32 rounding."""


def _anchors_match(found, expected):
    """Same shape, finite, and each anchor within :data:`ANCHOR_TOLERANCE` of its own size (not of the largest
    coordinate of all, which would let a ½-pixel mistake on the small anchors pass)."""
    found, expected = np.asarray(found, np.float64), np.asarray(expected, np.float64)
    if found.shape != expected.shape or found.ndim != 2 or not np.all(np.isfinite(found)):
        return False
    size = (expected[:, 2] - expected[:, 0]) + (expected[:, 3] - expected[:, 1])
    return bool(np.all(np.abs(found - expected) <= ANCHOR_TOLERANCE * np.maximum(size, 1.0)[:, None]))


def _diagnose_pixel_conventions(found, expected, what):
    """Sides one pixel short (the '+1' convention), or every centre moved by ½ pixel."""
    found_sides, expected_sides = found[:, 2:] - found[:, :2], expected[:, 2:] - expected[:, :2]
    if np.allclose(found_sides, expected_sides - 1.0, atol=1e-3):
        fail(ANCHORS_PLUS_ONE, what=what)
    if np.allclose(found_sides, expected_sides, atol=1e-3):
        shift = (found[:, :2] + found[:, 2:]) / 2 - (expected[:, :2] + expected[:, 2:]) / 2
        if np.allclose(np.abs(shift), 0.5, atol=1e-3):
            signs = sorted({f"{value:+g}" for value in np.round(shift, 3).ravel()})
            fail(ANCHORS_HALF_PIXEL, what=what, shift="shifted by " + " and ".join(signs) + " pixel")


def _check_anchor_count(found, expected, height, width, what):
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
    start = 0
    for level, count, base in zip(PYRAMID_LEVELS, anchors_per_level(height, width), ANCHOR_SIZES):
        chunk = slice(start, start + count)
        start += count
        if _anchors_match(found[chunk], expected[chunk]):
            continue
        boxes = found[chunk]
        wrong_stride = anchor_grid(height, width, stride_from_cells=True)[chunk]
        if _anchors_match(boxes, wrong_stride):
            rows, cols = math.ceil(height / 2 ** level), math.ceil(width / 2 ** level)
            spacing = width / cols if width / cols != 2 ** level else height / rows
            fail(ANCHORS_STRIDE_FROM_CELLS, what=what, level=level, found=spacing, stride=2 ** level)
        sides = np.sqrt(np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 0.0))
        ratios = np.unique(np.round((boxes[:, 3] - boxes[:, 1]) / np.maximum(boxes[:, 2] - boxes[:, 0], 1e-9), 2))
        fail(ANCHORS_LEVEL_DIFFERS, what=what, level=level, stride=2 ** level, base=base, smallest=sides.min(),
             largest=sides.max(), found_ratios=", ".join(f"{r:g}" for r in ratios[:6]))


@check
def TEST_ANCHORS(generate_anchors):
    """``generate_anchors(image_height, image_width)``: count, order, centres, sizes and aspect ratios."""
    for height, width in ANCHOR_IMAGE_SIZES:
        what = f"generate_anchors({height}, {width})"
        found = as_array(call_learner(what, generate_anchors, height, width), f"{what}'s result")
        expected = reference_anchors(height, width).astype(np.float64)
        _check_anchor_count(found, expected, height, width, what)
        if _anchors_match(found, expected):
            continue
        diagnose(found, ANCHOR_VARIANTS, _anchors_match, height, width, what=what)
        _diagnose_pixel_conventions(found, expected, what)
        expect(not _anchors_match(_sorted_rows(found), _sorted_rows(expected)), ANCHORS_ORDER, what=what)
        _diagnose_level(found, expected, height, width, what)
    passed(f"TEST_ANCHORS passed: {len(ANCHOR_SCALES) * len(ASPECT_RATIOS)} anchors per location on P3–P7, in the "
           "reference order, with the paper's sizes, ratios and centres.")
