"""Backbone, FPN, subnets and the assembled model against the paper (Lin et al., Sec. 4, 4.1, Fig. 3).

ResNet50 is built only a few times (session fixtures in conftest.py); the FPN wiring is checked on an
injected probe backbone whose C3, C4 and C5 come from separate colour channels, so that a test can hold
C5 fixed while C3 and C4 change, and every pyramid level is recomputed by hand in NumPy.
"""

import math
import warnings

import numpy as np
import pytest
from conftest import conv2d_same, make_tiny_backbone

from retinanet import RetinaNet, build_head, get_backbone
from retinanet import backbone as backbone_module
from retinanet._keras import keras
from retinanet.anchors import generate_anchors
from retinanet.backbone import BACKBONE_OUTPUT_LAYERS, ImageNetWeightsUnavailable, preprocess_images
from retinanet.fpn import FeaturePyramidNetwork
from retinanet.heads import prior_bias

pytestmark = pytest.mark.backends("tensorflow", "jax")

# ---------------------------------------------------------------------------------------------- backbone


def test_backbone_default_input_and_outputs(resnet_backbone_default):
    model = resnet_backbone_default
    assert isinstance(model, keras.Model)
    assert tuple(model.inputs[0].shape) == (None, 128, 128, 3)
    assert BACKBONE_OUTPUT_LAYERS == ("conv3_block4_out", "conv4_block6_out", "conv5_block3_out")
    produced_by = [model.get_layer(name).output for name in BACKBONE_OUTPUT_LAYERS]
    assert [tuple(t.shape) for t in model.outputs] == [(None, 16, 16, 512), (None, 8, 8, 1024), (None, 4, 4, 2048)]
    assert [id(t) for t in model.outputs] == [id(t) for t in produced_by]


