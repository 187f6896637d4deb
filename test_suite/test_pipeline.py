"""The tf.data input pipeline: geometric transforms keep boxes on their objects; targets are the matcher's."""

import numpy as np
import pytest
from PIL import Image

from retinanet._tf import tf
from retinanet.anchors import generate_anchors
from retinanet.boxes import decode
from retinanet.data.coco import ImageRecord
from retinanet.data.pipeline import horizontal_flip, make_dataset, resize_and_pad, scale_jitter
from retinanet.matching import BACKGROUND, assign_targets

RED, GREEN = (255, 0, 0), (0, 255, 0)


def _scene(height=90, width=120):
    """A grey image with a pure red and a pure green rectangle, and their boxes (x1, y1, x2, y2)."""
    image = np.full((height, width, 3), 100, np.float32)
    boxes = np.array([[10, 20, 40, 50], [70, 30, 110, 80]], np.float32)
    for (x1, y1, x2, y2), colour in zip(boxes.astype(int), (RED, GREEN)):
        image[y1:y2, x1:x2] = colour
    return image, boxes


def _assert_box_on_colour(image, box, colour, tolerance=1.5):
    """Pixels of ``colour`` lie inside ``box`` (up to resampling blur) and fill its interior."""
    image = np.asarray(image)
    mask = np.all(np.abs(image - np.array(colour, np.float32)) < 40, axis=-1)
    ys, xs = np.nonzero(mask)
    assert len(xs) > 0, f"no pixel of colour {colour} left"
    x1, y1, x2, y2 = np.asarray(box)
    assert xs.min() >= x1 - tolerance and xs.max() + 1 <= x2 + tolerance
    assert ys.min() >= y1 - tolerance and ys.max() + 1 <= y2 + tolerance
    inner = mask[int(np.ceil(y1 + tolerance)) : int(y2 - tolerance), int(np.ceil(x1 + tolerance)) : int(x2 - tolerance)]
    assert inner.size > 0 and inner.all(), f"the box {box} is not filled with {colour}"


def test_horizontal_flip_moves_boxes_with_their_objects():
    image, boxes = _scene()
    flipped, flipped_boxes = horizontal_flip(tf.constant(image), tf.constant(boxes))
    np.testing.assert_allclose(flipped_boxes, [[80, 20, 110, 50], [10, 30, 50, 80]])
    _assert_box_on_colour(flipped, flipped_boxes[0], RED, tolerance=0)
    _assert_box_on_colour(flipped, flipped_boxes[1], GREEN, tolerance=0)


def test_resize_and_pad_scales_boxes_and_pads_with_zeros():
    image, boxes = _scene(90, 120)
    padded, scaled, scale = resize_and_pad(tf.constant(image), tf.constant(boxes), 64)
    assert padded.shape == (64, 64, 3)
    assert float(scale) == pytest.approx(64 / 120)
    np.testing.assert_allclose(scaled, boxes * 64 / 120, rtol=1e-6)
    _assert_box_on_colour(padded, scaled[0], RED)
    _assert_box_on_colour(padded, scaled[1], GREEN)
    assert np.all(padded.numpy()[48:] == 0)  # 90 · 64/120 = 48 rows of image, the rest padding


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("jitter", [(0.6, 0.8), (1.3, 1.6)])
def test_scale_jitter_keeps_boxes_on_their_objects(seed, jitter):
    image, boxes = _scene()
    tf.random.set_seed(seed)
    out, out_boxes, out_classes = scale_jitter(tf.constant(image), tf.constant(boxes), tf.constant([0, 1]), 128, jitter)
    assert out.shape == (128, 128, 3)
    for box, label in zip(out_boxes.numpy(), out_classes.numpy()):
        colour = (RED, GREEN)[label]
        x1, y1, x2, y2 = box
        mask = np.all(np.abs(out.numpy() - np.array(colour, np.float32)) < 40, axis=-1)
        ys, xs = np.nonzero(mask)
        assert xs.min() >= x1 - 1.5 and xs.max() + 1 <= x2 + 1.5 and ys.min() >= y1 - 1.5 and ys.max() + 1 <= y2 + 1.5
        assert mask[int(y1 + 2) : int(y2 - 2), int(x1 + 2) : int(x2 - 2)].all()
    # An object is dropped only when the crop cut most of it away.
    kept = set(out_classes.numpy().tolist())
    for label, colour in enumerate((RED, GREEN)):
        visible = np.all(np.abs(out.numpy() - np.array(colour, np.float32)) < 40, axis=-1).sum()
        full_area = np.prod(boxes[label, 2:] - boxes[label, :2]) * (out.shape[0] / 120) ** 2 * np.mean(jitter) ** 2
        if label not in kept:
            assert visible < 0.5 * full_area


