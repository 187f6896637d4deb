"""Focal loss, smooth L1 and the detection loss against hand values, NumPy oracles written from the
paper's equations (Lin et al., Sec. 3.2 Eq. 5, Sec. 4.1); on every backend. The comparison with the
focal-loss package (TensorFlow) is in test_losses_tensorflow.py."""

import math

import numpy as np
import pytest

from backend_tools import gradient_of_sum
from retinanet.losses import DetectionLoss, detection_loss_terms, sigmoid_focal_loss, smooth_l1_loss
from retinanet.matching import BACKGROUND, IGNORE

pytestmark = pytest.mark.backends("tensorflow", "jax")

LOGITS = np.array([-3.0, -0.5, 0.0, 0.7, 2.0, 4.0])


def paper_focal_loss(labels, logits, alpha=0.25, gamma=2.0):
    """FL(p_t) = −α_t (1 − p_t)^γ log(p_t) in float64, straight from Eq. 5."""
    p = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))
    labels = np.asarray(labels, np.float64)
    p_t = np.where(labels == 1, p, 1 - p)
    alpha_t = np.where(labels == 1, alpha, 1 - alpha)
    return -alpha_t * (1 - p_t) ** gamma * np.log(p_t)


def test_focal_loss_hand_values_at_logit_zero():
    # p = 0.5: FL = α_t · 0.5² · ln 2.
    result = np.asarray(sigmoid_focal_loss([1.0, 0.0], [0.0, 0.0]))
    np.testing.assert_allclose(result, [0.25 * 0.25 * math.log(2), 0.75 * 0.25 * math.log(2)], rtol=1e-6)


def test_focal_loss_hand_value_at_logit_two():
    p = 1 / (1 + math.exp(-2.0))  # 0.8808
    expected_positive = 0.25 * (1 - p) ** 2 * -math.log(p)
    expected_negative = 0.75 * p ** 2 * -math.log(1 - p)
    result = np.asarray(sigmoid_focal_loss([1.0, 0.0], [2.0, 2.0]))
    np.testing.assert_allclose(result, [expected_positive, expected_negative], rtol=1e-5)
    assert expected_negative == pytest.approx(1.2376, abs=1e-4)


@pytest.mark.parametrize("label", [0.0, 1.0])
def test_focal_loss_matches_equation_5(label):
    labels = np.full_like(LOGITS, label)
    np.testing.assert_allclose(np.asarray(sigmoid_focal_loss(labels, LOGITS)), paper_focal_loss(labels, LOGITS), rtol=1e-5)


@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.9])
def test_gamma_zero_is_alpha_balanced_cross_entropy(alpha):
    labels = np.array([1, 0, 1, 0, 1, 0], np.float64)
    p = 1 / (1 + np.exp(-LOGITS))
    balanced_ce = -np.where(labels == 1, alpha * np.log(p), (1 - alpha) * np.log(1 - p))
    np.testing.assert_allclose(np.asarray(sigmoid_focal_loss(labels, LOGITS, alpha=alpha, gamma=0.0)), balanced_ce, rtol=1e-5)


def test_gamma_zero_alpha_half_is_half_binary_cross_entropy():
    labels = np.array([1, 0, 1, 0, 1, 0], np.float64)
    p = 1 / (1 + np.exp(-LOGITS))
    bce = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    np.testing.assert_allclose(np.asarray(sigmoid_focal_loss(labels, LOGITS, alpha=0.5, gamma=0.0)), 0.5 * bce, rtol=1e-5)


def test_focal_loss_is_stable_for_extreme_logits():
    labels = np.array([0.0, 1.0, 1.0, 0.0], np.float32)
    loss, gradient = gradient_of_sum(lambda logits: sigmoid_focal_loss(labels, logits), [100.0, -100.0, 100.0, -100.0])
    # Confidently wrong: p_t = e^−100, (1 − p_t)^γ = 1, −log p_t = 100. Confidently right: ≈ 0.
    np.testing.assert_allclose(loss, [0.75 * 100, 0.25 * 100, 0.0, 0.0], rtol=1e-5, atol=1e-30)
    assert np.isfinite(gradient).all()


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 5.0])
def test_focal_loss_values_and_gradients_are_finite_for_every_gamma(gamma):
    """γ ∈ {0, 0.5, 1, 2, 5} as in the paper's Table 1b; confident logits must not give NaN gradients."""
    labels = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0], np.float32)
    logits = [30.0, -30.0, 100.0, -100.0, 200.0, -200.0, -0.5, 0.7]
    loss, gradient = gradient_of_sum(lambda x: sigmoid_focal_loss(labels, x, gamma=gamma), logits)
    assert np.isfinite(loss).all()
    assert np.isfinite(gradient).all()
    np.testing.assert_allclose(loss[-2:], paper_focal_loss([1, 0], [-0.5, 0.7], gamma=gamma), rtol=1e-5)


def random_detection_batch(rng, batch=3, num_anchors=60, num_classes=4):
    """Targets with positive (class id), background (−1) and ignored (−2) anchors, and predictions.

    The last image has no positive anchor at all."""
    labels = rng.choice([IGNORE, BACKGROUND, BACKGROUND, 0, 1, 2, 3], size=(batch, num_anchors)).astype(np.float32)
    labels[-1] = rng.choice([IGNORE, BACKGROUND], size=num_anchors)
    box_targets = rng.normal(0, 1, size=(batch, num_anchors, 4)).astype(np.float32)
    box_targets[labels < 0] = 0.0
    targets = np.concatenate([box_targets, labels[..., None]], axis=-1)
    predictions = rng.normal(0, 2, size=(batch, num_anchors, 4 + num_classes)).astype(np.float32)
    return targets, predictions


