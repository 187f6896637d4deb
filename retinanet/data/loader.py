"""The input pipeline for every Keras backend: files → batches of ``uint8`` images and padded boxes.

Training batches come from :class:`TrainingBatches`, a ``keras.utils.PyDataset`` that ``fit()`` consumes
on TensorFlow and JAX alike: worker threads decode (once: decoded images are cached in memory up to a
budget), flip and scale-jitter images in NumPy/Pillow (:mod:`retinanet.data.transforms`) and pad every
image's ground truth to a fixed number of rows, while Keras keeps a queue of ready batches (prefetch).
Anchor targets are *not* computed here: :func:`retinanet.matching.assign_targets` runs inside the
compiled training step, on the accelerator, so the pipeline only carries images and boxes.

The batch of global step ``g`` is a pure function of ``(seed, g)`` — the data is an endless stream of
epochs, each a fresh permutation — so a resumed run continues the same stream, worker threads may run
in any order, and in multi-process training process ``p`` of ``P`` takes its own slice of each global
batch.

:func:`evaluation_batches` yields images resized with padding, in order, with the scale that maps
detections back to the original pixels.
"""

import collections
import functools
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from retinanet._keras import keras
from retinanet.anchors import check_image_size
from retinanet.data.images import read_rgb
from retinanet.data.transforms import DEFAULT_JITTER, augment, resize_and_pad

PADDING_CLASS = -1
"""Class id of the padding rows of a batch's ground truth (``classes >= 0`` marks the real boxes)."""

DEFAULT_CACHE_BYTES = 4 * 2 ** 30
"""Decoded images are kept in memory up to this many bytes (the embedded dataset needs ~70 MB)."""


class ImageCache:
    """Decoded RGB ``uint8`` images by path, shared by worker threads, up to ``max_bytes``.

    Images are read by :func:`retinanet.data.images.read_rgb`: decoded in full, as displayed (EXIF
    orientation), 8-bit RGB; a file that cannot be read raises :class:`~retinanet.data.images.ImageError`
    naming it (:func:`retinanet.data.load_coco` has checked every file before, so this happens only to a
    file changed since).
    """

    def __init__(self, max_bytes=DEFAULT_CACHE_BYTES):
        self.max_bytes, self.bytes = max_bytes, 0
        self._images, self._lock = {}, threading.Lock()

    def load(self, path):
        image = self._images.get(path)
        if image is None:
            image = read_rgb(path)
            with self._lock:
                if self.bytes + image.nbytes <= self.max_bytes and path not in self._images:
                    self._images[path] = image
                    self.bytes += image.nbytes
        return image


def max_objects(records):
    """The most boxes any record has (at least 1): the number of ground-truth rows of a batch."""
    return max([len(record.boxes) for record in records] + [1])


def pad_ground_truth(boxes, classes, max_boxes):
    """``(max_boxes, 4)`` float32 boxes and ``(max_boxes,)`` int32 classes, padded with :data:`PADDING_CLASS`."""
    if len(boxes) > max_boxes:
        raise ValueError(f"an image has {len(boxes)} boxes, more than max_boxes={max_boxes}")
    padded_boxes = np.zeros((max_boxes, 4), np.float32)
    padded_classes = np.full((max_boxes,), PADDING_CLASS, np.int32)
    padded_boxes[: len(boxes)] = boxes
    padded_classes[: len(classes)] = classes
    return padded_boxes, padded_classes


@functools.lru_cache(maxsize=4)
def _epoch_order(num_records, seed, epoch):
    return np.random.default_rng([seed, epoch, 0x5EED]).permutation(num_records)


