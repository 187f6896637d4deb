"""Inference: from the model's raw output to at most 100 detections per image.

Lin et al., Sec. 4.1, "Inference": scores are per-class sigmoids; on each pyramid level keep at most the
1,000 top-scoring anchor–class pairs whose score is above 0.05, decode their boxes, merge the levels and
apply non-maximum suppression with IoU 0.5, class by class; keep the best 100 detections per image
(COCO's limit). NMS is TensorFlow's ``combined_non_max_suppression``.
"""

from typing import NamedTuple

from retinanet._tf import tf
from retinanet.anchors import anchors_per_level, generate_anchors
from retinanet.boxes import decode

SCORE_THRESHOLD = 0.05
"""Detections scoring below this are dropped before NMS (Sec. 4.1)."""

TOP_K_PER_LEVEL = 1000
"""At most this many anchor–class candidates per pyramid level (Sec. 4.1)."""

NMS_IOU_THRESHOLD = 0.5
"""Boxes of the same class overlapping a better one by more than this are suppressed (Sec. 4.1)."""

MAX_DETECTIONS = 100
"""Detections kept per image (the COCO evaluation limit)."""


class Detections(NamedTuple):
    """Padded batch of detections; entries past ``num_detections[i]`` of image i are zero."""

    boxes: tf.Tensor  # (batch, max_detections, 4), [x1, y1, x2, y2] pixels, clipped to the image
    scores: tf.Tensor  # (batch, max_detections)
    classes: tf.Tensor  # (batch, max_detections) int32
    num_detections: tf.Tensor  # (batch,) int32


def decode_detections(
    predictions,
    image_height,
    image_width,
    score_threshold=SCORE_THRESHOLD,
    top_k_per_level=TOP_K_PER_LEVEL,
    nms_iou_threshold=NMS_IOU_THRESHOLD,
    max_detections=MAX_DETECTIONS,
):
    """Detections from RetinaNet's output ``(batch, N, 4 + K)`` for images of the given size."""
    predictions = tf.cast(tf.convert_to_tensor(predictions), tf.float32)
    if predictions.shape.rank != 3 or predictions.shape[-1] is None or predictions.shape[-1] < 5:
        raise ValueError(f"predictions must have shape (batch, num_anchors, 4 + K), got {predictions.shape}")
    num_classes = predictions.shape[-1] - 4
    anchors = generate_anchors(image_height, image_width)
    if predictions.shape[1] is not None and predictions.shape[1] != len(anchors):
        raise ValueError(
            f"predictions hold {predictions.shape[1]} anchors, but a {image_height}×{image_width} image has "
            f"{len(anchors)}: decode with the size the model saw"
        )
    # Clip before NMS, so that the overlaps NMS compares are those of the boxes it reports.
    limits = tf.constant([image_width, image_height, image_width, image_height], tf.float32)
    boxes = tf.clip_by_value(decode(anchors[None], predictions[..., :4]), 0.0, limits)
    scores = tf.sigmoid(predictions[..., 4:])

    candidate_boxes, candidate_scores, candidate_classes = [], [], []
    start = 0
    for count in anchors_per_level(image_height, image_width):
        level_scores = tf.reshape(scores[:, start : start + count], [tf.shape(scores)[0], -1])
        top_scores, top_indices = tf.math.top_k(level_scores, k=min(top_k_per_level, count * num_classes))
        candidate_boxes.append(tf.gather(boxes[:, start : start + count], top_indices // num_classes, batch_dims=1))
        candidate_scores.append(top_scores)
        candidate_classes.append(top_indices % num_classes)
        start += count
    candidate_boxes = tf.concat(candidate_boxes, axis=1)
    class_scores = tf.concat(candidate_scores, axis=1)[..., None] * tf.one_hot(
        tf.concat(candidate_classes, axis=1), num_classes
    )  # (batch, M, K): each candidate scores only for its own class, so NMS runs class by class

    nms_boxes, nms_scores, nms_classes, valid = tf.image.combined_non_max_suppression(
        candidate_boxes[:, :, None, :],
        class_scores,
        max_output_size_per_class=max_detections,
        max_total_size=max_detections,
        iou_threshold=nms_iou_threshold,
        score_threshold=score_threshold,
        clip_boxes=False,
    )
    return Detections(nms_boxes, nms_scores, tf.cast(nms_classes, tf.int32), valid)
