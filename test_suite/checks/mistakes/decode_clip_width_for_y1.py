"""The clipping limits are [width, width, width, height]: y1 is clipped to the image width (one name slipped)."""
from course import tf
from retinanet.anchors import anchors_per_level, generate_anchors
from retinanet.boxes import decode
from retinanet.postprocess import Detections

CHECK, CAUSE, KEYWORD = "TEST_DECODE", "decode.clip_limits", "y1 to the width"


def decode_detections(predictions, image_height, image_width, score_threshold=0.05, top_k_per_level=1000,
                      nms_iou_threshold=0.5, max_detections=100):
    predictions = tf.convert_to_tensor(predictions, tf.float32)
    num_classes = predictions.shape[-1] - 4
    anchors = generate_anchors(image_height, image_width)
    limits = tf.constant([image_width, image_width, image_width, image_height], tf.float32)
    boxes = tf.clip_by_value(decode(anchors[None], predictions[..., :4]), 0.0, limits)
    scores = tf.sigmoid(predictions[..., 4:])
    batch = tf.shape(scores)[0]
    level_boxes, level_scores, level_classes = [], [], []
    start = 0
    for count in anchors_per_level(image_height, image_width):
        flat = tf.reshape(scores[:, start:start + count], [batch, -1])
        top_scores, top_indices = tf.math.top_k(flat, k=min(top_k_per_level, count * num_classes))
        level_boxes.append(tf.gather(boxes[:, start:start + count], top_indices // num_classes, batch_dims=1))
        level_scores.append(top_scores)
        level_classes.append(top_indices % num_classes)
        start += count
    candidate_boxes = tf.concat(level_boxes, axis=1)
    class_scores = tf.concat(level_scores, axis=1)[..., None] * tf.one_hot(tf.concat(level_classes, axis=1),
                                                                          num_classes)
    nms_boxes, nms_scores, nms_classes, valid = tf.image.combined_non_max_suppression(
        candidate_boxes[:, :, None, :], class_scores, max_output_size_per_class=max_detections,
        max_total_size=max_detections, iou_threshold=nms_iou_threshold, score_threshold=score_threshold,
        clip_boxes=False)
    return Detections(nms_boxes, nms_scores, tf.cast(nms_classes, tf.int32), valid)


def arguments():
    return (decode_detections,)
