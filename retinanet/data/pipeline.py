"""The ``tf.data`` input pipeline: files → padded, augmented, preprocessed images and anchor targets.

Per image (in parallel, ``num_parallel_calls=AUTOTUNE``): read and decode the file; resize so that the
longer side fits the square model input, keeping the aspect ratio, and pad the rest with zeros (at the
bottom and right, so box coordinates only scale). For training, a random horizontal flip and scale
jitter (resize to ``jitter`` × the fitting size, then a random crop or padding back to the input size;
boxes are scaled, shifted, clipped, and dropped when less than :data:`MIN_KEPT_FRACTION` of them
remains); then the ResNet preprocessing and the anchor targets of
:func:`retinanet.matching.assign_targets`. Batches are prefetched so that the accelerator never waits.
"""

import numpy as np

from retinanet._tf import tf
from retinanet.anchors import check_image_size, generate_anchors
from retinanet.backbone import preprocess_images
from retinanet.matching import assign_targets

MIN_KEPT_FRACTION = 0.4
"""A box cut by the crop of scale jitter stays a target if at least this fraction of its area remains."""

DEFAULT_JITTER = (0.75, 1.25)
"""Scale jitter range for training (the paper's scale augmentation, Sec. 5.2, as a continuous range)."""


def records_to_tensors(records):
    """``(paths, boxes, classes, image_ids)``: string, ragged float32 ``(n, None, 4)``, ragged int32, int64."""
    paths = tf.constant([record.path for record in records])
    lengths = [len(record.boxes) for record in records]
    boxes = tf.RaggedTensor.from_row_lengths(
        tf.constant(np.concatenate([record.boxes for record in records]).reshape(-1, 4), tf.float32), lengths
    )
    classes = tf.RaggedTensor.from_row_lengths(
        tf.constant(np.concatenate([record.classes for record in records]).reshape(-1), tf.int32), lengths
    )
    image_ids = tf.constant([record.image_id for record in records], tf.int64)
    return paths, boxes, classes, image_ids


def decode_image(path):
    """Read and decode a PNG/JPEG/BMP/GIF file as float32 RGB ``(h, w, 3)`` in 0..255."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.cast(image, tf.float32)


def fit_scale(height, width, image_size):
    """The factor that makes an image's longer side ``image_size``."""
    return tf.cast(image_size, tf.float32) / tf.cast(tf.maximum(height, width), tf.float32)


def resize_and_pad(image, boxes, image_size, scale=None):
    """Resize ``image`` by ``scale`` (default: longer side → ``image_size``), pad to a square.

    Returns:
        ``(padded image (image_size, image_size, 3), boxes scaled by the same factor, scale)``.
    """
    shape = tf.shape(image)
    if scale is None:
        scale = fit_scale(shape[0], shape[1], image_size)
    new_size = tf.cast(tf.round(tf.cast(shape[:2], tf.float32) * scale), tf.int32)
    new_size = tf.minimum(tf.maximum(new_size, 1), image_size)
    image = tf.image.resize(image, new_size, method="bilinear", antialias=True)
    image = tf.image.pad_to_bounding_box(image, 0, 0, image_size, image_size)
    return image, boxes * scale, scale


def horizontal_flip(image, boxes):
    """Mirror an image ``(h, w, 3)`` and its boxes left to right."""
    width = tf.cast(tf.shape(image)[1], tf.float32)
    flipped = tf.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
    return tf.image.flip_left_right(image), flipped


