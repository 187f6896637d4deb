"""Stage 2, the focal loss: ``sigmoid_focal_loss(labels, logits, alpha, gamma)``, element-wise.

Lin et al., Sec. 3.2, Eq. 5: FL(p_t) = −α_t (1 − p_t)^γ log(p_t), with p_t = p for positives and 1 − p for
negatives, α_t likewise α and 1 − α; the cross-entropy is computed from logits, which keeps it exact for
confident predictions (Sec. 3.2, last paragraph).
"""

import types

import numpy as np

from retinanet.losses import FOCAL_ALPHA, FOCAL_GAMMA, sigmoid_focal_loss as reference_focal_loss

from course_checks.harness import (Cause, Variant, as_array, call_learner, check, close, diagnose, expect, fail, jittered,
                                   passed)


PARAMETER_PAIRS = ((FOCAL_ALPHA, FOCAL_GAMMA), (0.5, 0.0), (0.75, 5.0), (0.4, 0.5))
"""(α, γ) pairs tried: the paper's first, so that every mistake shows there, then ones that expose
hard-coded values (γ = 0 is α-balanced cross-entropy, Eq. 3)."""

EXTREME_LOGITS = np.array([[100.0, -100.0, 30.0, -30.0, 20.0, -20.0]] * 2, np.float32)
"""Confident logits: label 1 in the first row, 0 in the second; half of them hopelessly wrong, where the
loss is large (≈ α_t·|z|) and a clipped log(p) caps it."""

SHAPE_REDUCED = Cause(
    "focal.reduced",
    "{what} should return one loss per element, shape {expected}, found shape {found}; do not reduce (sum or "
    "mean) here, the detection loss normalises later.")
SHAPE_LAST_AXIS = Cause(
    "focal.last_axis_reduced",
    "{what} should return one loss per element, shape {expected}, found shape {found}: the last axis was "
    "averaged away, as keras.losses.binary_crossentropy and binary_focal_crossentropy do; compute the "
    "element-wise cross-entropy with `tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)`.")
NEGATIVE = Cause(
    "focal.negative",
    "{what} returned negative losses; FL = −α_t (1 − p_t)^γ log(p_t) is positive (check the sign: log(p_t) "
    "≤ 0).")
IGNORES_ARGUMENTS = Cause(
    "focal.ignores_arguments",
    "{what} returns the loss for α = {alpha}, γ = {gamma} whatever is passed: use the alpha and gamma "
    "arguments, not fixed numbers.")
ALPHA_SWAPPED = Cause(
    "focal.alpha_swapped",
    "{what} differs from Eq. 5: α is applied to the wrong class: α_t = α for positives (label 1) and 1 − α "
    "for negatives.")
NO_ALPHA = Cause(
    "focal.no_alpha",
    "{what} differs from Eq. 5: the α-balancing factor α_t (α for positives, 1 − α for negatives) is missing.")
ALPHA_POSITIVES_ONLY = Cause(
    "focal.alpha_positives_only",
    "{what} differs from Eq. 5: negatives are weighted 1; α_t is α for positives and 1 − α for negatives.")
GAMMA_ON_P_T = Cause(
    "focal.gamma_on_p_t",
    "{what} differs from Eq. 5: the modulating factor should be (1 − p_t)^γ, found p_t^γ, which weights easy "
    "examples up.")
GAMMA_ON_P = Cause(
    "focal.gamma_on_p",
    "{what} differs from Eq. 5: the modulating factor uses p instead of p_t: it should be (1 − p_t)^γ with "
    "p_t = p for positives and 1 − p for negatives.")
GAMMA_MULTIPLIED = Cause(
    "focal.gamma_multiplied",
    "{what} differs from Eq. 5: the modulating factor is (1 − p_t) · γ; it is a power, (1 − p_t)^γ "
    "(tf.pow or **).")
NO_MODULATION = Cause(
    "focal.no_modulation", "{what} differs from Eq. 5: the modulating factor (1 − p_t)^γ is missing.")
