"""Inference decoding on hand-built predictions (Lin et al., Sec. 4.1, "Inference"): score threshold 0.05,
top-k candidates per level, class-wise NMS at IoU 0.5, at most 100 detections, boxes inside the image.

Every test runs with each NMS implementation of the backend: the keras.ops one everywhere, and
TensorFlow's ``combined_non_max_suppression`` on TensorFlow."""

import math

import numpy as np
import pytest

from retinanet._keras import BACKEND
from retinanet.anchors import anchors_per_level, generate_anchors
from retinanet.boxes import encode
from retinanet.postprocess import decode_detections

pytestmark = pytest.mark.backends("tensorflow", "jax")

SIZE = 128
NUM_CLASSES = 3
ANCHORS = generate_anchors(SIZE, SIZE)
LEVEL_STARTS = np.cumsum([0] + anchors_per_level(SIZE, SIZE))  # P3 … P7 blocks of the anchor list


NMS = {"name": None}


@pytest.fixture(autouse=True, params=["keras", "tensorflow"] if BACKEND == "tensorflow" else ["keras"])
def nms(request):
    """The NMS implementation every decode of the current test uses."""
    NMS["name"] = request.param
    return request.param


def decode(array, height=SIZE, width=SIZE, **kwargs):
    return decode_detections(array, height, width, nms=NMS["name"], **kwargs)


def logit(probability):
    return math.log(probability / (1 - probability))


class Predictions:
    """A model output for 128×128 images where every anchor scores ≈ 0 unless told otherwise."""

    def __init__(self, batch=1):
        self.array = np.zeros((batch, len(ANCHORS), 4 + NUM_CLASSES), np.float32)
        self.array[..., 4:] = -12.0  # sigmoid ≈ 6e-6

    def put(self, anchor, box, class_id, score, image=0):
        """Make ``anchor`` predict ``box`` of ``class_id`` with probability ``score``."""
        self.array[image, anchor, :4] = np.asarray(encode(ANCHORS[anchor : anchor + 1], np.array([box], np.float32)))[0]
        self.array[image, anchor, 4 + class_id] = logit(score)
        return self


def detections_of(predictions, image=0, **kwargs):
    result = decode(predictions.array, **kwargs)
    n = int(result.num_detections[image])
    return np.asarray(result.boxes[image, :n]), np.asarray(result.scores[image, :n]), np.asarray(result.classes[image, :n])


def test_hand_built_predictions_give_the_right_boxes_classes_and_scores():
    predictions = Predictions(batch=2)
    predictions.put(100, [10, 20, 50, 60], class_id=2, score=0.9)                  # a P3 anchor
    predictions.put(LEVEL_STARTS[1] + 40, [70, 64, 120, 110], class_id=0, score=0.7)  # a P4 anchor
    predictions.put(LEVEL_STARTS[2] + 7, [30, 30, 100, 90], class_id=1, score=0.8, image=1)
    boxes, scores, classes = detections_of(predictions)
    np.testing.assert_allclose(boxes, [[10, 20, 50, 60], [70, 64, 120, 110]], atol=1e-3)
    np.testing.assert_allclose(scores, [0.9, 0.7], atol=1e-5)
    np.testing.assert_array_equal(classes, [2, 0])
    boxes, scores, classes = detections_of(predictions, image=1)
    np.testing.assert_allclose(boxes, [[30, 30, 100, 90]], atol=1e-3)
    np.testing.assert_allclose(scores, [0.8], atol=1e-5)
    np.testing.assert_array_equal(classes, [1])


def test_overlapping_boxes_of_the_same_class_are_suppressed():
    predictions = Predictions()
    predictions.put(100, [10, 10, 50, 50], class_id=1, score=0.9)
    predictions.put(101, [12, 12, 52, 52], class_id=1, score=0.8)  # IoU ≈ 0.82 with the first
    boxes, scores, classes = detections_of(predictions)
    np.testing.assert_allclose(boxes, [[10, 10, 50, 50]], atol=1e-3)
    np.testing.assert_allclose(scores, [0.9], atol=1e-5)


def test_overlapping_boxes_of_different_classes_are_both_kept():
    predictions = Predictions()
    predictions.put(100, [10, 10, 50, 50], class_id=1, score=0.9)
    predictions.put(101, [12, 12, 52, 52], class_id=2, score=0.8)
    boxes, scores, classes = detections_of(predictions)
    np.testing.assert_allclose(boxes, [[10, 10, 50, 50], [12, 12, 52, 52]], atol=1e-3)
    np.testing.assert_array_equal(classes, [1, 2])


def test_one_anchor_can_detect_two_classes():
    predictions = Predictions()
    predictions.put(100, [10, 10, 50, 50], class_id=0, score=0.9)
    predictions.array[0, 100, 4 + 2] = logit(0.6)
    _, scores, classes = detections_of(predictions)
    np.testing.assert_allclose(scores, [0.9, 0.6], atol=1e-5)
    np.testing.assert_array_equal(classes, [0, 2])