class TrainingBatches(keras.utils.PyDataset):
    """Augmented training batches ``(images uint8 (B, S, S, 3), {"boxes": (B, M, 4), "classes": (B, M)})``.

    Args:
        records: :class:`retinanet.data.ImageRecord` list.
        image_size: S, the square model input, a multiple of 32.
        batch_size: B, images per step of this process.
        steps: batches in this pass over the stream (``len()``, what ``fit()`` runs).
        first_step: the global step of the first batch (a resumed run starts where it stopped).
        max_boxes: M, ground-truth rows per image (default: the most any record has).
        jitter: scale-jitter range, see :func:`retinanet.data.transforms.scale_jitter`.
        seed: the stream's seed.
        process_index, process_count: this process's slice of each global batch (multi-process training).
        workers: threads preparing batches; Keras keeps ``max_queue_size`` ready batches ahead of the step.
        cache: an :class:`ImageCache` (default: a new one).
    """

    def __init__(self, records, image_size, batch_size, steps, first_step=0, max_boxes=None,
                 jitter=DEFAULT_JITTER, seed=0, process_index=0, process_count=1, workers=4,
                 max_queue_size=16, cache=None):
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max_queue_size)
        check_image_size(image_size, image_size)
        if not records:
            raise ValueError("the dataset has no images")
        if batch_size < 1 or steps < 0 or first_step < 0:
            raise ValueError(f"need batch_size >= 1, steps >= 0, first_step >= 0; got {batch_size}, {steps}, {first_step}")
        if not 0 <= process_index < process_count:
            raise ValueError(f"process_index must lie in [0, {process_count}), got {process_index}")
        self.records, self.image_size, self.batch_size = records, image_size, batch_size
        self.steps, self.first_step, self.jitter, self.seed = steps, first_step, tuple(jitter), seed
        self.max_boxes = max_boxes or max_objects(records)
        self.process_index, self.process_count = process_index, process_count
        self.cache = cache or ImageCache()

    def __len__(self):
        return self.steps

    def stream_positions(self, step):
        """Positions in the endless record stream of this process's images at global ``step``."""
        first = (step * self.process_count + self.process_index) * self.batch_size
        return range(first, first + self.batch_size)

    def record_at(self, position):
        """The record at a stream position: each epoch is a fresh permutation of the records."""
        epoch, offset = divmod(position, len(self.records))
        return self.records[_epoch_order(len(self.records), self.seed, epoch)[offset]]

    def example(self, position):
        """``(image, boxes, classes)`` at one stream position, augmented (deterministic per position)."""
        record = self.record_at(position)
        rng = np.random.default_rng([self.seed, position])
        return augment(self.cache.load(record.path), record.boxes, record.classes, self.image_size, self.jitter, rng)

    def __getitem__(self, index):
        if not 0 <= index < self.steps:
            raise IndexError(f"batch {index} out of range for {self.steps} batches")
        images = np.empty((self.batch_size, self.image_size, self.image_size, 3), np.uint8)
        boxes = np.empty((self.batch_size, self.max_boxes, 4), np.float32)
        classes = np.empty((self.batch_size, self.max_boxes), np.int32)
        for row, position in enumerate(self.stream_positions(self.first_step + index)):
            images[row], image_boxes, image_classes = self.example(position)
            boxes[row], classes[row] = pad_ground_truth(image_boxes, image_classes, self.max_boxes)
        return images, {"boxes": boxes, "classes": classes}


    def prefetched(self):
        """The batches in order, prepared by ``workers`` threads up to ``max_queue_size`` ahead."""
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            pending = collections.deque()
            for index in range(len(self)):
                pending.append(pool.submit(self.__getitem__, index))
                if len(pending) > self.max_queue_size:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()


def evaluation_batches(records, image_size, batch_size, workers=4, cache=None):
    """Batches ``(images uint8 (B, S, S, 3), scales (B,), image_ids (B,), count)`` over ``records`` in order.

    The last batch is padded to ``batch_size`` with blank images (fixed shapes, so a compiled detector
    is not traced again); ``count`` says how many rows are real. Images are prepared ``workers`` at a time.
    """
    check_image_size(image_size, image_size)
    cache = cache or ImageCache(max_bytes=0)
    no_boxes = np.zeros((0, 4), np.float32)

    def prepare(record):
        image, _, scale = resize_and_pad(cache.load(record.path), no_boxes, image_size)
        return image, scale

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(records), batch_size):
            chunk = records[start : start + batch_size]
            images = np.zeros((batch_size, image_size, image_size, 3), np.uint8)
            scales = np.ones((batch_size,), np.float32)
            image_ids = np.full((batch_size,), -1, np.int64)
            for row, (record, (image, scale)) in enumerate(zip(chunk, pool.map(prepare, chunk))):
                images[row], scales[row], image_ids[row] = image, scale, record.image_id
            yield images, scales, image_ids, len(chunk)