def numpy_detection_loss(targets, predictions, num_classes):
    """Per-image (classification, box) from Eq. 5 and smooth L1 (β = 1), in float64."""
    classification, box = [], []
    for image_targets, image_predictions in zip(targets.astype(np.float64), predictions.astype(np.float64)):
        labels = image_targets[:, 4]
        positive, counted = labels >= 0, labels != IGNORE
        one_hot = (labels[:, None] == np.arange(num_classes)[None, :]).astype(np.float64)
        focal = paper_focal_loss(one_hot, image_predictions[:, 4:])
        normaliser = max(int(positive.sum()), 1)
        classification.append(focal[counted].sum() / normaliser)
        d = np.abs(image_targets[:, :4] - image_predictions[:, :4])
        smooth = np.where(d < 1, 0.5 * d ** 2, d - 0.5)
        box.append(smooth[positive].sum() / normaliser)
    return np.array(classification), np.array(box)


def test_detection_loss_terms_match_numpy_oracle(rng):
    targets, predictions = random_detection_batch(rng)
    expected_cls, expected_box = numpy_detection_loss(targets, predictions, 4)
    classification, box = detection_loss_terms(targets, predictions, 4)
    np.testing.assert_allclose(np.asarray(classification), expected_cls, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(box), expected_box, rtol=1e-4)
    assert expected_box[-1] == 0.0  # no positives: no box loss


def test_image_without_positives_is_divided_by_one():
    num_anchors, num_classes = 5, 2
    targets = np.zeros((1, num_anchors, 5), np.float32)
    targets[..., 4] = [BACKGROUND, BACKGROUND, IGNORE, BACKGROUND, IGNORE]
    predictions = np.zeros((1, num_anchors, 4 + num_classes), np.float32)
    classification, box = detection_loss_terms(targets, predictions, num_classes)
    # 3 background anchors × 2 classes, each 0.75 · 0.5² · ln 2 at logit 0, divided by 1.
    assert float(classification[0]) == pytest.approx(6 * 0.75 * 0.25 * math.log(2), rel=1e-5)
    assert float(box[0]) == 0.0


def test_normalised_by_the_number_of_positive_anchors():
    targets = np.zeros((1, 4, 5), np.float32)
    targets[0, :, 4] = [0, 0, BACKGROUND, BACKGROUND]
    targets[0, :2, :4] = 1.0  # the two positives each miss by 1 in 4 coordinates: smooth L1 = 4 · 0.5
    predictions = np.zeros((1, 4, 5), np.float32)
    classification, box = detection_loss_terms(targets, predictions, 1)
    per_anchor = {True: 0.25 * 0.25 * math.log(2), False: 0.75 * 0.25 * math.log(2)}
    assert float(classification[0]) == pytest.approx((2 * per_anchor[True] + 2 * per_anchor[False]) / 2, rel=1e-5)
    assert float(box[0]) == pytest.approx(2 * 4 * 0.5 / 2, rel=1e-6)


def test_ignored_anchors_contribute_nothing(rng):
    targets, predictions = random_detection_batch(rng)
    ignored = targets[..., 4] == IGNORE
    assert ignored.any()
    changed = predictions.copy()
    changed[ignored] = rng.normal(0, 10, size=changed[ignored].shape)
    before = [np.asarray(t) for t in detection_loss_terms(targets, predictions, 4)]
    after = [np.asarray(t) for t in detection_loss_terms(targets, changed, 4)]
    np.testing.assert_allclose(after, before, rtol=1e-6)
    # ... whereas changing background anchors does change the loss
    background = targets[..., 4] == BACKGROUND
    changed[background] += 1.0
    assert not np.allclose(np.asarray(detection_loss_terms(targets, changed, 4)[0]), before[0])


@pytest.mark.parametrize("difference, expected", [(0.0, 0.0), (0.5, 0.125), (-0.5, 0.125), (1.0, 0.5), (2.0, 1.5), (-3.0, 2.5)])
def test_smooth_l1_hand_values(difference, expected):
    assert float(smooth_l1_loss([difference], [0.0])[0]) == pytest.approx(expected)
    assert float(smooth_l1_loss([1.0], [1.0 - difference])[0]) == pytest.approx(expected, abs=1e-6)


def test_detection_loss_is_classification_plus_box_averaged_over_the_batch(rng):
    targets, predictions = random_detection_batch(rng)
    expected_cls, expected_box = numpy_detection_loss(targets, predictions, 4)
    value = float(DetectionLoss(num_classes=4)(targets, predictions))
    assert value == pytest.approx(float(np.mean(expected_cls + expected_box)), rel=1e-4)


@pytest.mark.parametrize("num_classes", [0, -3, 2.5])
def test_detection_loss_rejects_fewer_than_one_class(num_classes):
    with pytest.raises(ValueError, match="num_classes"):
        DetectionLoss(num_classes=num_classes)


def test_detection_loss_rejects_predictions_with_another_number_of_classes(rng):
    targets, predictions = random_detection_batch(rng, num_classes=4)
    with pytest.raises(ValueError, match="4 \\+ 3"):
        DetectionLoss(num_classes=3)(targets, predictions)


def test_focal_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        sigmoid_focal_loss(np.zeros((2, 3)), np.zeros((2, 4)))