@pytest.mark.parametrize("second_box, kept", [([10, 25, 50, 65], 2), ([10, 15, 50, 55], 1)])
def test_nms_threshold_is_iou_half(second_box, kept):
    # Same class, shifted down: IoU 15·40/(3200 − 600) ≈ 0.23 (kept) or 35·40/(3200 − 1400) ≈ 0.78 (suppressed).
    predictions = Predictions()
    predictions.put(100, [10, 10, 50, 50], class_id=0, score=0.9)
    predictions.put(101, second_box, class_id=0, score=0.8)
    assert len(detections_of(predictions)[0]) == kept


def test_scores_below_the_threshold_are_dropped():
    predictions = Predictions()
    predictions.put(100, [10, 10, 30, 30], class_id=0, score=0.06)
    predictions.put(500, [70, 70, 90, 90], class_id=0, score=0.04)
    boxes, scores, _ = detections_of(predictions)
    np.testing.assert_allclose(boxes, [[10, 10, 30, 30]], atol=1e-3)
    np.testing.assert_allclose(scores, [0.06], atol=1e-5)
    assert len(detections_of(predictions, score_threshold=0.5)[0]) == 0


def disjoint_boxes(count):
    """``count`` 8×8 boxes on a 10-pixel grid: no two overlap."""
    cells = [(x, y) for y in range(0, 120, 10) for x in range(0, 120, 10)][:count]
    return [[x, y, x + 8, y + 8] for x, y in cells]


def test_at_most_100_detections_the_best_ones():
    predictions = Predictions()
    scores = np.linspace(0.2, 0.95, 140)
    for anchor, box, score in zip(range(0, 2 * 140, 2), disjoint_boxes(140), scores):
        predictions.put(anchor, box, class_id=anchor % NUM_CLASSES, score=score)
    result = decode(predictions.array)
    assert result.boxes.shape == (1, 100, 4)
    assert int(result.num_detections[0]) == 100
    np.testing.assert_allclose(np.sort(np.asarray(result.scores[0])), scores[-100:], atol=1e-5)


def test_top_k_per_level_is_honoured():
    predictions = Predictions()
    boxes = disjoint_boxes(6)
    for anchor, box, score in zip(range(0, 50, 10), boxes[:5], [0.9, 0.8, 0.7, 0.6, 0.5]):  # five on P3
        predictions.put(anchor, box, class_id=0, score=score)
    predictions.put(LEVEL_STARTS[1] + 3, boxes[5], class_id=0, score=0.3)  # one on P4
    assert len(detections_of(predictions)[0]) == 6
    _, scores, _ = detections_of(predictions, top_k_per_level=2)
    np.testing.assert_allclose(scores, [0.9, 0.8, 0.3], atol=1e-5)  # the best two of P3, the one of P4


def test_boxes_are_clipped_to_the_image():
    predictions = Predictions()
    predictions.put(LEVEL_STARTS[2] + 20, [-20, -10, 60, 150], class_id=1, score=0.9)
    predictions.put(LEVEL_STARTS[3], [100, 90, 140, 135], class_id=2, score=0.8)
    boxes, _, _ = detections_of(predictions)
    np.testing.assert_allclose(boxes, [[0, 0, 60, 128], [100, 90, 128, 128]], atol=1e-3)


def test_nms_compares_the_clipped_boxes_it_reports():
    # Unclipped, [-60, 10, 40, 50] overlaps [0, 10, 40, 50] with IoU 0.4; clipped to the image they coincide.
    predictions = Predictions()
    predictions.put(LEVEL_STARTS[1], [-60, 10, 40, 50], class_id=0, score=0.9)
    predictions.put(LEVEL_STARTS[1] + 9, [0, 10, 40, 50], class_id=0, score=0.8)
    boxes, scores, _ = detections_of(predictions)
    np.testing.assert_allclose(boxes, [[0, 10, 40, 50]], atol=1e-3)
    np.testing.assert_allclose(scores, [0.9], atol=1e-5)


def test_image_without_confident_anchors_has_no_detections():
    result = decode(Predictions(batch=2).array)
    np.testing.assert_array_equal(np.asarray(result.num_detections), [0, 0])


@pytest.mark.parametrize("shape", [(len(ANCHORS), 7), (1, len(ANCHORS), 4), (1, 1, len(ANCHORS), 7)])
def test_wrong_prediction_shapes_are_rejected(shape):
    with pytest.raises(ValueError, match="4 \\+ K"):
        decode(np.zeros(shape, np.float32))


def test_anchor_count_mismatch_is_rejected():
    with pytest.raises(ValueError, match="3069 anchors"):
        decode(np.zeros((1, len(ANCHORS), 7), np.float32), 256, 256)
