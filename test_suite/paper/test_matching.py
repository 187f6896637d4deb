"""Target assignment on hand-made cases (Lin et al., Sec. 4, "Anchors"): IoU ≥ 0.5 positive, < 0.4
background, in between ignored; every ground-truth box also makes its best anchors positive (ties
included), and every anchor regresses to its own best box (Detectron, torchvision). Fixed shapes: padded
ground truth with a validity mask, inside a compiled function, on every backend."""

import numpy as np
import pytest

from backend_tools import compiled
from retinanet.boxes import iou
from retinanet.anchors import generate_anchors
from retinanet.boxes import decode
from retinanet.matching import BACKGROUND, IGNORE, assign_targets, match_anchors

pytestmark = pytest.mark.backends("tensorflow", "jax")

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
    targets = np.asarray(assign_targets(ANCHORS, GT_BOXES, GT_CLASSES))
    assert targets.shape == (len(ANCHORS), 5)
    np.testing.assert_array_equal(targets[:, 4], EXPECTED_LABELS)


def test_hand_made_case_masks_and_matched_boxes():
    matched, positive, ignored = (np.asarray(t) for t in match_anchors(ANCHORS, GT_BOXES))
    np.testing.assert_array_equal(positive, [1, 1, 1, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(ignored, [0, 0, 0, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(matched[positive], [0, 0, 0, 1])


def test_box_targets_of_positives_decode_to_their_ground_truth_box():
    targets = np.asarray(assign_targets(ANCHORS, GT_BOXES, GT_CLASSES))
    decoded = np.asarray(decode(ANCHORS, targets[:, :4]))
    for anchor, gt_index in zip([0, 1, 2, 7], [0, 0, 0, 1]):
        np.testing.assert_allclose(decoded[anchor], GT_BOXES[gt_index], atol=1e-4)
    # Hand value: anchor 1 (centre (5, 8), 10×16) to object 0 (centre (5, 5), 10×10).
    np.testing.assert_allclose(targets[1, :4], [0, (5 - 8) / 16 / 0.1, 0, np.log(10 / 16) / 0.2], atol=1e-5)
    # Non-positive anchors carry zero box targets.
    np.testing.assert_array_equal(targets[[3, 4, 5, 6, 8], :4], 0.0)


def test_a_best_anchor_in_the_ignore_band_becomes_positive():
    """An object whose best IoU is 0.455 (ignore band) still gets that anchor as positive, not ignored."""
    anchors = np.array([[0, 0, 10, 22], [0, 0, 10, 30], [40, 40, 50, 50]], np.float32)
    targets = np.asarray(assign_targets(anchors, [[0, 0, 10, 10]], [7]))
    np.testing.assert_array_equal(targets[:, 4], [7, BACKGROUND, BACKGROUND])


def test_an_anchor_is_labelled_with_the_class_of_the_box_it_overlaps_most():
    anchors = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32)
    gt_boxes = np.array([[1, 0, 11, 10], [19, 0, 29, 10]], np.float32)
    targets = np.asarray(assign_targets(anchors, gt_boxes, [5, 2]))
    np.testing.assert_array_equal(targets[:, 4], [5, 2])


@pytest.mark.parametrize("empty_classes", [np.zeros((0,), np.int64), np.zeros((0,), np.float32)])
def test_image_without_objects_is_all_background(empty_classes):
    anchors = generate_anchors(128, 128)
    targets = np.asarray(assign_targets(anchors, np.zeros((0, 4), np.float32), empty_classes))
    assert targets.shape == (3069, 5)
    assert np.isfinite(targets).all()
    np.testing.assert_array_equal(targets[:, 4], BACKGROUND)
    np.testing.assert_array_equal(targets[:, :4], 0.0)


def test_real_anchor_grid_object_equal_to_an_anchor():
    anchors = generate_anchors(128, 128)
    index = 16 * 16 * 9 + (3 * 8 + 5) * 9 + 4  # P4, row 3, column 5, square anchor of scale 2^(1/3)
    targets = np.asarray(assign_targets(anchors, anchors[index : index + 1], [2]))
    assert targets[index, 4] == 2
    np.testing.assert_allclose(targets[index, :4], 0.0, atol=1e-5)
    assert np.isfinite(targets).all()
    assert set(np.unique(targets[:, 4])) <= {2.0, BACKGROUND, IGNORE}


def pad(boxes, classes, rows):
    """Ground truth padded to ``rows`` rows (padding class −1), and its validity mask."""
    padded_boxes = np.zeros((rows, 4), np.float32)
    padded_classes = np.full((rows,), -1, np.int32)
    padded_boxes[: len(boxes)], padded_classes[: len(classes)] = boxes, classes
    return padded_boxes, padded_classes, padded_classes >= 0


def test_padded_batch_in_a_compiled_function_equals_each_image_alone():
    """Images with 1, 0 and 3 objects padded to 4 rows, assigned in one compiled call."""
    anchors = generate_anchors(128, 128)
    images = [
        (np.array([[10, 20, 60, 90]], np.float32), np.array([4])),
        (np.zeros((0, 4), np.float32), np.zeros((0,), np.int32)),
        (np.array([[0, 0, 30, 30], [40, 40, 120, 100], [5, 70, 25, 120]], np.float32), np.array([0, 2, 1])),
    ]
    padded = [pad(boxes, classes, 4) for boxes, classes in images]
    boxes, classes, valid = (np.stack(parts) for parts in zip(*padded))
    batched = np.asarray(compiled(lambda b, c, v: assign_targets(anchors, b, c, gt_valid=v))(boxes, classes, valid))
    assert batched.shape == (3, len(anchors), 5)
    for image_targets, (image_boxes, image_classes) in zip(batched, images):
        np.testing.assert_allclose(image_targets, np.asarray(assign_targets(anchors, image_boxes, image_classes)), atol=1e-5)
    np.testing.assert_array_equal(batched[1, :, 4], BACKGROUND)


def test_padding_rows_never_match():
    """A padding row that happens to hold a real-looking box is ignored because it is not valid."""
    anchors = generate_anchors(128, 128)
    boxes = np.array([[10, 20, 60, 90], [0, 0, 64, 64]], np.float32)
    targets = np.asarray(assign_targets(anchors, boxes, [1, 3], gt_valid=[True, False]))
    alone = np.asarray(assign_targets(anchors, boxes[:1], [1]))
    np.testing.assert_allclose(targets, alone, atol=1e-6)
    assert 3 not in targets[:, 4]


def test_every_anchor_tying_for_a_boxs_best_iou_is_positive():
    """A 4×4 box inside two identical-size anchors has IoU 16/100 with both: both become positive."""
    anchors = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [20, 20, 30, 30]], np.float32)
    _, positive, ignored = (np.asarray(t) for t in match_anchors(anchors, [[3, 3, 7, 7]]))
    np.testing.assert_array_equal(positive, [True, True, False])
    np.testing.assert_array_equal(ignored, [False, False, False])


def test_a_forced_anchor_regresses_to_its_own_best_box():
    """Anchor 0 is box B's best anchor (IoU 0.3) but overlaps box A more (IoU 0.45): it becomes positive
    (B's best) and learns box A, the argmax of its own row — not B (the SSD-style rule)."""
    anchors = np.array([[0, 0, 10, 10], [0, 0, 10, 4.5], [50, 50, 60, 60]], np.float32)
    box_a = [0, 0, 10, 4.5]   # IoU 0.45 with anchor 0, 1.0 with anchor 1
    box_b = [0, 7, 10, 10]    # IoU 0.3 with anchor 0, 0 with anchor 1: anchor 0 is its best
    overlaps = np.asarray(iou(anchors, [box_a, box_b]))
    np.testing.assert_allclose(overlaps[0], [0.45, 0.3], atol=1e-6)
    matched, positive, _ = (np.asarray(t) for t in match_anchors(anchors, [box_a, box_b]))
    assert positive[0] and matched[0] == 0
    targets = np.asarray(assign_targets(anchors, [box_a, box_b], [5, 6]))
    assert targets[0, 4] == 5
    np.testing.assert_allclose(np.asarray(decode(anchors[:1], targets[:1, :4]))[0], box_a, atol=1e-4)


def test_a_box_overlapping_no_anchor_claims_none():
    anchors = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32)
    _, positive, ignored = (np.asarray(t) for t in match_anchors(anchors, [[50, 50, 60, 60]]))
    assert not positive.any() and not ignored.any()


