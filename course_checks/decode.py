"""Stage 4, exercise 2, inference: ``decode_detections(predictions, image_height, image_width)`` (TEST_DECODE).

Lin et al., Sec. 4.1, "Inference": scores are per-class sigmoids; on each level the top 1,000 anchor–class
pairs scoring above 0.05 are decoded, and class-wise NMS at IoU 0.5 keeps the best 100.
"""

import itertools
import math

import numpy as np

from retinanet._tf import keras, tf
from retinanet.anchors import ANCHORS_PER_LOCATION, anchors_per_level, generate_anchors
from retinanet.boxes import BOX_VARIANCES, decode, encode
from retinanet.postprocess import (MAX_DETECTIONS, NMS_IOU_THRESHOLD, SCORE_THRESHOLD, TOP_K_PER_LEVEL,
                                   decode_detections as reference_decode, top_candidates)

from course_checks.harness import (Cause, Variant, as_array, call_learner, check, close, describe, expect, fail,
                                   first_match, passed)


DECODE_IMAGE = (64, 96)
"""Height and width of the check's images: not square, so that clipping x to the height shows."""

DECODE_RETURNS = Cause(
    "decode.returns", "{what} should return Detections(boxes, scores, classes, num_detections), found {found}.")
DECODE_BATCH_ONE = Cause(
    "decode.batch_one",
    "{what} returns detections for {found} image, but the predictions hold {expected}: keep the batch axis "
    "(`batch = tf.shape(predictions)[0]`; no hard-coded 1 or predictions[0]).")
DECODE_SHAPES = Cause(
    "decode.shapes",
    "{what} should return boxes {boxes}, scores {scores}, classes {scores} and num_detections {count}, found "
    "{found}.")
DECODE_BELOW_THRESHOLD = Cause(
    "decode.below_threshold",
    "{what} keeps a detection scoring {score:.3f}, below {threshold:g}; drop scores that are not above "
    "score_threshold.")
DECODE_ARGUMENT_IGNORED = Cause(
    "decode.argument_ignored",
    "{what} returns the detections of {name}={default:g} whatever is passed: use the {name} argument "
    "(the check calls decode_detections with other values too), not a number written into the function.")
DECODE_NMS_PER_LEVEL = Cause(
    "decode.nms_per_level",
    "{what} keeps two overlapping boxes of one class that come from different pyramid levels: NMS runs once, "
    "after the candidates of all levels are merged (Sec. 4.1), not level by level.")
DECODE_TRUNCATED_BEFORE_NMS = Cause(
    "decode.truncated_before_nms",
    "{what} keeps only the best max_detections candidates before NMS, so the boxes NMS suppresses leave "
    "gaps: apply NMS to every candidate, then keep the best max_detections (max_total_size).")
DECODE_CLIP_ONE_BOUND = Cause(
    "decode.clip_one_bound",
    "{what} clips the boxes on one side only ({side}); clip both: 0 ≤ x ≤ width and 0 ≤ y ≤ height "
    "(`tf.clip_by_value(boxes, 0.0, [image_width, image_height, image_width, image_height])`).")
DECODE_NO_VARIANCES = Cause(
    "decode.no_variances",
    "{what} decodes the deltas without the box variances ({variances}): decode with the box coding's decode "
    "(`decode(anchors, predictions[..., :4])`), which scales the deltas by them, as encode divided by them.")
DECODE_SOFTMAX = Cause(
    "decode.softmax",
    "{what} scores with a softmax over the classes; RetinaNet's scores are independent per-class sigmoids "
    "(tf.sigmoid), so background anchors score low in every class.")
DECODE_SWAPPED_INDEX = Cause(
    "decode.swapped_index",
    "{what} splits the flattened top-k index the wrong way round: index // K is the anchor and index % K the "
    "class (rows are anchors, K classes each).")
DECODE_PER_ANCHOR_MAX = Cause(
    "decode.per_anchor_max",
    "{what} keeps only each anchor's best class; every anchor–class pair is a candidate (flatten the level's "
    "scores to (batch, anchors · K) before top-k), so one anchor can detect two classes.")
DECODE_RAW_ANCHORS = Cause(
    "decode.raw_anchors",
    "{what} returns the anchors themselves; decode the predicted deltas relative to their anchors "
    "(decode(anchors, predictions[..., :4])).")
