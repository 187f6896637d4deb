"""The deltas are computed from the corners, (x1 − x1_a) / w_a and so on."""
from course import tf
from retinanet.boxes import decode

CHECK, CAUSE, KEYWORD = "TEST_BOX_CODING", "box_coding.encode_corners", "works on corners"


BOX_VARIANCES = tf.constant([0.1, 0.1, 0.2, 0.2])


def encode(anchors, boxes):
    anchors, boxes = tf.convert_to_tensor(anchors, tf.float32), tf.convert_to_tensor(boxes, tf.float32)
    sizes = anchors[..., 2:] - anchors[..., :2]
    return (boxes - anchors) / tf.concat([sizes, sizes], axis=-1) / BOX_VARIANCES


def arguments():
    return encode, decode
