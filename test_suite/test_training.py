"""The training step on every backend: target assignment and the loss inside the compiled step equal the
per-image reference computation; mixed precision; the learning-rate schedule."""

import numpy as np
import pytest
from conftest import make_tiny_backbone

from retinanet._keras import keras, ops
from retinanet.detector import Detector, InferenceModel
from retinanet.losses import detection_loss_terms
from retinanet.matching import assign_targets
from retinanet.model import RetinaNet
from retinanet.postprocess import decode_detections
from retinanet.train import TrainConfig, WarmupStepDecay, dtype_policy, make_optimizer

SIZE = 64


def ground_truth():
    """Three images with 2, 0 and 1 objects, padded to 3 rows (class −1)."""
    boxes = np.zeros((3, 3, 4), np.float32)
    classes = np.full((3, 3), -1, np.int32)
    boxes[0, :2], classes[0, :2] = [[4, 6, 30, 40], [36, 20, 60, 62]], [0, 2]
    boxes[2, :1], classes[2, :1] = [[10, 10, 50, 30]], [1]
    return boxes, classes


def detector(num_classes=3):
    keras.utils.set_random_seed(1)
    built = Detector(RetinaNet(num_classes, backbone=make_tiny_backbone()), SIZE)
    built.build_for_input()
    return built


def test_the_compiled_step_computes_the_reference_loss():
    """``train_on_batch`` reports the loss before its update: it must equal the mean over the images of
    focal + smooth-L1 loss on targets assigned image by image outside the step."""
    model = detector()
    images = np.random.default_rng(0).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    boxes, classes = ground_truth()
    predictions = model(images)
    targets = ops.stack([assign_targets(model.anchors, b[c >= 0], c[c >= 0]) for b, c in zip(boxes, classes)])
    classification, box = (np.asarray(t) for t in detection_loss_terms(targets, predictions, 3))
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    logs = model.train_on_batch(images, {"boxes": boxes, "classes": classes}, return_dict=True)
    assert logs["classification"] == pytest.approx(classification.mean(), rel=1e-4)
    assert logs["box"] == pytest.approx(box.mean(), rel=1e-4)
    assert logs["loss"] == pytest.approx(classification.mean() + box.mean(), rel=1e-4)
    assert box[1] == 0.0  # the image without objects has no box loss


def test_a_few_steps_reduce_the_loss():
    model = detector()
    images = np.random.default_rng(0).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    boxes, classes = ground_truth()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    losses = [model.train_on_batch(images, {"boxes": boxes, "classes": classes}, return_dict=True)["loss"]
              for _ in range(8)]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_bfloat16_mixed_precision_trains_with_float32_weights():
    keras.mixed_precision.set_dtype_policy(dtype_policy("bfloat16"))
    try:
        model = detector()
        model.compile(optimizer=keras.optimizers.SGD(0.01))
        images = np.zeros((2, SIZE, SIZE, 3), np.uint8)
        boxes, classes = ground_truth()
        loss = model.train_on_batch(images, {"boxes": boxes[:2], "classes": classes[:2]}, return_dict=True)["loss"]
        assert np.isfinite(loss)
        assert keras.backend.standardize_dtype(model(images).dtype) == "bfloat16"
        assert {str(v.dtype) for v in model.trainable_variables} == {"float32"}
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_inference_model_decodes_like_the_reference():
    model = detector()
    images = np.random.default_rng(3).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    head = model.retinanet.cls_head.layers[-1]
    head.bias.assign(np.zeros(head.bias.shape, np.float32))  # scores ≈ 0.5: plenty of candidates for NMS
    found = InferenceModel(model).detect(images)
    expected = decode_detections(model(images), SIZE, SIZE)
    assert int(found["num_detections"][0]) == 100
    for name, value in expected._asdict().items():
        np.testing.assert_allclose(found[name], np.asarray(value), rtol=1e-5, atol=1e-4)


def test_warmup_and_step_decays_follow_the_paper():
    schedule = WarmupStepDecay(0.01, warmup_steps=100, decay_steps=[600, 800])
    rates = {step: float(schedule(step)) for step in (0, 50, 100, 599, 600, 799, 800, 899)}
    assert rates[0] == pytest.approx(0.01 / 3) and rates[50] == pytest.approx(0.01 * (1 / 3 + 2 / 3 * 0.5))
    assert rates[100] == rates[599] == pytest.approx(0.01)
    assert rates[600] == rates[799] == pytest.approx(0.001) and rates[800] == rates[899] == pytest.approx(0.0001)


def test_optimizers_follow_the_config():
    config = TrainConfig("", "", "", steps=900, optimizer="sgd", learning_rate=0.01, mixed_precision="off")
    sgd, schedule = make_optimizer(config)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == 0.9 and sgd.weight_decay == 1e-4
    assert schedule.decay_steps == (600, 800)
    config.optimizer, config.mixed_precision = "adamw", "float16"
    scaled, _ = make_optimizer(config)
    assert isinstance(scaled, keras.optimizers.LossScaleOptimizer)
    with pytest.raises(ValueError, match="sgd"):
        make_optimizer(TrainConfig("", "", "", optimizer="rmsprop", learning_rate=0.1))