DECODE_NO_NMS = Cause(
    "decode.no_nms",
    "{what} keeps heavily overlapping boxes of the same class; apply non-maximum suppression with IoU "
    "{nms_iou}, class by class.")
DECODE_CLASS_AGNOSTIC = Cause(
    "decode.class_agnostic",
    "{what} suppresses boxes of one class with boxes of another; NMS runs per class (class-wise NMS), so "
    "give each candidate a score row that is zero outside its class (score · tf.one_hot(class, K)).")
DECODE_CLIP_AFTER_NMS = Cause(
    "decode.clip_after_nms",
    "{what} clips the boxes after NMS; clip them to the image before NMS, so that NMS compares the boxes you "
    "report (two boxes that become equal at the image border must suppress each other).")
DECODE_NO_CLIP = Cause(
    "decode.no_clip",
    "{what} returns boxes outside the image; clip the decoded boxes to [0, width] × [0, height] before NMS "
    "(`tf.clip_by_value(boxes, 0.0, [image_width, image_height, image_width, image_height])`).")
DECODE_UNIT_CLIP = Cause(
    "decode.unit_clip",
    "{what} returns boxes clipped to [0, 1]: tf.image.combined_non_max_suppression clips to [0, 1] by default; "
    "the boxes are in pixels, so pass clip_boxes=False: `tf.image.combined_non_max_suppression(..., "
    "clip_boxes=False)`.")
DECODE_CLIP_SWAPPED = Cause(
    "decode.clip_swapped",
    "{what} clips x to the image height and y to the width; the limits are [width, height, width, height] "
    "for [x1, y1, x2, y2].")
DECODE_CLIP_LIMITS = Cause(
    "decode.clip_limits",
    "{what} clips {coordinates}; clip x1 and x2 to the image width and y1 and y2 to its height: the limits are "
    "[width, height, width, height] for [x1, y1, x2, y2].")
DECODE_CLASSES_DTYPE = Cause(
    "decode.classes_dtype",
    "{what} returns classes of dtype {dtype}; class indices are integers: cast them to int32 "
    "(tf.image.combined_non_max_suppression returns its classes as float32: `tf.cast(nms_classes, tf.int32)`).")
DECODE_FIRST_IMAGE = Cause(
    "decode.first_image",
    "{what} gives every image the detections of the first; decode each image of the batch from its own rows.")
DECODE_COUNT_DIFFERS = Cause(
    "decode.count_differs",
    "{what}: image {image} should have {expected} detections with classes {classes}, found {found} with classes "
    "{found_classes}.")
DECODE_SCORES_DIFFER = Cause(
    "decode.scores_differ",
    "{what}: the scores of image {image} should be {expected} (sigmoid of the logits), found {found}.")
DECODE_BOXES_DIFFER = Cause(
    "decode.boxes_differ",
    "{what}: the boxes of image {image} differ; expected {expected}, found {found}.")
DECODE_TOP_K_GLOBAL = Cause(
    "decode.top_k_global",
    "{what} should keep the 2 best of P3's seven candidates plus P4's one ({expected} detections), found "
    "{found}: you kept the top k over all levels together; keep the top k candidates of each level separately.")
DECODE_TOP_K_IGNORED = Cause(
    "decode.top_k_ignored",
    "{what} should keep the 2 best of P3's seven candidates plus P4's one ({expected} detections), found "
    "{found}: top_k_per_level is not used; take tf.math.top_k(..., k=min(top_k_per_level, count · K)) on each "
    "level.")
DECODE_TOP_K_DIFFERS = Cause(
    "decode.top_k_differs",
    "{what} should keep the 2 best of P3's seven candidates plus P4's one ({expected} detections), found {found}.")
DECODE_MAX_DETECTIONS = Cause(
    "decode.max_detections",
    "{what} should return at most {limit} detections per image (boxes of shape {expected}), found num_detections "
    "{found_count} and boxes of shape {found}; pass max_detections to NMS as max_output_size_per_class and "
    "max_total_size.")


def _logit(p):
    return float(np.log(p / (1 - p)))


def _row_of(height, width):
    counts = anchors_per_level(height, width)

    def at(level, row, col, anchor):
        columns = math.ceil(width / 2 ** (level + 3))
        return sum(counts[:level]) + (row * columns + col) * ANCHORS_PER_LOCATION + anchor

    return at