@pytest.mark.parametrize("side", [64, 96])
def test_backbone_accepts_any_multiple_of_32(resnet_backbone_any_size, side):
    c3, c4, c5 = resnet_backbone_any_size(np.zeros((1, side, side, 3), np.float32))
    assert tuple(c3.shape) == (1, side // 8, side // 8, 512)
    assert tuple(c4.shape) == (1, side // 16, side // 16, 1024)
    assert tuple(c5.shape) == (1, side // 32, side // 32, 2048)


@pytest.mark.parametrize("input_shape", [(128, 128, 4), (128, 128), (128, 128, 1)])
def test_backbone_rejects_images_without_three_channels(input_shape):
    with pytest.raises(ValueError, match="height, width, 3"):
        get_backbone(input_shape=input_shape, weights=None)


def test_preprocess_images_is_resnet_caffe_preprocessing():
    rgb = np.array([[[[255.0, 0.0, 10.0]]]], np.float32)
    # BGR order, minus the ImageNet channel means (103.939, 116.779, 123.68)
    np.testing.assert_allclose(np.asarray(preprocess_images(rgb))[0, 0, 0], [10 - 103.939, 0 - 116.779, 255 - 123.68], rtol=1e-5)


@pytest.fixture
def offline_keras_home(tmp_path, monkeypatch):
    """An empty KERAS_HOME, the once-per-process warning flag reset, and any download made to fail."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(backbone_module, "_warned_about_weights", False)
    from keras.src.utils import file_utils

    def no_download(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args} {kwargs}")

    monkeypatch.setattr(file_utils, "get_file", no_download)
    return tmp_path


def test_missing_imagenet_weights_warn_once_and_fall_back(offline_keras_home):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = get_backbone(input_shape=(64, 64, 3), weights="auto")
        second = get_backbone(input_shape=(64, 64, 3), weights="auto")
    fallbacks = [w for w in caught if issubclass(w.category, ImageNetWeightsUnavailable)]
    assert len(fallbacks) == 1, [str(w.message) for w in caught]
    assert str(offline_keras_home) in str(fallbacks[0].message)
    assert isinstance(first, keras.Model) and isinstance(second, keras.Model)
    assert list(offline_keras_home.rglob("*")) == []  # nothing was written (downloaded) there


def test_insisting_on_missing_imagenet_weights_raises(offline_keras_home):
    with pytest.raises(FileNotFoundError, match="weights=None") as error:
        get_backbone(weights="imagenet")
    assert str(offline_keras_home) in str(error.value)


# ---------------------------------------------------------------------------------------------- FPN


def probe_images(rng, height=128, width=128, batch=1):
    return rng.normal(0, 1, size=(batch, height, width, 3)).astype(np.float32)


@pytest.mark.parametrize("height, width", [(128, 128), (96, 160)])
def test_fpn_levels_have_256_channels_and_strides_8_to_128(probe_backbone, rng, height, width):
    fpn = FeaturePyramidNetwork(backbone=probe_backbone)
    levels = fpn(probe_images(rng, height, width, batch=2))
    assert len(levels) == 5
    for level, stride in zip(levels, (8, 16, 32, 64, 128)):
        assert tuple(level.shape) == (2, math.ceil(height / stride), math.ceil(width / stride), 256)


def test_fpn_layer_attributes():
    fpn = FeaturePyramidNetwork(backbone=make_tiny_backbone())
    for name in ("conv_c3_1x1", "conv_c4_1x1", "conv_c5_1x1"):
        layer = getattr(fpn, name)
        assert isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (1, 1) and layer.filters == 256
    for name, stride in [("conv_c3_3x3", 1), ("conv_c4_3x3", 1), ("conv_c5_3x3", 1), ("conv_c6_3x3", 2), ("conv_c7_3x3", 2)]:
        layer = getattr(fpn, name)
        assert isinstance(layer, keras.layers.Conv2D)
        assert (layer.kernel_size, layer.strides, layer.filters) == ((3, 3), (stride, stride), 256), name
    assert isinstance(fpn.upsample_2x, keras.layers.UpSampling2D)


def test_p5_p6_p7_depend_on_c5_only(probe_backbone, rng):
    fpn = FeaturePyramidNetwork(backbone=probe_backbone)
    images = probe_images(rng)
    changed = images.copy()
    changed[..., :2] = rng.normal(0, 1, size=changed[..., :2].shape)  # new C3 and C4, same C5
    c_before, c_after = probe_backbone(images), probe_backbone(changed)
    np.testing.assert_array_equal(np.asarray(c_before[2]), np.asarray(c_after[2]))
    assert not np.allclose(np.asarray(c_before[0]), np.asarray(c_after[0]))
    assert not np.allclose(np.asarray(c_before[1]), np.asarray(c_after[1]))

    before, after = fpn(images), fpn(changed)
    for name, b, a in zip(("P5", "P6", "P7"), before[2:], after[2:]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, err_msg=f"{name} must depend on C5 only")
    for name, b, a in zip(("P3", "P4"), before[:2], after[:2]):
        assert not np.allclose(np.asarray(a), np.asarray(b), atol=1e-3), f"{name} must depend on C3/C4 too"


def test_fpn_levels_recomputed_by_hand(probe_backbone, rng):
    """P5 = 3×3(1×1(C5)); P4 = 3×3(1×1(C4) + up2(1×1(C5))); P6 = 3×3/2(C5); P7 = 3×3/2(ReLU(P6))."""
    fpn = FeaturePyramidNetwork(backbone=probe_backbone)
    images = probe_images(rng, 192, 192)  # P6 3×3 → P7 2×2: an odd size, padded on one side only
    p3, p4, p5, p6, p7 = (np.asarray(level)[0].astype(np.float64) for level in fpn(images))
    c3, c4, c5 = (np.asarray(c)[0] for c in probe_backbone(images))

    def weights(layer):
        return np.asarray(layer.kernel), np.asarray(layer.bias)

    lateral5 = conv2d_same(c5, *weights(fpn.conv_c5_1x1))
    top_down4 = conv2d_same(c4, *weights(fpn.conv_c4_1x1)) + lateral5.repeat(2, axis=0).repeat(2, axis=1)
    top_down3 = conv2d_same(c3, *weights(fpn.conv_c3_1x1)) + top_down4.repeat(2, axis=0).repeat(2, axis=1)
    np.testing.assert_allclose(p5, conv2d_same(lateral5, *weights(fpn.conv_c5_3x3)), atol=1e-3, rtol=1e-4)
    np.testing.assert_allclose(p4, conv2d_same(top_down4, *weights(fpn.conv_c4_3x3)), atol=1e-3, rtol=1e-4)
    np.testing.assert_allclose(p3, conv2d_same(top_down3, *weights(fpn.conv_c3_3x3)), atol=1e-3, rtol=1e-4)
    np.testing.assert_allclose(p6, conv2d_same(c5, *weights(fpn.conv_c6_3x3), stride=2), atol=1e-3, rtol=1e-4)

    assert p6.min() < 0, "the check of ReLU(P6) needs negative values in P6"
    expected_p7 = conv2d_same(np.maximum(p6, 0.0), *weights(fpn.conv_c7_3x3), stride=2)
    np.testing.assert_allclose(p7, expected_p7, atol=1e-3, rtol=1e-4)
    without_relu = conv2d_same(p6, *weights(fpn.conv_c7_3x3), stride=2)
    assert not np.allclose(p7, without_relu, atol=1e-2), "P7 must be computed from ReLU(P6), not P6"
    assert p7.min() < 0, "P7 has no activation of its own, so it takes negative values"


# ---------------------------------------------------------------------------------------------- heads


@pytest.mark.parametrize("output_filters", [36, 90])
def test_build_head_layers(output_filters):
    head = build_head(output_filters)
    assert isinstance(head, keras.Sequential)
    assert tuple(head.inputs[0].shape) == (None, None, None, 256)
    convs = [layer for layer in head.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 5 and len(head.layers) == 5
    for conv in convs[:4]:
        assert (conv.filters, conv.kernel_size, conv.strides, conv.padding) == (256, (3, 3), (1, 1), "same")
        assert conv.get_config()["activation"] == "relu"
    last = convs[-1]
    assert (last.filters, last.kernel_size, last.padding) == (output_filters, (3, 3), "same")
    assert last.get_config()["activation"] == "linear"
    out = head(np.ones((1, 5, 7, 256), np.float32))
    assert tuple(out.shape) == (1, 5, 7, output_filters)


def test_head_initialisation_gaussian_001_and_zero_bias():
    head = build_head(36)
    for conv in head.layers:
        kernel = np.asarray(conv.kernel)
        assert abs(kernel.std() - 0.01) < 0.0005, kernel.std()
        assert abs(kernel.mean()) < 0.0005
        np.testing.assert_array_equal(np.asarray(conv.bias), 0.0)


@pytest.mark.parametrize("output_filters", [0, -9, 2.5, True])
def test_build_head_rejects_nonpositive_filters(output_filters):
    with pytest.raises(ValueError, match="output_filters"):
        build_head(output_filters)


# ---------------------------------------------------------------------------------------------- RetinaNet


@pytest.fixture(scope="module")
def resnet_retinanet(resnet_backbone_any_size):
    """RetinaNet(10) on ResNet50 (random weights) and its output for two random 128×128 images."""
    keras.utils.set_random_seed(0)
    model = RetinaNet(10, backbone=resnet_backbone_any_size)
    images = np.random.default_rng(0).uniform(0, 255, size=(2, 128, 128, 3)).astype(np.float32)
    return model, np.asarray(model(preprocess_images(images)))


def test_retinanet_output_shape_128(resnet_retinanet):
    _, output = resnet_retinanet
    assert output.shape == (2, 3069, 14)  # 341 locations × 9 anchors, 4 deltas + 10 logits


def test_initial_foreground_probability_is_the_prior(resnet_retinanet):
    _, output = resnet_retinanet
    probabilities = 1.0 / (1.0 + np.exp(-output[..., 4:].astype(np.float64)))
    assert abs(probabilities.mean() - 0.01) < 0.003, probabilities.mean()
    assert abs(np.median(output[..., 4:]) - math.log(0.01 / 0.99)) < 0.2  # logits centred on the prior bias
    assert probabilities.max() < 0.05  # no anchor starts out confidently foreground


def test_final_biases_of_the_subnets(resnet_retinanet):
    model, _ = resnet_retinanet
    assert prior_bias() == pytest.approx(-math.log(99), rel=1e-9)
    np.testing.assert_allclose(np.asarray(model.cls_head.layers[-1].bias), -math.log((1 - 0.01) / 0.01), rtol=1e-6)
    assert np.asarray(model.cls_head.layers[-1].bias) == pytest.approx([-4.595] * 90, abs=1e-3)
    np.testing.assert_array_equal(np.asarray(model.box_head.layers[-1].bias), 0.0)
    assert model.box_head.layers[-1].filters == 36
    assert model.num_classes == 10


@pytest.fixture(scope="module")
def tiny_retinanet():
    """RetinaNet(3) on the tiny backbone, for checks that do not depend on its weights."""
    return RetinaNet(3, backbone=make_tiny_backbone())


@pytest.mark.parametrize("height, width", [(96, 160), (64, 64)])
def test_output_matches_the_anchor_count_for_any_size(tiny_retinanet, height, width):
    output = tiny_retinanet(np.zeros((1, height, width, 3), np.float32))
    assert tuple(output.shape) == (1, len(generate_anchors(height, width)), 4 + 3)


def test_channels_of_a_location_map_to_its_nine_anchors_box_deltas_first():
    """Final-conv channel a·4 + j is delta j of anchor a; a·K + k is class k's logit of anchor a."""
    num_classes = 2
    model = RetinaNet(num_classes, backbone=make_tiny_backbone())
    model(np.zeros((1, 64, 64, 3), np.float32))
    box_conv, cls_conv = model.box_head.layers[-1], model.cls_head.layers[-1]
    box_conv.kernel.assign(np.zeros(box_conv.kernel.shape, np.float32))
    cls_conv.kernel.assign(np.zeros(cls_conv.kernel.shape, np.float32))
    box_conv.bias.assign(np.arange(36, dtype=np.float32))
    cls_conv.bias.assign(-np.arange(18, dtype=np.float32) - 100.0)
    output = np.asarray(model(np.zeros((1, 64, 64, 3), np.float32)))[0]
    locations = len(output) // 9
    np.testing.assert_array_equal(output[:, :4], np.tile(np.arange(36).reshape(9, 4), (locations, 1)))
    np.testing.assert_array_equal(output[:, 4:], np.tile(-np.arange(18).reshape(9, 2) - 100.0, (locations, 1)))


@pytest.mark.parametrize("num_classes", [0, -1, 2.5, True, "3"])
def test_retinanet_rejects_bad_num_classes(num_classes):
    with pytest.raises(ValueError, match="num_classes"):
        RetinaNet(num_classes, backbone=make_tiny_backbone())


@pytest.mark.parametrize(
    "shape, message",
    [((1, 128, 128, 4), "3\\)"), ((1, 128, 128, 1), "3\\)"), ((128, 128, 3), "batch"), ((1, 100, 128, 3), "multiples of 32"),
     ((1, 128, 48, 3), "multiples of 32")],
)
def test_retinanet_rejects_bad_images(tiny_retinanet, shape, message):
    with pytest.raises(ValueError, match=message):
        tiny_retinanet(np.zeros(shape, np.float32))