def scale_jitter(image, boxes, classes, image_size, jitter, seed=None):
    """Resize by a random factor of the fitting scale, randomly crop to at most ``image_size``, pad.

    Boxes follow the image; boxes with less than :data:`MIN_KEPT_FRACTION` of their area left inside the
    crop are dropped with their classes.
    """
    shape = tf.shape(image)
    factor = tf.random.uniform([], jitter[0], jitter[1], seed=seed)
    scale = fit_scale(shape[0], shape[1], image_size) * factor
    new_size = tf.maximum(tf.cast(tf.round(tf.cast(shape[:2], tf.float32) * scale), tf.int32), 1)
    image = tf.image.resize(image, new_size, method="bilinear", antialias=True)
    boxes = boxes * scale

    crop_size = tf.minimum(new_size, image_size)
    offset_y = tf.random.uniform([], 0, new_size[0] - crop_size[0] + 1, dtype=tf.int32, seed=seed)
    offset_x = tf.random.uniform([], 0, new_size[1] - crop_size[1] + 1, dtype=tf.int32, seed=seed)
    image = tf.image.crop_to_bounding_box(image, offset_y, offset_x, crop_size[0], crop_size[1])
    image = tf.image.pad_to_bounding_box(image, 0, 0, image_size, image_size)

    offset = tf.cast(tf.stack([offset_x, offset_y, offset_x, offset_y]), tf.float32)
    limits = tf.cast(tf.stack([crop_size[1], crop_size[0], crop_size[1], crop_size[0]]), tf.float32)
    shifted = boxes - offset
    clipped = tf.clip_by_value(shifted, 0.0, limits)
    area = lambda b: tf.maximum(b[:, 2] - b[:, 0], 0.0) * tf.maximum(b[:, 3] - b[:, 1], 0.0)  # noqa: E731
    keep = area(clipped) >= MIN_KEPT_FRACTION * area(shifted)
    keep = tf.logical_and(keep, area(clipped) > 0.0)
    return image, tf.boolean_mask(clipped, keep), tf.boolean_mask(classes, keep)


def make_dataset(records, image_size, batch_size, training, jitter=DEFAULT_JITTER, seed=0,
                 cache=True, shuffle_buffer=2048, drop_remainder=None):
    """A batched ``tf.data.Dataset`` for a list of :class:`retinanet.data.ImageRecord`.

    Training (``training=True``): shuffled, repeated forever, flipped and scale-jittered; elements are
    ``(images, targets)`` with images ``(B, S, S, 3)`` preprocessed and targets ``(B, N, 5)``.

    Evaluation: one pass in order, no augmentation; elements are ``(images, scales, image_ids)``, where
    ``scales`` maps model coordinates back to the original image (divide by it).

    ``cache`` keeps decoded images in memory after the first epoch (the embedded dataset is ~120 MB).
    """
    check_image_size(image_size, image_size)
    if not records:
        raise ValueError("the dataset has no images")
    anchors = tf.constant(generate_anchors(image_size, image_size))
    paths, boxes, classes, image_ids = records_to_tensors(records)
    dataset = tf.data.Dataset.from_tensor_slices((paths, boxes, classes, image_ids))
    autotune = tf.data.AUTOTUNE

    def load(path, image_boxes, image_classes, image_id):
        return decode_image(path), image_boxes, image_classes, image_id

    dataset = dataset.map(load, num_parallel_calls=autotune)
    if cache:
        dataset = dataset.cache()

    if not training:
        def prepare(image, image_boxes, image_classes, image_id):
            image, _, scale = resize_and_pad(image, image_boxes, image_size)
            return preprocess_images(image), scale, image_id

        dataset = dataset.map(prepare, num_parallel_calls=autotune)
        return dataset.batch(batch_size, drop_remainder=bool(drop_remainder)).prefetch(autotune)

    def augment_and_encode(image, image_boxes, image_classes, image_id):
        image_boxes = tf.reshape(image_boxes, [-1, 4])
        if tf.random.uniform([]) < 0.5:
            image, image_boxes = horizontal_flip(image, image_boxes)
        image, image_boxes, image_classes = scale_jitter(image, image_boxes, image_classes, image_size, jitter)
        image = tf.ensure_shape(image, [image_size, image_size, 3])
        targets = assign_targets(anchors, image_boxes, image_classes)
        return preprocess_images(image), targets

    dataset = dataset.shuffle(min(shuffle_buffer, len(records)), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.repeat()
    dataset = dataset.map(augment_and_encode, num_parallel_calls=autotune, deterministic=False)
    return dataset.batch(batch_size, drop_remainder=True if drop_remainder is None else drop_remainder).prefetch(autotune)