def decode_case():
    """Predictions for two 64×96 images, 3 classes, each rule of inference deciding some detection.

    Image 0: two same-place anchors of class 0 (IoU ≈ 0.63: NMS keeps one) whose second also scores class 1
    (kept: NMS is per class); a class-2 score just below the score threshold; a class-2 box past the right
    and bottom edges (clipped: x to the width, y to the height); two class-2 boxes at the left edge that
    overlap by 0.375 as decoded and are equal once clipped (clipping before NMS suppresses one).
    Image 1: a detection at flattened index 7 (< K²), where a swapped // and % still finds something, and a
    class-0 and a class-1 box on two overlapping anchors of one place (both kept: NMS is per class), and a
    class-2 box on P3 overlapping a class-2 box on P4 by 0.88 (one kept: NMS runs after merging the levels), and
    two class-0 boxes wholly below and right of the image (clipped, y1 goes to the height and x1 to the width:
    every coordinate's limit shows).
    Background logits are −12 (score 6·10⁻⁶). The one-image top-k case has seven separate class-2
    candidates on P3 and one on P4.
    """
    height, width = DECODE_IMAGE
    at = _row_of(height, width)
    anchors = generate_anchors(height, width)
    predictions = np.zeros((2, len(anchors), 7), np.float32)
    predictions[..., 4:] = -12.0

    first, second = at(0, 3, 3, 4), at(0, 3, 3, 5)
    predictions[0, first, 4 + 0] = _logit(0.95)
    predictions[0, second, 4 + 0] = _logit(0.80)
    predictions[0, second, 4 + 1] = _logit(0.70)
    predictions[0, at(0, 0, 7, 4), 4 + 2] = _logit(0.8 * SCORE_THRESHOLD)
    corner = at(1, 3, 5, 4)
    predictions[0, corner, :4] = [1.0, -1.0, 0.5, -0.5]
    predictions[0, corner, 4 + 2] = _logit(0.60)
    for index, box, score in ((at(0, 5, 1, 3), [0, 30, 24, 58], 0.88), (at(0, 5, 2, 3), [-40, 30, 24, 58], 0.86)):
        predictions[0, index, :4] = np.asarray(encode(anchors[index], np.array(box, np.float32)))
        predictions[0, index, 4 + 2] = _logit(score)

    predictions[1, at(2, 1, 2, 4), 4 + 0] = _logit(0.70)
    predictions[1, at(0, 6, 10, 2), 4 + 1] = _logit(0.55)
    predictions[1, at(0, 6, 10, 2), :4] = [-0.5, 0.5, 0.2, 0.1]
    predictions[1, at(0, 0, 0, 2), 4 + 1] = _logit(0.65)  # flattened index 7 < K²: shows a swapped // and %
    predictions[1, at(0, 4, 7, 4), 4 + 0] = _logit(0.90)  # two classes on overlapping anchors (IoU ≈ 0.63):
    predictions[1, at(0, 4, 7, 5), 4 + 1] = _logit(0.75)  # both kept, as NMS is per class
    for index, box, score in ((at(0, 2, 2, 3), [8, 8, 40, 40], 0.83), (at(1, 1, 1, 3), [10, 8, 42, 40], 0.81)):
        predictions[1, index, :4] = np.asarray(encode(anchors[index], np.array(box, np.float32)))
        predictions[1, index, 4 + 2] = _logit(score)  # one class on P3 and P4, IoU 0.88: NMS after merging
    for index, box, score in ((at(1, 3, 3, 4), [60, 70, 80, 90], 0.62), (at(1, 0, 5, 4), [100, 10, 120, 30], 0.61)):
        predictions[1, index, :4] = np.asarray(encode(anchors[index], np.array(box, np.float32)))
        predictions[1, index, 4 + 0] = _logit(score)  # wholly below and right of the image: y1 → height, x1 → width

    top_k_case = np.copy(predictions[:1])
    top_k_case[..., :4] = 0.0
    top_k_case[..., 4:] = -12.0
    p3_places = ((0, 0), (0, 11), (7, 0), (7, 11), (3, 5), (0, 5), (7, 5))
    for score, (row, col) in zip((0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6), p3_places):
        top_k_case[0, at(0, row, col, 4), 4 + 2] = _logit(score)
    top_k_case[0, at(1, 2, 2, 4), 4 + 2] = _logit(0.5)
    return height, width, predictions, top_k_case


