"""``InferenceModel.detect``: on JAX one jitted pure function of the weights (nothing donated or assigned
back, one transfer of the result); its detections are those of Keras's ``predict_on_batch``, also after the
weights change."""

import numpy as np
import pytest

from conftest import make_tiny_backbone
from retinanet import RetinaNet
from retinanet.detector import Detector, InferenceModel

pytestmark = pytest.mark.backends("tensorflow", "jax")


def test_detect_equals_predict_on_batch_and_follows_the_weights():
    detector = Detector(RetinaNet(3, backbone=make_tiny_backbone(), channels=16), 64)
    detector.build_for_input()
    inference = InferenceModel(detector)
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    prior = detector.retinanet.cls_head.layers[-1].bias  # scores near 0.5: every candidate reaches NMS
    prior.assign(np.zeros(prior.shape, np.float32))
    scores = []
    for _ in range(2):
        found, expected = inference.detect(images), inference.predict_on_batch(images)
        assert set(found) == {"boxes", "scores", "classes", "num_detections"}
        for name in expected:
            assert isinstance(found[name], np.ndarray)
            np.testing.assert_array_equal(found[name], expected[name])
        assert found["num_detections"].min() > 0
        scores.append(found["scores"])  # then new weights, which the compiled function must see
        prior.assign(np.full(prior.shape, 1.0, np.float32))
    assert not np.array_equal(scores[0], scores[1])
