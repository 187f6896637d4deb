"""The input pipeline's transforms (NumPy and Pillow): geometric transforms keep boxes on their objects."""

import numpy as np
import pytest

from retinanet.data.transforms import MIN_KEPT_FRACTION, augment, horizontal_flip, resize_and_pad, scale_jitter

pytestmark = pytest.mark.backends("tensorflow", "jax")

RED, GREEN = (255, 0, 0), (0, 255, 0)


def scene(height=90, width=120):
    """A grey image with a pure red and a pure green rectangle, and their boxes (x1, y1, x2, y2)."""
    image = np.full((height, width, 3), 100, np.uint8)
    boxes = np.array([[10, 20, 40, 50], [70, 30, 110, 80]], np.float32)
    for (x1, y1, x2, y2), colour in zip(boxes.astype(int), (RED, GREEN)):
        image[y1:y2, x1:x2] = colour
    return image, boxes


def colour_mask(image, colour):
    return np.all(np.abs(np.asarray(image, np.float32) - np.array(colour, np.float32)) < 40, axis=-1)


def assert_box_on_colour(image, box, colour, tolerance=1.5):
    """Pixels of ``colour`` lie inside ``box`` (up to resampling blur) and fill its interior."""
    mask = colour_mask(image, colour)
    ys, xs = np.nonzero(mask)
    assert len(xs) > 0, f"no pixel of colour {colour} left"
    x1, y1, x2, y2 = np.asarray(box)
    assert xs.min() >= x1 - tolerance and xs.max() + 1 <= x2 + tolerance
    assert ys.min() >= y1 - tolerance and ys.max() + 1 <= y2 + tolerance
    inner = mask[int(np.ceil(y1 + tolerance)) : int(y2 - tolerance), int(np.ceil(x1 + tolerance)) : int(x2 - tolerance)]
    assert inner.size > 0 and inner.all(), f"the box {box} is not filled with {colour}"


def test_horizontal_flip_moves_boxes_with_their_objects():
    image, boxes = scene()
    flipped, flipped_boxes = horizontal_flip(image, boxes)
    np.testing.assert_allclose(flipped_boxes, [[80, 20, 110, 50], [10, 30, 50, 80]])
    assert_box_on_colour(flipped, flipped_boxes[0], RED, tolerance=0)
    assert_box_on_colour(flipped, flipped_boxes[1], GREEN, tolerance=0)


def test_resize_and_pad_scales_boxes_and_pads_with_zeros():
    image, boxes = scene(90, 120)
    padded, scaled, scale = resize_and_pad(image, boxes, 64)
    assert padded.shape == (64, 64, 3) and padded.dtype == np.uint8
    assert scale == pytest.approx(64 / 120)
    np.testing.assert_allclose(scaled, boxes * 64 / 120, rtol=1e-6)
    assert_box_on_colour(padded, scaled[0], RED)
    assert_box_on_colour(padded, scaled[1], GREEN)
    assert np.all(padded[48:] == 0)  # 90 · 64/120 = 48 rows of image, the rest padding


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("jitter", [(0.6, 0.8), (1.3, 1.6)])
def test_scale_jitter_keeps_boxes_on_their_objects(seed, jitter):
    image, boxes = scene()
    out, out_boxes, out_classes = scale_jitter(image, boxes, np.array([0, 1]), 128, jitter, np.random.default_rng(seed))
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    for box, label in zip(out_boxes, out_classes):
        assert_box_on_colour(out, box, (RED, GREEN)[label])
    # An object is dropped only when the crop cut most of it away.
    for label, colour in enumerate((RED, GREEN)):
        if label not in out_classes:
            visible = colour_mask(out, colour).sum()
            full_area = np.prod(boxes[label, 2:] - boxes[label, :2]) * (128 / 120 * max(jitter)) ** 2
            assert visible < MIN_KEPT_FRACTION * full_area + 1


def test_scale_jitter_drops_boxes_cut_away_by_the_crop():
    image, boxes = scene()
    rng = np.random.default_rng(3)
    counts = set()
    for _ in range(30):  # strong zoom: some crops leave an object out
        out, out_boxes, out_classes = scale_jitter(image, boxes, np.array([0, 1]), 64, (2.5, 3.0), rng)
        assert len(out_boxes) == len(out_classes)
        assert np.all(out_boxes >= 0) and np.all(out_boxes <= 64)
        counts.add(len(out_boxes))
    assert min(counts) < 2


def test_augment_is_a_pure_function_of_its_generator():
    image, boxes = scene()
    first = augment(image, boxes, np.array([0, 1]), 96, (0.7, 1.3), np.random.default_rng([4, 2]))
    again = augment(image, boxes, np.array([0, 1]), 96, (0.7, 1.3), np.random.default_rng([4, 2]))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