def _select(boxes, scores, height, width, top_k, mistake):
    """Candidates (boxes, scores, classes) of each level: the reference's top-k, or a mistaken one."""
    if mistake is None:
        return [np.asarray(x) for x in top_candidates(boxes, scores, height, width, top_k)]
    num_classes = scores.shape[-1]
    picked_boxes, picked_scores, picked_classes = [], [], []
    start = 0
    for count in anchors_per_level(height, width):
        level_boxes, level_scores = boxes[:, start:start + count], scores[:, start:start + count]
        start += count
        if mistake == "per_anchor_max":
            flat, classes_of = level_scores.max(-1), level_scores.argmax(-1)
        else:
            flat = level_scores.reshape(len(scores), -1)
        order = np.argsort(-flat, axis=-1, kind="stable")[:, :min(top_k, flat.shape[-1])]
        if mistake == "per_anchor_max":
            anchor, classes = order, np.take_along_axis(classes_of, order, axis=-1)
        else:  # "swapped_index": index % K taken as the anchor, index // K as the class
            anchor, classes = order % num_classes, order // num_classes
        picked_boxes.append(np.take_along_axis(level_boxes, anchor[..., None], axis=1))
        picked_scores.append(np.take_along_axis(flat, order, axis=-1))
        picked_classes.append(classes)
    return [np.concatenate(parts, axis=1) for parts in (picked_boxes, picked_scores, picked_classes)]


def _nms(boxes, scores, classes, num_classes, max_detections, class_wise=True, clip_boxes=False,
         iou_threshold=NMS_IOU_THRESHOLD, score_threshold=SCORE_THRESHOLD):
    """TensorFlow's combined NMS, per class (as the reference) or with every candidate in one class; then the
    kept candidates' classes are found again by their scores, which the check's images keep distinct."""
    if not class_wise:
        nmsed = tf.image.combined_non_max_suppression(
            boxes[:, :, None, :], scores[..., None], max_detections, max_detections, iou_threshold,
            score_threshold, clip_boxes=clip_boxes)
        found_scores = nmsed.nmsed_scores.numpy()
        match = np.abs(found_scores[:, :, None] - scores[:, None, :]).argmin(-1)
        return (nmsed.nmsed_boxes.numpy(), found_scores, np.take_along_axis(classes, match, axis=1),
                nmsed.valid_detections.numpy())
    class_scores = scores[..., None] * (classes[..., None] == np.arange(num_classes))  # no row for a class ≥ K
    nmsed = tf.image.combined_non_max_suppression(
        boxes[:, :, None, :].astype(np.float32), class_scores.astype(np.float32), max_detections, max_detections,
        iou_threshold, score_threshold, clip_boxes=clip_boxes)
    return (nmsed.nmsed_boxes.numpy(), nmsed.nmsed_scores.numpy(), nmsed.nmsed_classes.numpy().astype(int),
            nmsed.valid_detections.numpy())


def _best(candidates, limit):
    """The ``limit`` best-scoring of the candidates (boxes, scores, classes) of each image."""
    boxes, scores, classes = candidates
    order = np.argsort(-scores, axis=-1, kind="stable")[:, :limit]
    return (np.take_along_axis(boxes, order[..., None], axis=1), np.take_along_axis(scores, order, axis=1),
            np.take_along_axis(classes, order, axis=1))


def _nms_per_level(candidates, counts, num_classes, limit, **thresholds):
    """Class-wise NMS on each level's candidates separately, the survivors merged by score."""
    kept, start = [], 0
    for count in counts:
        part = [x[:, start:start + count] for x in candidates]
        start += count
        boxes, scores, classes, valid = _nms(*part, num_classes, limit, **thresholds)
        scores = np.where(np.arange(limit) < valid[:, None], scores, 0.0)
        kept.append((boxes, scores, classes))
    boxes, scores, classes = _best([np.concatenate(parts, axis=1) for parts in zip(*kept)], limit)
    valid = (scores > 0).sum(-1)
    return [boxes * (scores > 0)[..., None], scores, classes * (scores > 0), valid]


