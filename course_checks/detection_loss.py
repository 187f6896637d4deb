"""Stage 4, exercise 1, the detection loss: ``detection_loss(targets, predictions, num_classes)`` (TEST_DETECTION_LOSS).

Lin et al., Sec. 4.1: the classification loss is the focal loss summed over all non-ignored anchors and
classes, the box loss smooth L1 over the positive anchors, each divided by the number of positive anchors
("Focal Loss").
"""

import numpy as np

from retinanet.losses import FOCAL_ALPHA, SMOOTH_L1_BETA, detection_loss_terms, sigmoid_focal_loss, smooth_l1_loss
from retinanet.matching import BACKGROUND, IGNORE

from course_checks.harness import (Cause, Variant, as_array, call_learner, check, close, describe, expect, fail,
                                   first_match, passed, random_generator)


LOSS_RETURNS = Cause(
    "loss.returns", "{what} should return (classification_loss, box_loss), found {found}.")
LOSS_SHAPES = Cause(
    "loss.shapes",
    "{what} should return one value per image, shapes (2,) and (2,), found {classification} and {box}; sum over "
    "anchors (and classes), not over the batch.")
LOSS_NOT_FINITE = Cause(
    "loss.not_finite",
    "{what} is not finite for an image without positive anchors; divide by max(number of positives, 1).")
LOSS_MEAN = Cause(
    "loss.mean",
    "{what}: the losses are divided by the number of anchors; the paper divides each sum by the number of "
    "positive anchors (at least 1).")
LOSS_IGNORED_COUNTED = Cause(
    "loss.ignored_counted",
    "{what}: ignored anchors (label {ignore}) contribute to the classification loss as background; leave them "
    "out of it.")
LOSS_BOX_ON_NON_POSITIVES = Cause(
    "loss.box_on_non_positives",
    "{what}: the box loss covers the background anchors too; only positive anchors have box targets.")
LOSS_BOX_ON_ALL = Cause(
    "loss.box_on_all",
    "{what}: the box loss covers every anchor, ignored ones included; only positive anchors have box targets.")
LOSS_UNNORMALISED = Cause(
    "loss.unnormalised",
    "{what}: the sums are not normalised; divide each image's sums by its number of positive anchors (at "
    "least 1).")
LOSS_NORMALISER_COUNTS_IGNORED = Cause(
    "loss.normaliser_counts_ignored",
    "{what}: the normaliser counts the ignored anchors too; divide by the number of positive anchors only "
    "(labels ≥ 0).")
LOSS_BATCH_NORMALISER = Cause(
    "loss.batch_normaliser",
    "{what}: every image is divided by the positives of the whole batch; divide each image's sums by its own "
    "number of positive anchors (sum over the anchor axis, -1).")
LOSS_CLASS_ZERO = Cause(
    "loss.class_zero",
    "{what}: anchors of class 0 are treated as background; class 0 is a real class — positive anchors are "
    "those with labels ≥ 0 (background is {background}).")
LOSS_ONLY_POSITIVES_CLASSIFIED = Cause(
    "loss.only_positives_classified",
    "{what}: the classification loss covers only positive anchors; background anchors count too (all-zero "
    "targets) — only ignored anchors are left out.")
LOSS_BOX_MEAN = Cause(
    "loss.box_mean",
    "{what}: the box loss averages the 4 deltas of an anchor; sum smooth L1 over them (axis -1).")
LOSS_ALPHA = Cause(
    "loss.alpha",
    "{what}: the classification loss is the focal loss with α = {found_alpha:g}; the paper's is α = {alpha} "
    "(the positives' weight; background gets 1 − α): call sigmoid_focal_loss with its defaults or alpha={alpha}.")
LOSS_SMOOTH_L1_BETA = Cause(
    "loss.smooth_l1_beta",
    "{what}: the box loss is smooth L1 with β = {found_beta}; the course's smooth_l1_loss uses β = {beta:g} "
    "(quadratic below |d| = {beta:g}, linear above): call smooth_l1_loss(targets, predictions) as it is.")