def test_scale_jitter_drops_boxes_cut_away_by_the_crop():
    image, boxes = _scene()
    tf.random.set_seed(3)
    for _ in range(20):  # strong zoom: some crops leave an object out
        out, out_boxes, out_classes = scale_jitter(tf.constant(image), tf.constant(boxes), tf.constant([0, 1]), 64, (2.5, 3.0))
        assert len(out_boxes) == len(out_classes)
        assert np.all(out_boxes.numpy() >= 0) and np.all(out_boxes.numpy() <= 64)
    assert len(out_boxes) <= 2


def _records(tmp_path, count=4, size=128):
    records = []
    rng = np.random.default_rng(0)
    for index in range(count):
        image, boxes = _scene(size, size)
        image += rng.uniform(-10, 10, image.shape).astype(np.float32) * (image == 100)
        path = tmp_path / f"{index}.png"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)
        records.append(ImageRecord(index + 1, str(path), size, size, boxes, np.array([0, 1], np.int32)))
    records.append(ImageRecord(99, str(path), size, size, np.zeros((0, 4), np.float32), np.zeros([0], np.int32)))
    return records


def test_training_targets_are_the_matchers_targets(tmp_path):
    """Without scale jitter, every element's targets equal assign_targets on the (possibly flipped) boxes."""
    records = _records(tmp_path)
    dataset = make_dataset(records, 128, batch_size=5, training=True, jitter=(1.0, 1.0), seed=1)
    anchors = generate_anchors(128, 128)
    boxes = records[0].boxes
    flipped = np.stack([128 - boxes[:, 2], boxes[:, 1], 128 - boxes[:, 0], boxes[:, 3]], axis=1)
    candidates = [assign_targets(anchors, b, [0, 1]).numpy() for b in (boxes, flipped)]
    background = assign_targets(anchors, np.zeros((0, 4)), np.zeros([0])).numpy()
    images, targets = next(iter(dataset))
    assert images.shape == (5, 128, 128, 3) and targets.shape == (5, len(anchors), 5)
    matched_background = 0
    for target in targets.numpy():
        if np.all(target[:, 4] == BACKGROUND):
            np.testing.assert_array_equal(target, background)
            matched_background += 1
        else:
            assert any(np.allclose(target, c, atol=1e-5) for c in candidates)
    assert matched_background == 1  # the image without annotations is kept as background


def test_training_targets_decode_onto_the_objects(tmp_path):
    """With flip and scale jitter on: positive anchors' targets decode to boxes around the right colour."""
    records = _records(tmp_path)
    dataset = make_dataset(records, 128, batch_size=5, training=True, jitter=(0.7, 1.3), seed=2)
    anchors = generate_anchors(128, 128)
    images, targets = next(iter(dataset))
    raw = images.numpy()[..., ::-1] + np.array([123.68, 116.779, 103.939], np.float32)  # undo caffe preprocessing
    checked = 0
    for image, target in zip(raw, targets.numpy()):
        positive = target[:, 4] >= 0
        for box, label in zip(decode(anchors[positive], target[positive, :4]).numpy(), target[positive, 4]):
            _assert_box_on_colour(image, box, (RED, GREEN)[int(label)], tolerance=2.0)
            checked += 1
    assert checked > 0


def test_evaluation_pipeline_keeps_order_ids_and_scales(tmp_path):
    records = _records(tmp_path, count=3, size=96)
    batches = list(make_dataset(records, 64, batch_size=3, training=False))
    ids = np.concatenate([b[2].numpy() for b in batches])
    scales = np.concatenate([b[1].numpy() for b in batches])
    assert ids.tolist() == [1, 2, 3, 99]
    np.testing.assert_allclose(scales, 64 / 96)
    assert batches[0][0].shape == (3, 64, 64, 3)


def test_pipeline_rejects_sizes_that_are_not_multiples_of_32(tmp_path):
    with pytest.raises(ValueError, match="multiple of 32"):
        make_dataset(_records(tmp_path, count=1), 100, batch_size=1, training=False)