def _decode_with(predictions, height, width, options=None, *, scores=tf.sigmoid, select=None, clip="before",
                 limits="whwh", nms="class_wise", variances=True):
    """Inference at the paper's settings (or ``options``: score_threshold, nms_iou_threshold, max_detections)
    with one optional mistake, from the reference's pieces (decode, top-k per level) and TensorFlow's NMS."""
    options = options or {}
    limit = options.get("max_detections", MAX_DETECTIONS)
    thresholds = dict(iou_threshold=options.get("nms_iou_threshold", NMS_IOU_THRESHOLD),
                      score_threshold=options.get("score_threshold", SCORE_THRESHOLD))
    num_classes = predictions.shape[-1] - 4
    anchors = generate_anchors(height, width)
    deltas = predictions[..., :4] if variances else predictions[..., :4] / np.asarray(BOX_VARIANCES, np.float32)
    boxes = np.asarray(decode(anchors[None], deltas))
    sides = {"xy": "whwh", "yx": "hwhw"}.get(limits, limits)
    size = np.array([{"w": width, "h": height}[side] for side in sides], np.float32)
    if clip in ("before", "unit"):
        boxes = np.clip(boxes, 0.0, size)
    elif clip == "upper":
        boxes = np.minimum(boxes, size)
    elif clip == "lower":
        boxes = np.maximum(boxes, 0.0)
    probabilities = np.asarray(scores(tf.convert_to_tensor(predictions[..., 4:], tf.float32)))
    candidates = _select(boxes, probabilities, height, width, TOP_K_PER_LEVEL, select)
    if nms == "none":
        candidate_boxes, top_scores, candidate_classes = _best(candidates, limit)
        keep = top_scores > thresholds["score_threshold"]
        result = [candidate_boxes * keep[..., None], top_scores * keep, candidate_classes * keep, keep.sum(-1)]
    elif nms == "per_level":
        counts = [min(TOP_K_PER_LEVEL, count * num_classes) for count in anchors_per_level(height, width)]
        result = _nms_per_level(candidates, counts, num_classes, limit, **thresholds)
    else:
        if nms == "truncated":
            candidates = _best(candidates, limit)
        result = list(_nms(*candidates, num_classes, limit, class_wise=nms != "class_agnostic",
                           clip_boxes=clip == "unit", **thresholds))
    if clip == "after":
        result[0] = np.clip(result[0], 0.0, np.array(size, np.float32))
    return result


DECODE_VARIANTS = (
    Variant(DECODE_SOFTMAX, lambda p, h, w, o: _decode_with(p, h, w, o, scores=tf.nn.softmax)),
    Variant(DECODE_SWAPPED_INDEX, lambda p, h, w, o: _decode_with(p, h, w, o, select="swapped_index")),
    Variant(DECODE_PER_ANCHOR_MAX, lambda p, h, w, o: _decode_with(p, h, w, o, select="per_anchor_max")),
    Variant(DECODE_RAW_ANCHORS, lambda p, h, w, o: _reference_detections(_without_deltas(p), h, w, **o)),
    Variant(DECODE_NO_NMS, lambda p, h, w, o: _decode_with(p, h, w, o, nms="none")),
    Variant(DECODE_CLASS_AGNOSTIC, lambda p, h, w, o: _decode_with(p, h, w, o, nms="class_agnostic")),
    Variant(DECODE_NMS_PER_LEVEL, lambda p, h, w, o: _decode_with(p, h, w, o, nms="per_level")),
    Variant(DECODE_TRUNCATED_BEFORE_NMS, lambda p, h, w, o: _decode_with(p, h, w, o, nms="truncated")),
    Variant(DECODE_CLIP_AFTER_NMS, lambda p, h, w, o: _decode_with(p, h, w, o, clip="after")),
    Variant(DECODE_NO_CLIP, lambda p, h, w, o: _decode_with(p, h, w, o, clip="none")),
    Variant(DECODE_UNIT_CLIP, lambda p, h, w, o: _decode_with(p, h, w, o, clip="unit")),
    Variant(DECODE_CLIP_SWAPPED, lambda p, h, w, o: _decode_with(p, h, w, o, limits="hwhw")),
    Variant(DECODE_NO_VARIANCES, lambda p, h, w, o: _decode_with(p, h, w, o, variances=False)),
    Variant(DECODE_FIRST_IMAGE, lambda p, h, w, o: _reference_detections(np.repeat(p[:1], len(p), axis=0), h, w, **o)),
)
"""Inference with one mistake made, tried in this order."""


