"""The reference's TensorFlow-only edges and comparisons (TensorFlow leg only): the focal loss against the
focal-loss package, the detection loss inside a ``tf.function`` graph, and the keras.ops NMS against
TensorFlow's ``combined_non_max_suppression``."""

import numpy as np
import pytest
from focal_loss import BinaryFocalLoss, binary_focal_loss

from course import tf
from retinanet._keras import ops
from retinanet.anchors import generate_anchors
from retinanet.losses import DetectionLoss, detection_loss_terms, sigmoid_focal_loss
from retinanet.matching import IGNORE
from retinanet.postprocess import decode_detections
from test_losses import random_detection_batch


def test_equals_scaled_focal_loss_package_elementwise(rng):
    """Paper's α = 0.25 focal loss == 0.75 × binary_focal_loss(pos_weight = 0.25/0.75): the package
    weights positives by pos_weight and negatives by 1."""
    labels = rng.integers(0, 2, size=(4, 50)).astype(np.float32)
    logits = rng.normal(0, 3, size=(4, 50)).astype(np.float32)
    package = np.asarray(binary_focal_loss(labels, logits, gamma=2, pos_weight=1 / 3, from_logits=True))
    np.testing.assert_allclose(np.asarray(sigmoid_focal_loss(labels, logits)), 0.75 * package, rtol=1e-4, atol=1e-7)


def test_classification_term_equals_binary_focal_loss_package(rng):
    """Σ over non-ignored anchors and classes / max(#positives, 1), built from BinaryFocalLoss."""
    num_classes = 4
    targets, predictions = random_detection_batch(rng, num_classes=num_classes)
    package_loss = BinaryFocalLoss(gamma=2, pos_weight=1 / 3, from_logits=True, reduction="sum")
    expected = []
    for image_targets, image_predictions in zip(targets, predictions):
        labels = image_targets[:, 4]
        one_hot = (labels[:, None] == np.arange(num_classes)[None, :]).astype(np.float32)
        not_ignored = np.broadcast_to((labels != IGNORE)[:, None], one_hot.shape).astype(np.float32)
        total = 0.75 * float(package_loss(one_hot, image_predictions[:, 4:], sample_weight=not_ignored))
        expected.append(total / max(int((labels >= 0).sum()), 1))
    classification, _ = detection_loss_terms(targets, predictions, num_classes)
    np.testing.assert_allclose(np.asarray(classification), expected, rtol=1e-4)


def test_class_count_mismatch_is_caught_with_an_unknown_batch_size():
    """Inside ``fit`` the batch size is unknown; a model with 4 classes and a loss for 3 must still fail."""
    loss = DetectionLoss(num_classes=3)
    traced = tf.function(loss.call, input_signature=[tf.TensorSpec([None, None, 5]), tf.TensorSpec([None, None, 8])])
    with pytest.raises(ValueError, match="4 \\+ 3"):
        traced.get_concrete_function()


@pytest.mark.parametrize("seed", range(3))
def test_agrees_with_tensorflow_combined_nms(seed):
    rng = np.random.default_rng(seed)
    anchors = generate_anchors(128, 128)
    predictions = np.concatenate([rng.normal(0, 1, (2, len(anchors), 4)),
                                  rng.normal(-2.0, 1.5, (2, len(anchors), 4))], axis=-1).astype(np.float32)
    ours = [ops.convert_to_numpy(t) for t in decode_detections(predictions, 128, 128, nms="keras")]
    theirs = [ops.convert_to_numpy(t) for t in decode_detections(predictions, 128, 128, nms="tensorflow")]
    assert ours[3].tolist() == theirs[3].tolist() and ours[3].min() > 50
    for found, expected in zip(ours, theirs):
        np.testing.assert_allclose(found, expected, rtol=1e-6, atol=1e-5)
