"""The keras.ops class-wise NMS against greedy NMS written out in NumPy, on dense random scenes and inside
compiled functions (its agreement with TensorFlow's NMS is in test_tensorflow_edges.py)."""

import numpy as np
import pytest

from backend_tools import compiled
from retinanet._keras import ops
from retinanet.nms import class_wise_nms

pytestmark = pytest.mark.backends("tensorflow", "jax")


def numpy_iou(box, boxes):
    top_left = np.maximum(box[:2], boxes[:, :2])
    bottom_right = np.minimum(box[2:], boxes[:, 2:])
    intersection = np.prod(np.maximum(bottom_right - top_left, 0.0), axis=1)
    union = np.prod(box[2:] - box[:2]) + np.prod(boxes[:, 2:] - boxes[:, :2], axis=1) - intersection
    return np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)


def greedy_nms(boxes, scores, classes, iou_threshold, score_threshold, max_detections):
    """Textbook greedy NMS per class: best first, drop what overlaps a kept box of its class."""
    kept = []
    for index in np.argsort(-scores, kind="stable"):
        if scores[index] <= score_threshold:
            break
        same_class = [k for k in kept if classes[k] == classes[index]]
        if same_class and (numpy_iou(boxes[index], boxes[same_class]) > iou_threshold).any():
            continue
        kept.append(index)
    return kept[:max_detections]


def random_scene(rng, count, num_classes, size=200.0):
    """Clusters of overlapping boxes, so that suppression chains (a suppresses b, which would suppress c) occur."""
    centres = rng.uniform(20, size - 20, (count // 8 + 1, 2))[rng.integers(0, count // 8 + 1, count)]
    centres += rng.normal(0, 6, (count, 2))
    sizes = rng.uniform(10, 60, (count, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1).astype(np.float32)
    return boxes, rng.uniform(0, 1, count).astype(np.float32), rng.integers(0, num_classes, count).astype(np.int32)


@pytest.mark.parametrize("seed", range(6))
def test_equals_greedy_nms(seed):
    rng = np.random.default_rng(seed)
    batch = [random_scene(rng, 300, num_classes=1 + seed % 3) for _ in range(2)]
    boxes, scores, classes = (np.stack(parts) for parts in zip(*batch))
    found = [ops.convert_to_numpy(t) for t in class_wise_nms(boxes, scores, classes, 0.5, 0.05, 100)]
    for image in range(2):
        kept = greedy_nms(boxes[image], scores[image], classes[image], 0.5, 0.05, 100)
        assert found[3][image] == len(kept)
        np.testing.assert_allclose(found[0][image, : len(kept)], boxes[image][kept])
        np.testing.assert_allclose(found[1][image, : len(kept)], scores[image][kept])
        np.testing.assert_array_equal(found[2][image, : len(kept)], classes[image][kept])
        assert not found[0][image, len(kept):].any() and not found[1][image, len(kept):].any()


def test_compiled_with_fixed_shapes():
    rng = np.random.default_rng(9)
    boxes, scores, classes = (np.stack(parts) for parts in zip(*[random_scene(rng, 200, 3) for _ in range(3)]))
    nms = compiled(lambda b, s, c: class_wise_nms(b, s, c, 0.5, 0.05, 100))
    out_boxes, out_scores, out_classes, counts = (ops.convert_to_numpy(t) for t in nms(boxes, scores, classes))
    assert out_boxes.shape == (3, 100, 4) and out_scores.shape == out_classes.shape == (3, 100)
    for image in range(3):
        assert counts[image] == len(greedy_nms(boxes[image], scores[image], classes[image], 0.5, 0.05, 100))


def test_fewer_candidates_than_detections_are_padded():
    boxes = np.array([[[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]]], np.float32)
    out_boxes, out_scores, _, counts = (ops.convert_to_numpy(t) for t in
                                        class_wise_nms(boxes, np.array([[0.9, 0.8, 0.7]]), np.zeros((1, 3)), 0.5, 0.05, 5))
    assert counts[0] == 2 and out_boxes.shape == (1, 5, 4)
    np.testing.assert_allclose(out_scores[0], [0.9, 0.7, 0, 0, 0])


def long_chain(length):
    """Boxes sliding one step right each, every one suppressing its neighbour: a chain of ``length`` that the
    rule settles one link per repetition (the alternate boxes are kept)."""
    boxes = np.array([[5.0 * i, 0, 5.0 * i + 30, 30] for i in range(length)], np.float32)  # neighbours IoU 0.71, next 0.5
    return boxes[None], np.linspace(0.9, 0.1, length, dtype=np.float32)[None], np.zeros((1, length), np.int32)


@pytest.mark.parametrize("rounds", [1, 3, 16, 40])
def test_unrolled_rounds_do_not_change_the_result(rounds):
    """Accelerators unroll the first rounds of the rule (no host round trip per loop iteration): the
    detections are those of the plain loop, also when the chain is longer than the unrolled rounds."""
    rng = np.random.default_rng(rounds)
    scenes = [random_scene(rng, 300, 2) for _ in range(2)]
    chain = long_chain(24)
    for boxes, scores, classes in [tuple(np.stack(parts) for parts in zip(*scenes)), chain]:
        plain = [ops.convert_to_numpy(t) for t in class_wise_nms(boxes, scores, classes, 0.5, 0.05, 100, 0)]
        nms = compiled(lambda b, s, c: class_wise_nms(b, s, c, 0.5, 0.05, 100, unrolled_rounds=rounds))
        for expected, found in zip(plain, (ops.convert_to_numpy(t) for t in nms(boxes, scores, classes))):
            np.testing.assert_array_equal(found, expected)
    kept = greedy_nms(chain[0][0], chain[1][0], chain[2][0], 0.5, 0.05, 100)
    assert kept == list(range(0, 24, 2))