DIFFERS = Cause(
    "focal.differs",
    "{what} differs from FL(p_t) = −α_t (1 − p_t)^γ log(p_t) (Eq. 5): for label {label:g} and logit "
    "{logit:g} it should be {expected:.5g}, found {found:.5g}.")
NOT_FINITE = Cause(
    "focal.not_finite",
    "sigmoid_focal_loss is not finite for logits of ±100 (log of a probability that rounded to 0 or 1); "
    "compute the cross-entropy from logits, `tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, "
    "logits=logits)`, as the paper advises.")
DEFAULTS_WRONG = Cause(
    "focal.defaults",
    "Called without alpha and gamma, sigmoid_focal_loss computes the loss of α = {found_alpha:g}, γ = "
    "{found_gamma:g}; the defaults are the paper's, α = {alpha} and γ = {gamma}: make them the "
    "signature's defaults (alpha={alpha}, gamma={gamma}).")
CAPPED = Cause(
    "focal.capped",
    "sigmoid_focal_loss is capped for confident wrong predictions: for label {label:g} and logit {logit:g} "
    "it should be {expected:.4g}, found {found:.4g}, the mark of a clipped or ε-shifted log(p_t); compute "
    "the cross-entropy from logits, `tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)`, "
    "which is exact there.")
EXTREME_DIFFERS = Cause(
    "focal.extreme_differs",
    "sigmoid_focal_loss differs from the reference for confident predictions: for label {label:g} and logit "
    "{logit:g} it should be {expected:.5g}, found {found:.5g}.")


def _parts(labels, logits, alpha, gamma):
    """The pieces of Eq. 5 in float64: p, ce = −log(p_t) (computed stably), p_t, α_t, the swapped α_t,
    and the inputs."""
    p = 1.0 / (1.0 + np.exp(-logits))
    return types.SimpleNamespace(
        p=p, ce=np.logaddexp(0.0, logits) - labels * logits, p_t=np.where(labels == 1, p, 1 - p),
        alpha_t=np.where(labels == 1, alpha, 1 - alpha), swapped=np.where(labels == 1, 1 - alpha, alpha),
        labels=labels, alpha=alpha, gamma=gamma)


def _reference(labels, logits, alpha, gamma):
    return np.asarray(reference_focal_loss(labels, logits, alpha=alpha, gamma=gamma), np.float64)


def _variant(formula):
    return lambda labels, logits, alpha, gamma: formula(_parts(labels, logits, alpha, gamma))


VARIANTS = (
    Variant(IGNORES_ARGUMENTS, lambda labels, logits, *_: _reference(labels, logits, FOCAL_ALPHA, FOCAL_GAMMA)),
    Variant(ALPHA_SWAPPED, _variant(lambda v: v.swapped * (1 - v.p_t) ** v.gamma * v.ce)),
    Variant(NO_ALPHA, _variant(lambda v: (1 - v.p_t) ** v.gamma * v.ce)),
    Variant(ALPHA_POSITIVES_ONLY,
            _variant(lambda v: np.where(v.labels == 1, v.alpha, 1.0) * (1 - v.p_t) ** v.gamma * v.ce)),
    Variant(GAMMA_ON_P_T, _variant(lambda v: v.alpha_t * v.p_t ** v.gamma * v.ce)),
    Variant(GAMMA_ON_P, _variant(lambda v: v.alpha_t * (1 - v.p) ** v.gamma * v.ce)),
    Variant(GAMMA_MULTIPLIED, _variant(lambda v: v.alpha_t * (1 - v.p_t) * v.gamma * v.ce)),
    Variant(NO_MODULATION, _variant(lambda v: v.alpha_t * v.ce)),
)
"""The paper's loss with one mistake made, tried in this order."""


def _matches(found, expected):
    return close(found, expected, rtol=1e-3, atol=1e-5)


def _worst(found, expected, labels, logits):
    """Details of the element where found and expected differ most, for a message."""
    index = np.unravel_index(np.argmax(np.abs(np.nan_to_num(found, nan=1e30) - expected)), expected.shape)
    return dict(label=labels[index], logit=logits[index], expected=expected[index], found=found[index])


