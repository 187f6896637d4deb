"""Class-agnostic NMS: a box of one class suppresses an overlapping box of another class."""
from course import tf
from retinanet.postprocess import Detections, decode_detections as reference

CHECK, CAUSE, KEYWORD = "TEST_DECODE", "decode.class_agnostic", "per class"


def decode_detections(predictions, image_height, image_width, score_threshold=0.05, top_k_per_level=1000,
                      nms_iou_threshold=0.5, max_detections=100):
    per_class = reference(predictions, image_height, image_width, score_threshold, top_k_per_level,
                          nms_iou_threshold, max_detections)
    boxes, scores, classes, counts = [], [], [], []
    for image in range(per_class.boxes.shape[0]):
        n = int(per_class.num_detections[image])
        keep = tf.image.non_max_suppression(per_class.boxes[image, :n], per_class.scores[image, :n],
                                            max_detections, nms_iou_threshold)
        pad = [[0, max_detections - len(keep)]]
        boxes.append(tf.pad(tf.gather(per_class.boxes[image], keep), pad + [[0, 0]]))
        scores.append(tf.pad(tf.gather(per_class.scores[image], keep), pad))
        classes.append(tf.pad(tf.gather(per_class.classes[image], keep), pad))
        counts.append(len(keep))
    return Detections(tf.stack(boxes), tf.stack(scores), tf.stack(classes), tf.constant(counts))


def arguments():
    return (decode_detections,)
