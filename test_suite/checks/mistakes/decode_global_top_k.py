"""Top-k taken over all levels together instead of on each level separately."""
from course import tf
from retinanet.anchors import generate_anchors
from retinanet.boxes import decode
from retinanet.postprocess import Detections

CHECK, CAUSE, KEYWORD = "TEST_DECODE", "decode.top_k_global", "each level separately"


def decode_detections(predictions, image_height, image_width, score_threshold=0.05, top_k_per_level=1000,
                      nms_iou_threshold=0.5, max_detections=100):
    predictions = tf.convert_to_tensor(predictions, tf.float32)
    num_classes = predictions.shape[-1] - 4
    limits = tf.constant([image_width, image_height, image_width, image_height], tf.float32)
    anchors = generate_anchors(image_height, image_width)
    boxes = tf.clip_by_value(decode(anchors[None], predictions[..., :4]), 0.0, limits)
    scores = tf.reshape(tf.sigmoid(predictions[..., 4:]), [tf.shape(predictions)[0], -1])
    top_scores, top_indices = tf.math.top_k(scores, k=top_k_per_level)
    candidates = tf.gather(boxes, top_indices // num_classes, batch_dims=1)
    class_scores = top_scores[..., None] * tf.one_hot(top_indices % num_classes, num_classes)
    b, s, c, n = tf.image.combined_non_max_suppression(candidates[:, :, None], class_scores, max_detections,
                                                       max_detections, nms_iou_threshold, score_threshold,
                                                       clip_boxes=False)
    return Detections(b, s, tf.cast(c, tf.int32), n)


def arguments():
    return (decode_detections,)