LOSS_IGNORED_AS_POSITIVE = Cause(
    "loss.ignored_as_positive",
    "{what}: ignored anchors (label {ignore}) are counted as positive (labels != {background}); a positive "
    "anchor has a class label ≥ 0, so `positive = labels >= 0`; ignored anchors get no box loss and do not "
    "count in the normaliser.")
LOSS_PRECISION = Cause(
    "loss.precision",
    "{what}: the {part} loss is {found}, expected {expected} ({error:.2%} off): a precision loss, part of it is "
    "computed in float16; convert targets and predictions to float32 and compute the loss in float32.")
LOSS_CLASSIFICATION_DIFFERS = Cause(
    "loss.classification_differs",
    "{what}: the classification loss is {found}, expected {expected}; sum the focal loss of non-ignored "
    "anchors over the one-hot labels (background = all zeros) using the logits predictions[..., 4:].")
LOSS_BOX_DIFFERS = Cause(
    "loss.box_differs",
    "{what}: the box loss is {found}, expected {expected}; sum smooth L1 of predictions[..., :4] against "
    "targets[..., :4] over the positive anchors.")


def loss_case():
    """Two images × 40 anchors, 3 classes: positives (class 0 among them), background and ignored anchors;
    the second image has no positive anchor."""
    rng = random_generator(6)
    num_anchors, num_classes = 40, 3
    labels = np.full((2, num_anchors), BACKGROUND, np.float32)
    labels[0, [1, 5, 9, 20]] = [0, 2, 1, 2]
    labels[0, [2, 3, 30]] = IGNORE
    labels[1, [4, 7]] = IGNORE
    box_targets = rng.normal(0, 1, size=(2, num_anchors, 4)).astype(np.float32)
    box_targets[labels < 0] = 0.0
    targets = np.concatenate([box_targets, labels[..., None]], axis=-1)
    predictions = rng.normal(0, 2, size=(2, num_anchors, 4 + num_classes)).astype(np.float32)
    return targets, predictions, num_classes


def precision_case():
    """Two images × 40 anchors, 3 classes, on values float16 cannot represent: box targets of magnitude 2.5–3.9
    with predicted deltas within 0.005 of them (float16's spacing there, 0.002, is of the difference's size:
    the smooth L1 tens of per cent off, where float32 subtracts exactly) and confident logits of magnitude
    5–9 on the right side (the focal loss of each ≈ e^(−γ·|logit|), about 1% off in float16)."""
    rng = random_generator(16)
    num_anchors, num_classes = 40, 3
    labels = np.full((2, num_anchors), BACKGROUND, np.float32)
    labels[0, [0, 6, 11, 25, 33]] = [1, 0, 2, 2, 0]
    labels[1, [3, 17, 28]] = [2, 1, 0]
    labels[0, [4, 19]] = IGNORE
    labels[1, [9]] = IGNORE
    signs = rng.choice([-1.0, 1.0], size=(2, num_anchors, 4))
    box_targets = signs * rng.uniform(2.5, 3.9, size=(2, num_anchors, 4))
    box_targets[labels < 0] = 0.0
    targets = np.concatenate([box_targets, labels[..., None]], axis=-1).astype(np.float32)
    one_hot = (labels[..., None] == np.arange(num_classes)).astype(np.float64)
    logits = (2 * one_hot - 1) * rng.uniform(5.0, 9.0, size=(2, num_anchors, num_classes))
    predictions = np.concatenate([box_targets + rng.uniform(-0.005, 0.005, size=box_targets.shape), logits],
                                 axis=-1).astype(np.float32)
    return targets, predictions, num_classes


