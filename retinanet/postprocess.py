"""Inference: from the model's raw output to at most 100 detections per image.

Lin et al., Sec. 4.1, "Inference": scores are per-class sigmoids; on each pyramid level keep at most the
1,000 top-scoring anchor–class pairs whose score is above 0.05, decode their boxes, merge the levels and
apply non-maximum suppression with IoU 0.5, class by class; keep the best 100 detections per image
(COCO's limit).

Shapes are fixed (jittable on every backend). NMS is TensorFlow's ``combined_non_max_suppression`` on the
TensorFlow backend and :func:`retinanet.nms.class_wise_nms` elsewhere (the suite checks they agree).
"""

from typing import Any, NamedTuple

from retinanet._keras import BACKEND, ops
from retinanet.anchors import anchors_per_level, generate_anchors
from retinanet.boxes import decode
from retinanet.nms import class_wise_nms

SCORE_THRESHOLD = 0.05
"""Detections scoring at most this are dropped before NMS (Sec. 4.1)."""

TOP_K_PER_LEVEL = 1000
"""At most this many anchor–class candidates per pyramid level (Sec. 4.1)."""

NMS_IOU_THRESHOLD = 0.5
"""Boxes of the same class overlapping a better one by more than this are suppressed (Sec. 4.1)."""

MAX_DETECTIONS = 100
"""Detections kept per image (the COCO evaluation limit)."""

NMS_IMPLEMENTATIONS = ("auto", "tensorflow", "keras")
"""``"tensorflow"``: ``tf.image.combined_non_max_suppression`` (TensorFlow backend only);
``"keras"``: :func:`retinanet.nms.class_wise_nms`; ``"auto"``: the first on TensorFlow, else the second."""


class Detections(NamedTuple):
    """Padded batch of detections (backend tensors); entries past ``num_detections[i]`` of image i are zero."""

    boxes: Any  # (batch, max_detections, 4), [x1, y1, x2, y2] pixels, clipped to the image
    scores: Any  # (batch, max_detections)
    classes: Any  # (batch, max_detections) int32
    num_detections: Any  # (batch,) int32


def top_candidates(boxes, scores, image_height, image_width, top_k_per_level=TOP_K_PER_LEVEL):
    """The best ``top_k_per_level`` anchor–class pairs of each pyramid level, levels concatenated.

    Args:
        boxes: ``(batch, N, 4)`` decoded boxes, one per anchor.
        scores: ``(batch, N, K)`` class probabilities.

    Returns:
        ``(boxes (batch, C, 4), scores (batch, C), classes (batch, C) int32)``.
    """
    num_classes = scores.shape[-1]
    candidate_boxes, candidate_scores, candidate_classes = [], [], []
    start = 0
    for count in anchors_per_level(image_height, image_width):
        level_scores = ops.reshape(scores[:, start : start + count], (-1, count * num_classes))
        top_scores, top_indices = ops.top_k(level_scores, k=min(top_k_per_level, count * num_classes))
        anchor_index = top_indices // num_classes
        candidate_boxes.append(ops.take_along_axis(boxes[:, start : start + count], anchor_index[..., None], axis=1))
        candidate_scores.append(top_scores)
        candidate_classes.append(top_indices % num_classes)
        start += count
    return (ops.concatenate(candidate_boxes, axis=1), ops.concatenate(candidate_scores, axis=1),
            ops.cast(ops.concatenate(candidate_classes, axis=1), "int32"))


def _tensorflow_nms(boxes, scores, classes, num_classes, iou_threshold, score_threshold, max_detections):
    """TensorFlow's combined NMS: each candidate scores only for its own class, so NMS runs class by class."""
    import tensorflow as tf

    class_scores = scores[..., None] * tf.one_hot(classes, num_classes)
    nms_boxes, nms_scores, nms_classes, valid = tf.image.combined_non_max_suppression(
        boxes[:, :, None, :], class_scores, max_output_size_per_class=max_detections,
        max_total_size=max_detections, iou_threshold=iou_threshold, score_threshold=score_threshold,
        clip_boxes=False,
    )
    return nms_boxes, nms_scores, tf.cast(nms_classes, tf.int32), valid


def decode_detections(
    predictions,
    image_height,
    image_width,
    score_threshold=SCORE_THRESHOLD,
    top_k_per_level=TOP_K_PER_LEVEL,
    nms_iou_threshold=NMS_IOU_THRESHOLD,
    max_detections=MAX_DETECTIONS,
    nms="auto",
):
    """Detections from RetinaNet's output ``(batch, N, 4 + K)`` for images of the given size.

    ``nms`` picks the implementation (:data:`NMS_IMPLEMENTATIONS`); both give the same detections.
    """
    if nms not in NMS_IMPLEMENTATIONS:
        raise ValueError(f"nms must be one of {NMS_IMPLEMENTATIONS}, got {nms!r}")
    if nms == "auto":
        nms = "tensorflow" if BACKEND == "tensorflow" else "keras"
    if nms == "tensorflow" and BACKEND != "tensorflow":
        raise ValueError(f"nms='tensorflow' needs the TensorFlow backend, not {BACKEND}")
    predictions = ops.cast(ops.convert_to_tensor(predictions), "float32")
    if len(predictions.shape) != 3 or predictions.shape[-1] is None or predictions.shape[-1] < 5:
        raise ValueError(
            f"predictions must have shape (batch, num_anchors, 4 + K), got {tuple(predictions.shape)}"
        )
    num_classes = predictions.shape[-1] - 4
    anchors = generate_anchors(image_height, image_width)
    if predictions.shape[1] is not None and predictions.shape[1] != len(anchors):
        raise ValueError(
            f"predictions hold {predictions.shape[1]} anchors, but a {image_height}×{image_width} image has "
            f"{len(anchors)}: decode with the size the model saw"
        )
    # Clip before NMS, so that the overlaps NMS compares are those of the boxes it reports.
    limits = ops.convert_to_tensor([image_width, image_height, image_width, image_height], dtype="float32")
    boxes = ops.clip(decode(anchors[None], predictions[..., :4]), 0.0, limits)
    boxes, scores, classes = top_candidates(boxes, ops.sigmoid(predictions[..., 4:]), image_height, image_width,
                                            top_k_per_level)
    if nms == "tensorflow":
        return Detections(*_tensorflow_nms(boxes, scores, classes, num_classes, nms_iou_threshold, score_threshold,
                                           max_detections))
    return Detections(*class_wise_nms(boxes, scores, classes, nms_iou_threshold, score_threshold, max_detections))