def _check_shape(found, expected_shape, what):
    if found.shape == expected_shape:
        return
    cause = SHAPE_LAST_AXIS if found.shape == expected_shape[:-1] else SHAPE_REDUCED
    fail(cause, what=what, expected=expected_shape, found=found.shape)


WRONG_DEFAULTS = tuple((alpha, gamma) for alpha in (1 - FOCAL_ALPHA, 0.5, 1.0, FOCAL_ALPHA)
                       for gamma in (FOCAL_GAMMA, 0.0, 1.0) if (alpha, gamma) != (FOCAL_ALPHA, FOCAL_GAMMA))
"""(α, γ) defaults a learner may write instead of the paper's (α = 0.75 swaps the weights)."""


def _check_extreme_logits(sigmoid_focal_loss):
    labels = np.stack([np.ones(EXTREME_LOGITS.shape[1]), np.zeros(EXTREME_LOGITS.shape[1])]).astype(np.float32)
    what = "sigmoid_focal_loss on logits ±100, ±30, ±20"
    found = as_array(call_learner(what, sigmoid_focal_loss, labels, EXTREME_LOGITS), "sigmoid_focal_loss's result")
    _check_shape(found, labels.shape, what)
    expect(np.all(np.isfinite(found)), NOT_FINITE)
    expected = _reference(labels, EXTREME_LOGITS, FOCAL_ALPHA, FOCAL_GAMMA)
    if _matches(found, expected):
        return
    for alpha, gamma in WRONG_DEFAULTS:
        if _matches(found, _reference(labels, EXTREME_LOGITS, alpha, gamma)):
            fail(DEFAULTS_WRONG, found_alpha=alpha, found_gamma=gamma)
    worst = _worst(found, expected, labels, EXTREME_LOGITS)
    hopeless = expected > 1.0  # the wrong predictions, whose loss grows like α_t·|z|
    most_hopeless = np.abs(EXTREME_LOGITS) == np.abs(EXTREME_LOGITS).max()
    if np.all(found[hopeless] < expected[hopeless] * (1 - 1e-3)) and \
            np.all(found[most_hopeless & hopeless] < 0.5 * expected[most_hopeless & hopeless]) and \
            _matches(found[~hopeless], expected[~hopeless]):
        fail(CAPPED, **worst)
    fail(EXTREME_DIFFERS, **worst)


@check
def TEST_FOCAL_LOSS(sigmoid_focal_loss):
    """Element-wise α-balanced sigmoid focal loss (Lin et al., Eq. 5) from logits."""
    logits = jittered(np.tile(np.linspace(-8.0, 8.0, 33), 2).reshape(2, 33).astype(np.float32), seed=8, scale=0.1)
    labels = np.stack([np.ones(33), np.zeros(33)]).astype(np.float32)
    for alpha, gamma in PARAMETER_PAIRS:
        what = f"sigmoid_focal_loss(labels, logits, alpha={alpha:g}, gamma={gamma:g})"
        found = as_array(call_learner(what, sigmoid_focal_loss, labels, logits, alpha=alpha, gamma=gamma),
                         f"{what}'s result")
        _check_shape(found, labels.shape, what)
        arguments = (labels.astype(np.float64), logits.astype(np.float64), alpha, gamma)
        expected = _reference(labels, logits, alpha, gamma)
        if _matches(found, expected):
            continue
        expect(not (np.all(found <= 1e-7) and np.any(found < -1e-6)), NEGATIVE, what=what)
        diagnose(found, VARIANTS, _matches, *arguments, what=what)
        fail(DIFFERS, what=what, **_worst(found, expected, labels, logits))
    _check_extreme_logits(sigmoid_focal_loss)
    passed(f"TEST_FOCAL_LOSS passed: the α-balanced focal loss matches Eq. 5 for {len(PARAMETER_PAIRS)} (α, γ) "
           "pairs and stays exact for logits up to ±100.")
