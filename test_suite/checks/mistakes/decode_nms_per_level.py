"""NMS on each pyramid level separately, the survivors merged afterwards: two overlapping boxes of one class
from different levels both survive (the paper merges the levels first, Sec. 4.1)."""
from course import tf
from retinanet.anchors import anchors_per_level, generate_anchors
from retinanet.boxes import decode
from retinanet.postprocess import Detections

CHECK, CAUSE, KEYWORD = "TEST_DECODE", "decode.nms_per_level", "after the candidates of all levels are merged"


def decode_detections(predictions, image_height, image_width, score_threshold=0.05, top_k_per_level=1000,
                      nms_iou_threshold=0.5, max_detections=100):
    predictions = tf.convert_to_tensor(predictions, tf.float32)
    num_classes = predictions.shape[-1] - 4
    anchors = generate_anchors(image_height, image_width)
    limits = tf.constant([image_width, image_height, image_width, image_height], tf.float32)
    boxes = tf.clip_by_value(decode(anchors[None], predictions[..., :4]), 0.0, limits)
    scores = tf.sigmoid(predictions[..., 4:])
    batch = tf.shape(scores)[0]
    kept_boxes, kept_scores, kept_classes = [], [], []
    start = 0
    for count in anchors_per_level(image_height, image_width):
        flat = tf.reshape(scores[:, start:start + count], [batch, -1])
        top_scores, top_indices = tf.math.top_k(flat, k=min(top_k_per_level, count * num_classes))
        level_boxes = tf.gather(boxes[:, start:start + count], top_indices // num_classes, batch_dims=1)
        class_scores = top_scores[..., None] * tf.one_hot(top_indices % num_classes, num_classes)
        nmsed = tf.image.combined_non_max_suppression(
            level_boxes[:, :, None, :], class_scores, max_detections, max_detections, nms_iou_threshold,
            score_threshold, clip_boxes=False)
        kept_boxes.append(nmsed.nmsed_boxes)
        kept_scores.append(nmsed.nmsed_scores)
        kept_classes.append(tf.cast(nmsed.nmsed_classes, tf.int32))
        start += count
    merged_scores, order = tf.math.top_k(tf.concat(kept_scores, axis=1), k=max_detections)
    merged_boxes = tf.gather(tf.concat(kept_boxes, axis=1), order, batch_dims=1)
    merged_classes = tf.gather(tf.concat(kept_classes, axis=1), order, batch_dims=1)
    valid = tf.reduce_sum(tf.cast(merged_scores > 0, tf.int32), axis=-1)
    return Detections(merged_boxes, merged_scores, merged_classes, valid)


def arguments():
    return (decode_detections,)
