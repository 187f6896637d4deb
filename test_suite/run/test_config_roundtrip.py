"""Config and weights round trips of the reference's Keras objects: the FPN, a subnet, RetinaNet and the loss.

``from_config(get_config())`` must rebuild the same network (same layers, same initialisation settings)
and, with the weights copied or saved and loaded, compute the same outputs; a whole RetinaNet saved as a
``.keras`` file loads back without ``custom_objects``.
"""

import numpy as np
import pytest

from retinanet._keras import keras
from retinanet.fpn import FeaturePyramidNetwork
from retinanet.heads import build_head, prior_bias
from retinanet.losses import DetectionLoss
from retinanet.model import RetinaNet

pytestmark = pytest.mark.backends("tensorflow", "jax")


def small_backbone():
    """C3, C4, C5 at strides 8, 16, 32 from standard layers only, so that it serialises."""
    images = keras.Input(shape=(None, None, 3))
    features, x = [], images
    for filters, strides in ((8, 8), (16, 2), (32, 2)):
        x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", activation="relu")(x)
        features.append(x)
    return keras.Model(images, features)


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)


def assert_same_outputs(first, second):
    first, second = keras.tree.flatten(first), keras.tree.flatten(second)
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_fpn_config_round_trip(batch):
    fpn = FeaturePyramidNetwork(backbone=small_backbone(), name="pyramid")
    expected = fpn(batch)
    config = fpn.get_config()
    assert config["name"] == "pyramid" and config["backbone"]["class_name"] == "Functional"
    copy = FeaturePyramidNetwork.from_config(config)
    copy(batch)
    copy.set_weights(fpn.get_weights())
    assert copy.name == "pyramid" and copy.get_config() == config
    assert_same_outputs(expected, copy(batch))


def test_head_config_round_trip_keeps_the_prior_bias():
    head = build_head(18, bias_initializer=keras.initializers.Constant(prior_bias()))
    copy = keras.Sequential.from_config(head.get_config())
    assert copy.get_config() == head.get_config()
    np.testing.assert_allclose(np.asarray(copy.layers[-1].bias), prior_bias(), rtol=1e-6)
    copy.set_weights(head.get_weights())
    features = np.random.default_rng(1).normal(size=(1, 5, 4, 256)).astype(np.float32)
    assert_same_outputs(head(features), copy(features))


def test_retinanet_config_is_complete(batch):
    model = RetinaNet(num_classes=3, backbone=small_backbone(), name="detector")
    expected = model(batch)
    config = model.get_config()
    assert {"name", "trainable", "dtype", "num_classes", "backbone"} <= set(config)
    assert config["name"] == "detector" and config["num_classes"] == 3
    copy = RetinaNet.from_config(config)
    copy(batch)
    copy.set_weights(model.get_weights())
    assert copy.name == "detector" and copy.num_classes == 3 and copy.count_params() == model.count_params()
    assert_same_outputs(expected, copy(batch))


def test_retinanet_weights_and_whole_model_round_trip(batch, tmp_path):
    model = RetinaNet(num_classes=3, backbone=small_backbone())
    expected = model(batch)
    model.save_weights(tmp_path / "model.weights.h5")
    other = RetinaNet(num_classes=3, backbone=small_backbone())
    other(batch)
    other.load_weights(tmp_path / "model.weights.h5")
    assert_same_outputs(expected, other(batch))

    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")  # no custom_objects: the classes are registered
    assert isinstance(loaded, RetinaNet) and loaded.num_classes == 3
    assert_same_outputs(expected, loaded(batch))


def test_loss_config_round_trip():
    loss = DetectionLoss(num_classes=3, alpha=0.5, gamma=1.0)
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(copy, DetectionLoss) and copy.get_config() == loss.get_config()
    rng = np.random.default_rng(2)
    labels = rng.integers(-2, 3, size=(2, 30, 1)).astype(np.float32)
    targets = np.concatenate([rng.normal(size=(2, 30, 4)).astype(np.float32), labels], axis=-1)
    predictions = rng.normal(size=(2, 30, 7)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loss(targets, predictions)), np.asarray(copy(targets, predictions)),
                               rtol=1e-6)
