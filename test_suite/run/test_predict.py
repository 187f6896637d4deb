"""Pictures of detections: one box per object (a second guess of another class is left out), every class's
boxes on request, and the score threshold."""

import numpy as np
import pytest

from retinanet.run.predict import DRAW_OVERLAP, draw_detections, one_box_per_object

pytestmark = pytest.mark.backends("tensorflow", "jax")

PIXELS = np.zeros((64, 64, 3), np.uint8)
NAMES = ["ellipse", "rectangle"]


def test_a_second_guess_at_the_same_object_is_left_out():
    boxes = [[10, 10, 40, 40], [11, 10, 41, 40], [0, 0, 8, 8]]  # the first two: one object, IoU ≈ 0.94
    assert one_box_per_object(boxes, [0.6, 0.9, 0.7]) == [1, 2]


def test_objects_that_overlap_less_stay_best_first():
    boxes = np.array([[0, 0, 30, 30], [20, 0, 50, 30]], np.float32)  # IoU = 300 / 1500 = 0.2
    assert one_box_per_object(boxes, [0.5, 0.8]) == [1, 0]
    touching = np.array([[0, 0, 10, 10], [0, 0, 10, 10 * DRAW_OVERLAP]], np.float32)  # IoU exactly DRAW_OVERLAP
    assert one_box_per_object(touching, [0.9, 0.8]) == [0, 1]


def test_all_classes_draws_what_evaluation_scores():
    boxes, scores, classes = np.array([[10, 10, 40, 40], [11, 10, 41, 40]], np.float32), np.array([0.9, 0.6]), [0, 1]
    one = np.asarray(draw_detections(PIXELS, boxes, scores, classes, NAMES))
    every = np.asarray(draw_detections(PIXELS, boxes, scores, classes, NAMES, all_classes=True))
    only_first = np.asarray(draw_detections(PIXELS, boxes[:1], scores[:1], classes[:1], NAMES))
    assert np.array_equal(one, only_first) and not np.array_equal(every, one)


def test_detections_below_the_threshold_are_not_drawn():
    boxes = np.array([[10, 10, 40, 40]], np.float32)
    assert not np.asarray(draw_detections(PIXELS, boxes, [0.3], [0], NAMES, min_score=0.5)).any()
    assert np.asarray(draw_detections(PIXELS, boxes, [0.6], [0], NAMES, min_score=0.5)).any()