def _reference_detections(predictions, height, width, **options):
    return [np.asarray(x) for x in reference_decode(predictions, height, width, **options)]


def _without_deltas(predictions):
    """The predictions with every box delta 0: each decoded box is its anchor."""
    return np.where(np.arange(predictions.shape[-1]) < 4, 0.0, predictions).astype(np.float32)


def _detections(result, what):
    """``(boxes, scores, classes, num_detections)`` as NumPy arrays from a Detections-like result."""
    names = ("boxes", "scores", "classes", "num_detections")
    if all(hasattr(result, name) for name in names):
        parts = tuple(getattr(result, name) for name in names)
    elif isinstance(result, (tuple, list)) and len(result) == 4:
        parts = tuple(result)
    else:
        fail(DECODE_RETURNS, what=what, found=describe(result))
    arrays = [as_array(part, f"Detections.{name}") for part, name in zip(parts, names)]
    dtype = _dtype_of(parts[2])
    expect(dtype is None or dtype.kind in "iu", DECODE_CLASSES_DTYPE, what=what, dtype=dtype)
    return arrays


def _dtype_of(value):
    """The NumPy dtype of the learner's tensor or array (None if it has none, e.g. a list)."""
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return None
    try:
        return np.dtype(getattr(dtype, "as_numpy_dtype", dtype))
    except TypeError:
        return np.asarray(keras.ops.convert_to_numpy(value)).dtype


def _per_image(parts):
    """Each image's detections (boxes, scores, classes), best first."""
    boxes, scores, classes, counts = parts
    images = []
    for image in range(len(counts)):
        n = int(counts[image])
        order = np.argsort(-scores[image, :n], kind="stable")
        images.append((boxes[image, :n][order], scores[image, :n][order], classes[image, :n][order].astype(int)))
    return images


def _same_detections(found, expected):
    found, expected = _per_image(found), _per_image(expected)
    return len(found) == len(expected) and all(
        len(f[1]) == len(e[1]) and np.array_equal(f[2], e[2]) and close(f[1], e[1], atol=1e-4)
        and close(f[0], e[0], atol=1e-2) for f, e in zip(found, expected))


def _check_shapes(parts, batch, max_detections, what):
    boxes, scores, classes, counts = parts
    expected = [(batch, max_detections, 4), (batch, max_detections), (batch, max_detections), (batch,)]
    found = [part.shape for part in parts]
    if found == expected:
        return
    if boxes.ndim >= 1 and boxes.shape[0] == 1 and batch > 1:
        fail(DECODE_BATCH_ONE, what=what, found=1, expected=batch)
    fail(DECODE_SHAPES, what=what, boxes=expected[0], scores=expected[1], count=expected[3],
         found=", ".join(str(shape) for shape in found))


def _few(values, limit=8):
    """A short list for a message: the first ``limit`` values, then an ellipsis."""
    values = np.asarray(values).tolist()
    return str(values[:limit])[:-1] + (", …]" if len(values) > limit else "]")


def _report_difference(found, expected, what):
    for image, (f, e) in enumerate(zip(_per_image(found), _per_image(expected))):
        if len(f[1]) != len(e[1]) or not np.array_equal(f[2], e[2]):
            fail(DECODE_COUNT_DIFFERS, what=what, image=image, expected=len(e[1]), classes=_few(e[2]),
                 found=len(f[1]), found_classes=_few(f[2]))
        if not close(f[1], e[1], atol=1e-4):
            fail(DECODE_SCORES_DIFFER, what=what, image=image, expected=_few(np.round(e[1], 3)),
                 found=_few(np.round(f[1], 3)))
        if not close(f[0], e[0], atol=1e-2):
            fail(DECODE_BOXES_DIFFER, what=what, image=image, expected=_few(np.round(e[0], 1), 3),
                 found=_few(np.round(f[0], 1), 3))


DECODE_OPTIONS = ({}, {"score_threshold": 0.72}, {"nms_iou_threshold": 0.7}, {"max_detections": 3})
"""The arguments of each call on the main case: the paper's settings, then each setting changed once, so that
a number written into the function shows. At 0.72 the scores 0.70 and below go; at IoU 0.7 the two class-0
boxes of image 0 (IoU ≈ 0.63) both stay; with 3 detections, image 0's third is found only after NMS."""