def _loss_with(targets, predictions, num_classes, *, positive=lambda labels: labels >= 0, classified="counted",
               normaliser="positives", box_over="positives", box_reduce=np.sum, alpha=FOCAL_ALPHA,
               beta=SMOOTH_L1_BETA):
    """Per-image (classification, box) losses with optional mistakes, from the reference's element-wise losses."""
    labels = targets[..., 4]
    is_positive, ignored = positive(labels), labels == IGNORE
    has_class = is_positive & (labels >= 0)  # an ignored anchor taken as positive has no class: a zero row
    one_hot = np.eye(num_classes)[np.where(has_class, labels, 0).astype(int)] * has_class[..., None]
    focal = np.asarray(sigmoid_focal_loss(one_hot, predictions[..., 4:], alpha=alpha), np.float64).sum(-1)
    smooth = box_reduce(np.asarray(smooth_l1_loss(targets[..., :4], predictions[..., :4], beta=beta), np.float64),
                        axis=-1)
    weights = {"counted": ~ignored, "all": np.ones_like(ignored), "positives": is_positive}[classified]
    box_mask = {"positives": is_positive, "non_ignored": ~ignored, "all": np.ones_like(ignored)}[box_over]
    counts = {
        "positives": np.maximum(is_positive.sum(-1), 1),
        "anchors": np.full(len(labels), labels.shape[-1]),
        "none": np.ones(len(labels)),
        "not_background": np.maximum((labels != BACKGROUND).sum(-1), 1),
        "batch": np.full(len(labels), max(is_positive.sum(), 1)),
    }[normaliser]
    return (focal * weights).sum(-1) / counts, (smooth * box_mask).sum(-1) / counts


LOSS_VARIANTS = (
    Variant(LOSS_MEAN, lambda *case: _loss_with(*case, normaliser="anchors")),
    Variant(LOSS_IGNORED_COUNTED, lambda *case: _loss_with(*case, classified="all")),
    Variant(LOSS_BOX_ON_NON_POSITIVES, lambda *case: _loss_with(*case, box_over="non_ignored")),
    Variant(LOSS_BOX_ON_ALL, lambda *case: _loss_with(*case, box_over="all")),
    Variant(LOSS_UNNORMALISED, lambda *case: _loss_with(*case, normaliser="none")),
    Variant(LOSS_NORMALISER_COUNTS_IGNORED, lambda *case: _loss_with(*case, normaliser="not_background")),
    Variant(LOSS_BATCH_NORMALISER, lambda *case: _loss_with(*case, normaliser="batch")),
    Variant(LOSS_CLASS_ZERO, lambda *case: _loss_with(*case, positive=lambda labels: labels > 0)),
    Variant(LOSS_ONLY_POSITIVES_CLASSIFIED, lambda *case: _loss_with(*case, classified="positives")),
    Variant(LOSS_BOX_MEAN, lambda *case: _loss_with(*case, box_reduce=np.mean)),
    Variant(LOSS_IGNORED_AS_POSITIVE, lambda *case: _loss_with(*case, positive=lambda labels: labels != BACKGROUND)),
    Variant(LOSS_IGNORED_AS_POSITIVE, lambda *case: _loss_with(*case, positive=lambda labels: labels != BACKGROUND,
                                                               classified="all")),
)
"""The paper's loss with one mistake made, tried in this order."""


def _losses_match(found, expected):
    return close(found[0], expected[0], rtol=1e-3) and close(found[1], expected[1], rtol=1e-3)


def _rounded(values):
    return str(np.round(values, 3).tolist())


WRONG_ALPHAS = (0.75, 0.5, 1.0)
"""α values a learner may pass instead of the paper's: 1 − α (the weights swapped), 0.5 and 1 (none)."""

WRONG_BETAS = ((1 / 9, "1/9"), (0.11, "0.11"), (0.5, "0.5"), (0.1, "0.1"))
"""Smooth-L1 β values from other code bases: 1/9 (torchvision's smooth_l1_loss default), 0.11 (Detectron's
RETINANET.BBOX_REG_BETA), 0.5 and 0.1."""


def _diagnose_constants(found, targets, predictions, num_classes, what):
    """A loss that is right but for one constant: the focal loss's α, or the smooth L1's β."""
    for alpha in WRONG_ALPHAS:
        if _losses_match(found, _loss_with(targets, predictions, num_classes, alpha=alpha)):
            fail(LOSS_ALPHA, what=what, found_alpha=alpha)
    for beta, shown in WRONG_BETAS:
        if _losses_match(found, _loss_with(targets, predictions, num_classes, beta=beta)):
            fail(LOSS_SMOOTH_L1_BETA, what=what, found_beta=shown, beta=SMOOTH_L1_BETA)


