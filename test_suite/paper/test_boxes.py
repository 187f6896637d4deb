"""IoU and the anchor-relative box coding, against values computed by hand."""

import math

import numpy as np
import pytest

from retinanet.boxes import decode, encode, iou

pytestmark = pytest.mark.backends("tensorflow", "jax")


@pytest.mark.parametrize(
    "box_a, box_b, expected",
    [
        ([0, 0, 10, 10], [5, 5, 15, 15], 25 / 175),       # partial overlap: 5×5 of 100 + 100 − 25
        ([0, 0, 10, 10], [2, 2, 4, 4], 4 / 100),          # containment
        ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),          # disjoint
        ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),           # touching edges
        ([0, 0, 10, 10], [10, 10, 20, 20], 0.0),          # touching corners
        ([1, 2, 7, 9], [1, 2, 7, 9], 1.0),                # identical
        ([0, 0, 10, 20], [0, 5, 10, 25], 150 / 250),      # overlap in one direction only
        ([3, 3, 3, 3], [3, 3, 3, 3], 0.0),                # two empty boxes
        ([3, 3, 3, 3], [0, 0, 10, 10], 0.0),              # an empty box inside a real one
    ],
)
def test_iou_of_hand_made_boxes(box_a, box_b, expected):
    result = np.asarray(iou([box_a], [box_b]))
    assert result.shape == (1, 1)
    assert result[0, 0] == pytest.approx(expected, abs=1e-6)
    assert np.asarray(iou([box_b], [box_a]))[0, 0] == pytest.approx(expected, abs=1e-6)


def test_iou_is_pairwise_n_by_m():
    boxes_a = [[0, 0, 10, 10], [5, 5, 15, 15], [100, 100, 110, 110]]
    boxes_b = [[0, 0, 10, 10], [0, 0, 5, 5], [5, 5, 15, 15], [0, 0, 20, 20]]
    expected = [
        [1.0, 25 / 100, 25 / 175, 100 / 400],
        [25 / 175, 0.0, 1.0, 100 / 400],
        [0.0, 0.0, 0.0, 0.0],
    ]
    result = np.asarray(iou(boxes_a, boxes_b))
    assert result.shape == (3, 4)
    np.testing.assert_allclose(result, expected, atol=1e-6)
    assert iou(boxes_a, np.zeros((0, 4))).shape == (3, 0)


def test_encode_hand_computed_example():
    # Anchor: centre (5, 10), 10 × 20. Box: centre (12, 14), 20 × 20. Variances 0.1, 0.1, 0.2, 0.2.
    deltas = np.asarray(encode([[0, 0, 10, 20]], [[2, 4, 22, 24]]))[0]
    expected = [(12 - 5) / 10 / 0.1, (14 - 10) / 20 / 0.1, math.log(20 / 10) / 0.2, math.log(20 / 20) / 0.2]
    np.testing.assert_allclose(deltas, expected, rtol=1e-5, atol=1e-6)


def test_decode_hand_computed_example():
    # Zero deltas give the anchor back; dx = 1 moves the centre by 0.1 · width; dw = 1 scales by e^0.2.
    anchors = [[0, 0, 10, 20], [0, 0, 10, 20]]
    boxes = np.asarray(decode(anchors, [[0, 0, 0, 0], [1, 0, 1, 0]]))
    np.testing.assert_allclose(boxes[0], [0, 0, 10, 20], atol=1e-5)
    half_width = 5 * math.exp(0.2)
    np.testing.assert_allclose(boxes[1], [6 - half_width, 0, 6 + half_width, 20], atol=1e-4)


def test_decode_inverts_encode_on_random_boxes(rng):
    def random_boxes(count):
        corner = rng.uniform(0, 500, size=(count, 2))
        size = rng.uniform(8, 300, size=(count, 2))  # size ratios within decode's clamp (62.5×)
        return np.concatenate([corner, corner + size], axis=1).astype(np.float32)

    anchors, boxes = random_boxes(1000), random_boxes(1000)
    np.testing.assert_allclose(np.asarray(decode(anchors, encode(anchors, boxes))), boxes, atol=1e-3, rtol=1e-4)
    # also with a batch axis, the way the model's output is decoded
    batched = np.asarray(decode(anchors[None], encode(anchors[None], boxes[None])))
    np.testing.assert_allclose(batched[0], boxes, atol=1e-3, rtol=1e-4)


def test_decode_stays_finite_for_huge_size_deltas():
    boxes = np.asarray(decode([[0, 0, 10, 10]], [[0, 0, 1e4, 1e4]]))
    assert np.isfinite(boxes).all()


def test_wrong_last_dimension_is_rejected():
    with pytest.raises(ValueError, match="4"):
        iou([[0, 0, 1]], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="4"):
        encode([[0, 0, 1, 1, 0]], [[0, 0, 1, 1, 0]])
    with pytest.raises(ValueError, match="4"):
        decode([[0, 0, 1, 1]], [[0, 0, 1]])


@pytest.mark.parametrize("bad_box", [[10, 0, 5, 10], [0, 10, 10, 5]])
def test_negative_width_or_height_is_rejected(bad_box):
    with pytest.raises(ValueError, match="negative"):
        iou([bad_box], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="negative"):
        encode([[0, 0, 10, 10]], [bad_box])
    with pytest.raises(ValueError, match="negative"):
        decode([bad_box], [[0, 0, 0, 0]])
