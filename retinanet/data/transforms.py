"""Image and box transforms of the input pipeline, in NumPy and Pillow (no deep-learning framework).

Images are ``uint8`` arrays ``(height, width, 3)``; boxes are float32 ``(M, 4)`` ``[x1, y1, x2, y2]`` in
pixels. Every transform returns the image and boxes moved together.

- :func:`resize_and_pad`: resize so that the longer side fits the square model input, keeping the aspect
  ratio, and pad the rest with zeros at the bottom and right (box coordinates only scale);
- :func:`horizontal_flip`: mirror left to right;
- :func:`scale_jitter`: the paper's scale augmentation (Sec. 5.2) as a continuous range: resize to a
  random factor of the fitting size, crop a random window of at most the input size, pad; boxes cut by
  the crop are clipped, and dropped when less than :data:`MIN_KEPT_FRACTION` of them remains.
"""

import numpy as np
from PIL import Image

MIN_KEPT_FRACTION = 0.4
"""A box cut by the crop of scale jitter stays a target if at least this fraction of its area remains."""

DEFAULT_JITTER = (0.75, 1.25)
"""Scale jitter range for training (the paper's scale augmentation, Sec. 5.2, as a continuous range)."""


def fit_scale(height, width, image_size):
    """The factor that makes an image's longer side ``image_size``."""
    return image_size / max(height, width)


def resize(image, height, width):
    """``image`` resized to ``height × width`` with Pillow's bilinear filter (antialiased when shrinking)."""
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def pad_to_square(image, image_size):
    """``image`` (at most ``image_size`` on each side) in the top-left corner of a zero square."""
    padded = np.zeros((image_size, image_size, 3), np.uint8)
    padded[: image.shape[0], : image.shape[1]] = image
    return padded


def resize_and_pad(image, boxes, image_size):
    """Resize so that the longer side is ``image_size``, pad to a square.

    Returns:
        ``(image (image_size, image_size, 3), boxes in the resized image, scale)``; divide model
        coordinates by ``scale`` to go back to the original image.
    """
    height, width = image.shape[:2]
    scale = fit_scale(height, width, image_size)
    new_height = min(max(round(height * scale), 1), image_size)
    new_width = min(max(round(width * scale), 1), image_size)
    image = resize(image, new_height, new_width)
    return pad_to_square(image, image_size), np.asarray(boxes, np.float32) * np.float32(scale), scale


def horizontal_flip(image, boxes):
    """Mirror an image ``(h, w, 3)`` and its boxes left to right."""
    width = image.shape[1]
    boxes = np.asarray(boxes, np.float32)
    flipped = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
    return image[:, ::-1], flipped


def _areas(boxes):
    return np.maximum(boxes[:, 2] - boxes[:, 0], 0.0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0.0)


def scale_jitter(image, boxes, classes, image_size, jitter, rng):
    """Resize by a random factor in ``jitter`` of the fitting scale, crop a random window of at most
    ``image_size`` per side, pad to a square.

    Returns:
        ``(image (image_size, image_size, 3), boxes, classes)``, without the boxes of which less than
        :data:`MIN_KEPT_FRACTION` of the area (or nothing) is left inside the crop.
    """
    height, width = image.shape[:2]
    scale = fit_scale(height, width, image_size) * rng.uniform(jitter[0], jitter[1])
    new_height, new_width = max(round(height * scale), 1), max(round(width * scale), 1)
    image = resize(image, new_height, new_width)
    boxes = np.asarray(boxes, np.float32) * np.float32([new_width / width, new_height / height] * 2)

    crop_height, crop_width = min(new_height, image_size), min(new_width, image_size)
    top = int(rng.integers(0, new_height - crop_height + 1))
    left = int(rng.integers(0, new_width - crop_width + 1))
    image = pad_to_square(image[top : top + crop_height, left : left + crop_width], image_size)

    shifted = boxes - np.float32([left, top, left, top])
    clipped = np.clip(shifted, 0.0, np.float32([crop_width, crop_height, crop_width, crop_height]))
    kept_area = _areas(clipped)
    keep = (kept_area >= MIN_KEPT_FRACTION * _areas(shifted)) & (kept_area > 0.0)
    return image, clipped[keep], np.asarray(classes)[keep]


def augment(image, boxes, classes, image_size, jitter, rng):
    """The training augmentation: a random horizontal flip (probability ½), then :func:`scale_jitter`."""
    if rng.random() < 0.5:
        image, boxes = horizontal_flip(image, boxes)
    return scale_jitter(image, boxes, classes, image_size, jitter, rng)