DEFAULTS = {"score_threshold": SCORE_THRESHOLD, "nms_iou_threshold": NMS_IOU_THRESHOLD,
            "max_detections": MAX_DETECTIONS}

COORDINATES, SIDES = ("x1", "y1", "x2", "y2"), {"w": "width", "h": "height"}
WRONG_LIMITS = tuple(limits for limits in ("".join(c) for c in itertools.product("wh", repeat=4))
                     if limits not in ("whwh", "hwhw"))
"""Clipping limits with some coordinate clipped to the other side of the image ([h, w, h, w] has its own cause)."""

CLIPPED_SIDES = {"upper": "at width and height only, not at 0", "lower": "at 0 only, not at width and height"}


def _check_main_case(decode_detections, height, width, predictions, options):
    arguments = "".join(f", {name}={value:g}" for name, value in options.items())
    what = f"decode_detections(predictions, {height}, {width}{arguments})"
    found = _detections(call_learner(what, decode_detections, predictions, height, width, **options), what)
    limit = options.get("max_detections", MAX_DETECTIONS)
    if "max_detections" in options:
        expect(found[0].shape[1:] == (limit, 4) and np.all(found[3] <= limit), DECODE_MAX_DETECTIONS, what=what,
               limit=limit, expected=(len(predictions), limit, 4), found=found[0].shape,
               found_count=found[3].astype(int).tolist())
    _check_shapes(found, len(predictions), limit, what)
    expected = _reference_detections(predictions, height, width, **options)
    if _same_detections(found, expected):
        return
    for name in options:
        if name != "max_detections" and _same_detections(found, _reference_detections(predictions, height, width)):
            fail(DECODE_ARGUMENT_IGNORED, what=what, name=name, default=DEFAULTS[name])
    threshold = options.get("score_threshold", SCORE_THRESHOLD)
    for boxes, scores, _ in _per_image(found):
        low = scores[scores <= threshold]
        expect(not len(low), DECODE_BELOW_THRESHOLD, what=what, threshold=threshold,
               score=float(low[0]) if len(low) else 0.0)
    variant = first_match(found, DECODE_VARIANTS, _same_detections, predictions, height, width, options)
    if variant is not None:
        fail(variant.cause, what=what)
    for clip, side in CLIPPED_SIDES.items():
        if _same_detections(found, _decode_with(predictions, height, width, options, clip=clip)):
            fail(DECODE_CLIP_ONE_BOUND, what=what, side=side)
    for limits in WRONG_LIMITS:
        if _same_detections(found, _decode_with(predictions, height, width, options, limits=limits)):
            wrong = [f"{COORDINATES[i]} to the {SIDES[side]}" for i, side in enumerate(limits) if side != "whwh"[i]]
            fail(DECODE_CLIP_LIMITS, what=what, coordinates=" and ".join(wrong))
    _report_difference(found, expected, what)


def _check_top_k(decode_detections, height, width, top_k_case):
    what = f"decode_detections(predictions, {height}, {width}, top_k_per_level=2)"
    found = _detections(call_learner(what, decode_detections, top_k_case, height, width, top_k_per_level=2), what)
    expected = _reference_detections(top_k_case, height, width, top_k_per_level=2)
    if _same_detections(found, expected):
        return
    details = dict(what=what, expected=int(expected[3][0]), found=int(found[3][0]))
    everything = reference_decode(top_k_case, height, width)
    if details["found"] == 2:
        fail(DECODE_TOP_K_GLOBAL, **details)
    if details["found"] == int(everything.num_detections[0]):
        fail(DECODE_TOP_K_IGNORED, **details)
    fail(DECODE_TOP_K_DIFFERS, **details)


@check
def TEST_DECODE(decode_detections):
    """Inference: sigmoid scores, 0.05 threshold, top-k per level, decoding, clipping and class-wise NMS."""
    height, width, predictions, top_k_case = decode_case()
    _check_main_case(decode_detections, height, width, predictions, DECODE_OPTIONS[0])
    _check_top_k(decode_detections, height, width, top_k_case)
    for options in DECODE_OPTIONS[1:]:
        _check_main_case(decode_detections, height, width, predictions, options)
    passed(f"TEST_DECODE passed: sigmoid scores, threshold {SCORE_THRESHOLD:g}, top-k per level, decoding, "
           f"clipping before NMS and class-wise NMS at IoU {NMS_IOU_THRESHOLD:g}, for a batch of images.")
