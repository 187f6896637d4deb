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
import retinanet.run.recipes as recipes
from retinanet.backbone import get_backbone
from retinanet.fpn import FPN_CHANNELS
from retinanet.heads import KERNEL_STDDEV
from retinanet.run.recipes import (
    ADAMW_LEARNING_RATE, CPU_HEAD_CHANNELS, SGD_LEARNING_RATE, TrainConfig, WarmupStepDecay, build_detector,
    dtype_policy, freeze_for_finetuning, make_optimizer, resolve_auto,
)

pytestmark = pytest.mark.backends("tensorflow", "jax")

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


def _choices(config):
    return config.recipe, config.backbone, config.head_channels, config.head_init, config.optimizer, config.learning_rate


def test_the_recipes_fill_what_is_left_to_them(monkeypatch):
    monkeypatch.setattr(recipes, "accelerators", lambda: [])
    assert _choices(resolve_auto(TrainConfig("", "", ""))) == (
        "cpu", "light", CPU_HEAD_CHANNELS, "he", "adamw", ADAMW_LEARNING_RATE)
    assert _choices(resolve_auto(TrainConfig("", "", "", recipe="paper"))) == (
        "paper", "resnet50", FPN_CHANNELS, "paper", "sgd", SGD_LEARNING_RATE)
    overridden = TrainConfig("", "", "", recipe="cpu", head_channels=128, head_init="paper", optimizer="sgd")
    assert _choices(resolve_auto(overridden)) == ("cpu", "light", 128, "paper", "sgd", SGD_LEARNING_RATE)
    with pytest.raises(ValueError, match="recipe must be one of"):
        resolve_auto(TrainConfig("", "", "", recipe="fast"))
    monkeypatch.setattr(recipes, "accelerators", lambda: ["gpu:0"])
    on_gpu = resolve_auto(TrainConfig("", "", ""))
    assert on_gpu.recipe == "paper" and on_gpu.head_channels == FPN_CHANNELS and on_gpu.mixed_precision == "bfloat16"


def test_the_cpu_recipe_narrows_the_subnets_and_he_initialises_their_hidden_layers():
    keras.utils.set_random_seed(0)
    he = build_detector(3, SIZE, "light", head_channels=16, head_init="he").retinanet
    paper = build_detector(3, SIZE, "light", head_channels=16, head_init="paper").retinanet
    for model in (he, paper):
        assert model.fpn.conv_c3_3x3.filters == 16 and model.cls_head.layers[0].filters == 16
        for head in (model.cls_head, model.box_head):  # the output convolutions keep the paper's σ
            assert np.std(ops.convert_to_numpy(head.layers[-1].kernel)) == pytest.approx(KERNEL_STDDEV, rel=0.1)
    hidden_std = lambda model: np.std(ops.convert_to_numpy(model.box_head.layers[1].kernel))  # noqa: E731
    assert hidden_std(he) == pytest.approx(np.sqrt(2 / (9 * 16)), rel=0.1)
    assert hidden_std(paper) == pytest.approx(KERNEL_STDDEV, rel=0.1)


def test_fine_tuning_freezes_the_stem_stage_2_and_batch_norm():
    resnet = get_backbone(input_shape=(None, None, 3), weights=None)
    freeze_for_finetuning(resnet)
    by_name = {layer.name: layer for layer in resnet.layers}
    assert not any(layer.trainable for layer in resnet.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert not by_name["conv1_conv"].trainable and not by_name["conv2_block3_3_conv"].trainable
    assert by_name["conv3_block1_1_conv"].trainable and by_name["conv5_block3_3_conv"].trainable
