"""Stage 3, exercise 4, box coding: ``encode(anchors, boxes)`` and ``decode(anchors, deltas)`` (TEST_BOX_CODING).

Box regression uses the R-CNN coding with variances: the centre offsets over the anchor's size and the log
size ratios, each divided by its variance (``BOX_VARIANCES``); decode inverts encode.
"""

import numpy as np

from retinanet.boxes import BOX_VARIANCES, decode as reference_decode, encode as reference_encode

from course_checks.anchors import centre_size
from course_checks.harness import (Cause, Variant, as_array, call_learner, check, close, diagnose, expect, fail,
                                   passed, random_generator)


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
    a, b = centre_size(anchors), centre_size(boxes)
    if corners:
        return (boxes - anchors) / np.concatenate([a[:, 2:], a[:, 2:]], axis=1) / variances
    centre = centre_sign * (b[:, :2] - a[:, :2]) / (b[:, 2:] if over_box_size else a[:, 2:])
    ratio = b[:, 2:] / a[:, 2:]
    size = size_sign * np.log(ratio) if log else ratio - 1.0
    return np.concatenate([centre, size], axis=1) / variances


def _corners(centred):
    return np.concatenate([centred[:, :2] - centred[:, 2:] / 2, centred[:, :2] + centred[:, 2:] / 2], axis=1)


def _decode_with(anchors, deltas, variances=VARIANCES, exp=True, corners=True):
    a = centre_size(anchors)
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
    anchors, boxes, deltas = box_coding_case()
    _check_coding(encode, "encode", anchors, boxes, reference_encode, ENCODE_VARIANTS, ENCODE_SHAPE, ENCODE_DIFFERS,
                  atol=1e-4)
    _check_coding(decode, "decode", anchors, deltas, reference_decode, DECODE_VARIANTS, DECODE_SHAPE, DECODE_DIFFERS,
                  atol=1e-3)
    _check_leading_dimensions(encode, "encode", anchors, boxes, reference_encode, atol=1e-4)
    _check_leading_dimensions(decode, "decode", anchors, deltas, reference_decode, atol=1e-3)
    passed(f"TEST_BOX_CODING passed: encode and decode match the reference (variances "
           f"{', '.join(f'{v:g}' for v in BOX_VARIANCES)}) on (N, 4) boxes and on a batch of them.")
