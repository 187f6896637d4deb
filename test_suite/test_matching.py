"""Target assignment on hand-made cases (Lin et al., Sec. 4, "Anchors"): IoU ≥ 0.5 positive, < 0.4
background, in between ignored; every ground-truth box also gets its best anchor."""

import numpy as np
import pytest

from retinanet._tf import tf
from retinanet.anchors import generate_anchors
from retinanet.boxes import decode
from retinanet.matching import BACKGROUND, IGNORE, assign_targets, match_anchors

# One 10×10 object of class 3 at the origin, and one small 4×4 object of class 1 far away. The anchors
# share the object's top-left corner and grow downwards, so their IoUs are 100 / (anchor area).
GT_BOXES = np.array([[0, 0, 10, 10], [100, 100, 104, 104]], np.float32)
GT_CLASSES = np.array([3, 1])
ANCHORS = np.array(
    [
        [0, 0, 10, 10],      # 0: IoU 1.0 with object 0          → positive, class 3
        [0, 0, 10, 16],      # 1: IoU 100/160 = 0.625            → positive, class 3
        [0, 0, 10, 20],      # 2: IoU 100/200 = 0.5 exactly      → positive (≥ 0.5)
        [0, 0, 10, 22],      # 3: IoU 100/220 ≈ 0.455            → ignored
        [0, 0, 10, 25],      # 4: IoU 100/250 = 0.4 exactly      → ignored ([0.4, 0.5))
        [0, 0, 10, 30],      # 5: IoU 100/300 ≈ 0.333            → background
        [50, 50, 60, 60],    # 6: IoU 0                          → background
        [100, 100, 110, 110],  # 7: IoU 16/100 = 0.16 with object 1, its best anchor → positive, class 1
        [98, 98, 112, 112],  # 8: IoU 16/196 ≈ 0.08 with object 1 → background
    ],
    np.float32,
)
EXPECTED_LABELS = [3, 3, 3, IGNORE, IGNORE, BACKGROUND, BACKGROUND, 1, BACKGROUND]


def test_hand_made_case_labels():
    targets = assign_targets(ANCHORS, GT_BOXES, GT_CLASSES).numpy()
    assert targets.shape == (len(ANCHORS), 5)
    np.testing.assert_array_equal(targets[:, 4], EXPECTED_LABELS)


def test_hand_made_case_masks_and_matched_boxes():
    matched, positive, ignored = (t.numpy() for t in match_anchors(ANCHORS, GT_BOXES))
    np.testing.assert_array_equal(positive, [1, 1, 1, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(ignored, [0, 0, 0, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(matched[positive], [0, 0, 0, 1])


def test_box_targets_of_positives_decode_to_their_ground_truth_box():
    targets = assign_targets(ANCHORS, GT_BOXES, GT_CLASSES).numpy()
    decoded = decode(ANCHORS, targets[:, :4]).numpy()
    for anchor, gt_index in zip([0, 1, 2, 7], [0, 0, 0, 1]):
        np.testing.assert_allclose(decoded[anchor], GT_BOXES[gt_index], atol=1e-4)
    # Hand value: anchor 1 (centre (5, 8), 10×16) to object 0 (centre (5, 5), 10×10).
    np.testing.assert_allclose(targets[1, :4], [0, (5 - 8) / 16 / 0.1, 0, np.log(10 / 16) / 0.2], atol=1e-5)
    # Non-positive anchors carry zero box targets.
    np.testing.assert_array_equal(targets[[3, 4, 5, 6, 8], :4], 0.0)


def test_a_best_anchor_in_the_ignore_band_becomes_positive():
    """An object whose best IoU is 0.455 (ignore band) still gets that anchor as positive, not ignored."""
    anchors = np.array([[0, 0, 10, 22], [0, 0, 10, 30], [40, 40, 50, 50]], np.float32)
    targets = assign_targets(anchors, [[0, 0, 10, 10]], [7]).numpy()
    np.testing.assert_array_equal(targets[:, 4], [7, BACKGROUND, BACKGROUND])


def test_an_anchor_is_labelled_with_the_class_of_the_box_it_overlaps_most():
    anchors = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32)
    gt_boxes = np.array([[1, 0, 11, 10], [19, 0, 29, 10]], np.float32)
    targets = assign_targets(anchors, gt_boxes, [5, 2]).numpy()
    np.testing.assert_array_equal(targets[:, 4], [5, 2])


@pytest.mark.parametrize("empty_classes", [np.zeros((0,), np.int64), np.zeros((0,), np.float32)])
def test_image_without_objects_is_all_background(empty_classes):
    anchors = generate_anchors(128, 128)
    targets = assign_targets(anchors, np.zeros((0, 4), np.float32), empty_classes).numpy()
    assert targets.shape == (3069, 5)
    assert np.isfinite(targets).all()
    np.testing.assert_array_equal(targets[:, 4], BACKGROUND)
    np.testing.assert_array_equal(targets[:, :4], 0.0)


def test_real_anchor_grid_object_equal_to_an_anchor():
    anchors = generate_anchors(128, 128)
    index = 16 * 16 * 9 + (3 * 8 + 5) * 9 + 4  # P4, row 3, column 5, square anchor of scale 2^(1/3)
    targets = assign_targets(anchors, anchors[index : index + 1], [2]).numpy()
    assert targets[index, 4] == 2
    np.testing.assert_allclose(targets[index, :4], 0.0, atol=1e-5)
    assert np.isfinite(targets).all()
    assert set(np.unique(targets[:, 4])) <= {2.0, BACKGROUND, IGNORE}


def test_works_in_a_tf_data_graph():
    anchors = generate_anchors(128, 128)
    boxes = [np.array([[10, 20, 60, 90]], np.float32), np.zeros((0, 4), np.float32)]
    classes = [np.array([4], np.int32), np.zeros((0,), np.int32)]
    dataset = tf.data.Dataset.from_generator(
        lambda: zip(boxes, classes),
        output_signature=(tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None], tf.int32)),
    ).map(lambda b, c: assign_targets(anchors, b, c))
    results = list(dataset)
    assert len(results) == 2
    for graph_targets, b, c in zip(results, boxes, classes):
        np.testing.assert_allclose(graph_targets.numpy(), assign_targets(anchors, b, c).numpy(), atol=1e-6)


def test_bad_ground_truth_is_rejected():
    with pytest.raises(ValueError, match="negative width or height"):
        assign_targets(ANCHORS, [[10, 10, 5, 20]], [0])
    with pytest.raises(ValueError, match="one class per box"):
        assign_targets(ANCHORS, GT_BOXES, [3])
    with pytest.raises(ValueError, match="4"):
        assign_targets(ANCHORS, [[1, 2, 3]], [0])
