"""Losses: the focal loss for classification, smooth L1 for boxes, and their sum.

Focal loss (Lin et al., Sec. 3.2, Eq. 5): with p the sigmoid probability and
p_t = p for a positive label, 1 − p otherwise,

    FL(p_t) = −α_t (1 − p_t)^γ log(p_t),    α_t = α for positives, 1 − α for negatives,

with γ = 2 and α = 0.25 (Sec. 5.1, Table 1a/1b). γ = 0 gives α-balanced cross-entropy. The loss of an
image is summed over all non-ignored anchors and classes and divided by the number of positive anchors
(Sec. 4.1, "Focal Loss"). Box regression uses the smooth L1 loss on positive anchors (Sec. 4.1, "Box
regression"; Fast R-CNN), normalised the same way.
"""

from retinanet._keras import keras, ops
from retinanet.matching import BACKGROUND, IGNORE

FOCAL_ALPHA = 0.25
"""α, the weight of the positive (rare) class (Sec. 5.1, Table 1a/1b)."""

FOCAL_GAMMA = 2.0
"""γ, the focusing parameter (Sec. 5.1, Table 1b)."""

_SMALLEST_NORMAL = 1.17549435e-38
"""Floor on 1 − p_t before the power γ, so that the loss's gradient stays finite for every γ ≥ 0."""

SMOOTH_L1_BETA = 1.0
"""Where smooth L1 turns from quadratic to linear, on variance-scaled deltas (≈ Detectron's 0.11 on
unscaled ones, since the variances divide centre deltas by 0.1)."""


def sigmoid_focal_loss(labels, logits, alpha=FOCAL_ALPHA, gamma=FOCAL_GAMMA):
    """Element-wise α-balanced focal loss from logits; same shape as ``labels`` and ``logits``.

    The cross-entropy term is computed from logits, max(x, 0) − x·y + log(1 + e^−|x|), which stays finite
    for any logit; the modulating factor (1 − p_t)^γ multiplies it (Sec. 3.2, last paragraph).
    """
    labels = ops.convert_to_tensor(labels, dtype="float32")
    logits = ops.cast(ops.convert_to_tensor(logits), "float32")
    if len(labels.shape) != len(logits.shape) or any(
        a is not None and b is not None and a != b for a, b in zip(labels.shape, logits.shape)
    ):  # unknown (None) sizes are checked when known
        raise ValueError(f"labels {tuple(labels.shape)} and logits {tuple(logits.shape)} must have the same shape")
    cross_entropy = ops.relu(logits) - logits * labels + ops.log1p(ops.exp(-ops.abs(logits)))
    # 1 − p_t as σ(−x) for positives and σ(x) for negatives: "1 − σ(x)" rounds to exactly 0 in float32
    # from x ≈ 17 on, and the gradient of (1 − p_t)^γ at 0 is infinite for γ < 1 (NaN after the chain rule).
    one_minus_p_t = labels * ops.sigmoid(-logits) + (1.0 - labels) * ops.sigmoid(logits)
    modulating_factor = ops.power(ops.maximum(one_minus_p_t, _SMALLEST_NORMAL), gamma)
    alpha_t = labels * alpha + (1.0 - labels) * (1.0 - alpha)
    return alpha_t * modulating_factor * cross_entropy


def smooth_l1_loss(targets, predictions, beta=SMOOTH_L1_BETA):
    """Element-wise smooth L1: 0.5·d²/β where |d| < β, else |d| − 0.5·β."""
    targets = ops.convert_to_tensor(targets, dtype="float32")
    difference = ops.abs(targets - ops.cast(ops.convert_to_tensor(predictions), "float32"))
    return ops.where(difference < beta, 0.5 * difference ** 2 / beta, difference - 0.5 * beta)


def detection_loss_terms(targets, predictions, num_classes, alpha=FOCAL_ALPHA, gamma=FOCAL_GAMMA):
    """Per-image classification and box losses, each ``(batch,)``.

    Args:
        targets: ``(batch, N, 5)`` from :func:`retinanet.matching.assign_targets`.
        predictions: ``(batch, N, 4 + K)`` from :class:`retinanet.RetinaNet`: box deltas, class logits.
        num_classes: K.
    """
    targets = ops.convert_to_tensor(targets, dtype="float32")
    predictions = ops.cast(ops.convert_to_tensor(predictions), "float32")  # mixed precision: losses in float32
    if targets.shape[-1] not in (None, 5) or predictions.shape[-1] not in (None, 4 + num_classes):
        raise ValueError(
            f"expected targets (batch, N, 5) and predictions (batch, N, 4 + {num_classes}), "
            f"got {tuple(targets.shape)} and {tuple(predictions.shape)}"
        )
    labels = targets[..., 4]
    positive = labels > BACKGROUND
    counted = ops.not_equal(labels, IGNORE)
    num_positive = ops.maximum(ops.sum(ops.cast(positive, "float32"), axis=-1), 1.0)

    one_hot = ops.one_hot(ops.cast(ops.where(positive, labels, -1.0), "int32"), num_classes)
    focal = sigmoid_focal_loss(one_hot, predictions[..., 4:], alpha=alpha, gamma=gamma)
    focal = ops.where(counted[..., None], focal, 0.0)
    classification = ops.sum(focal, axis=(-2, -1)) / num_positive

    box = ops.sum(smooth_l1_loss(targets[..., :4], predictions[..., :4]), axis=-1)
    box = ops.sum(ops.where(positive, box, 0.0), axis=-1) / num_positive
    return classification, box


@keras.saving.register_keras_serializable(package="retinanet")
class DetectionLoss(keras.losses.Loss):
    """RetinaNet's training objective for ``model.compile``: focal loss + smooth L1, per image.

    ``y_true`` is ``(batch, N, 5)`` targets, ``y_pred`` the model's ``(batch, N, 4 + K)`` output.
    """

    def __init__(self, num_classes, alpha=FOCAL_ALPHA, gamma=FOCAL_GAMMA, name="retinanet_loss", **kwargs):
        if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
        super().__init__(name=name, **kwargs)
        self.num_classes, self.alpha, self.gamma = int(num_classes), alpha, gamma

    def call(self, y_true, y_pred):
        classification, box = detection_loss_terms(y_true, y_pred, self.num_classes, self.alpha, self.gamma)
        return classification + box

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "alpha": self.alpha, "gamma": self.gamma}
