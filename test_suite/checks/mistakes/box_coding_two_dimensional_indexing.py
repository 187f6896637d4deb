"""boxes[:, :2] instead of boxes[..., :2]: right on (N, 4), wrong on a batch."""
from course import tf
from retinanet.boxes import decode

CHECK, CAUSE, KEYWORD = "TEST_BOX_CODING", "box_coding.leading_dimensions", "index the last axis"


BOX_VARIANCES = tf.constant([0.1, 0.1, 0.2, 0.2])


def to_centre_size(boxes):
    return tf.concat([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=-1)


def encode(anchors, boxes):
    anchors = to_centre_size(tf.convert_to_tensor(anchors, tf.float32))
    boxes = to_centre_size(tf.convert_to_tensor(boxes, tf.float32))
    centre_deltas = (boxes[:, :2] - anchors[:, :2]) / anchors[:, 2:]
    size_deltas = tf.math.log(boxes[:, 2:] / anchors[:, 2:])
    return tf.concat([centre_deltas, size_deltas], axis=-1) / BOX_VARIANCES


def arguments():
    return encode, decode