def _learner_losses(detection_loss, targets, predictions, num_classes, what):
    result = call_learner(what, detection_loss, targets, predictions, num_classes)
    expect(isinstance(result, (tuple, list)) and len(result) == 2, LOSS_RETURNS, what=what, found=describe(result))
    found = (as_array(result[0], "the classification loss"), as_array(result[1], "the box loss"))
    expect(found[0].shape == (2,) and found[1].shape == (2,), LOSS_SHAPES, what=what, classification=found[0].shape,
           box=found[1].shape)
    expect(np.all(np.isfinite(found[0])) and np.all(np.isfinite(found[1])), LOSS_NOT_FINITE, what=what)
    return found


def _report_difference(found, expected, what):
    part, cause = (0, LOSS_CLASSIFICATION_DIFFERS) if not close(found[0], expected[0], rtol=1e-3) else \
        (1, LOSS_BOX_DIFFERS)
    fail(cause, what=what, found=_rounded(found[part]), expected=_rounded(expected[part]))


def _relative_error(found, expected):
    """The largest difference relative to the largest expected value (the precision case's values are small)."""
    return float(np.max(np.abs(found - expected))) / max(1e-30, float(np.max(np.abs(expected))))


def _few_digits(values):
    return "[" + ", ".join(f"{value:.4g}" for value in values) + "]"


PRECISION_TOLERANCE = (1e-3, 1e-4)
"""The precision case's (classification, box) losses, relative. The box loss subtracts nearby float32 values
exactly: float32 is within 10⁻⁶, float16 2–20% off. The focal loss of confident logits is left room for other
float32 formulas (float16: 10⁻⁴–10⁻³)."""

PRECISION_LIMIT = 0.5
"""On the precision case a loss within this relative error of the reference (after the main case passed) is the
reference computed with float16 somewhere: float16 rounding costs a few per cent there, float32 < 10⁻⁵."""


@check
def TEST_DETECTION_LOSS(detection_loss):
    """``detection_loss(targets, predictions, num_classes)`` → per-image (classification, box) losses."""
    targets, predictions, num_classes = loss_case()
    what = f"detection_loss(targets, predictions, num_classes={num_classes})"
    found = _learner_losses(detection_loss, targets, predictions, num_classes, what)
    expected = tuple(np.asarray(x, np.float64) for x in detection_loss_terms(targets, predictions, num_classes))
    if not _losses_match(found, expected):
        variant = first_match(found, LOSS_VARIANTS, _losses_match, targets, predictions, num_classes)
        if variant is not None:
            fail(variant.cause, what=what)
        _diagnose_constants(found, targets, predictions, num_classes, what)
        _report_difference(found, expected, what)
    targets, predictions, num_classes = precision_case()
    what = f"detection_loss(targets, predictions, num_classes={num_classes}) on values float16 cannot represent"
    found = _learner_losses(detection_loss, targets, predictions, num_classes, what)
    expected = tuple(np.asarray(x, np.float64) for x in detection_loss_terms(targets, predictions, num_classes))
    errors = [_relative_error(f, e) for f, e in zip(found, expected)]
    if any(error > tolerance for error, tolerance in zip(errors, PRECISION_TOLERANCE)):
        part = int(np.argmax(np.divide(errors, PRECISION_TOLERANCE)))
        expect(errors[part] >= PRECISION_LIMIT, LOSS_PRECISION, what=what, part=("classification", "box")[part], found=_few_digits(found[part]),
               expected=_few_digits(expected[part]), error=errors[part])
        _report_difference(found, expected, what)
    passed("TEST_DETECTION_LOSS passed: focal loss over non-ignored anchors + smooth L1 over positives, each "
           "divided by the image's number of positive anchors.")