def numpy_matching(anchors, gt_boxes, positive_iou=0.5, negative_iou=0.4):
    """The rule written out in NumPy, box by box."""
    overlaps = np.asarray(iou(anchors, gt_boxes)) if len(gt_boxes) else np.zeros((len(anchors), 0))
    best = overlaps.max(axis=1) if len(gt_boxes) else np.full(len(anchors), -1.0)
    matched = overlaps.argmax(axis=1) if len(gt_boxes) else np.zeros(len(anchors), int)
    positive = best >= positive_iou
    ignored = (best >= negative_iou) & ~positive
    for column in overlaps.T:
        if column.max() > 0:
            forced = column == column.max()
            positive |= forced
            ignored &= ~forced
    return matched, positive, ignored


@pytest.mark.parametrize("seed", range(4))
def test_random_scenes_follow_the_rule(seed):
    rng = np.random.default_rng(seed)
    anchors = generate_anchors(128, 128)
    corners = rng.uniform(0, 110, (seed * 3 + 1, 2))
    boxes = np.concatenate([corners, np.minimum(corners + rng.uniform(3, 70, corners.shape), 128)], axis=1)
    found = [np.asarray(t) for t in match_anchors(anchors, boxes.astype(np.float32))]
    for got, expected in zip(found, numpy_matching(anchors, boxes.astype(np.float32))):
        np.testing.assert_array_equal(got, expected)


def test_bad_ground_truth_is_rejected():
    with pytest.raises(ValueError, match="negative width or height"):
        assign_targets(ANCHORS, [[10, 10, 5, 20]], [0])
    with pytest.raises(ValueError, match="one class per box"):
        assign_targets(ANCHORS, GT_BOXES, [3])
    with pytest.raises(ValueError, match="4"):
        assign_targets(ANCHORS, [[1, 2, 3]], [0])
