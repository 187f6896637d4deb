"""decode divides the deltas by the variances, as encode does."""
from course import tf
from retinanet.boxes import encode

CHECK, CAUSE, KEYWORD = "TEST_BOX_CODING", "box_coding.decode_over_variances", "decode divides the deltas"


def to_centre_size(boxes):
    return tf.concat([(boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]], axis=-1)


def to_corners(boxes):
    return tf.concat([boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., :2] + boxes[..., 2:] / 2], axis=-1)


BOX_VARIANCES = tf.constant([0.1, 0.1, 0.2, 0.2])


def decode(anchors, deltas):
    anchors = to_centre_size(tf.convert_to_tensor(anchors, tf.float32))
    deltas = tf.convert_to_tensor(deltas, tf.float32)
    deltas = deltas / BOX_VARIANCES
    centres = anchors[..., :2] + deltas[..., :2] * anchors[..., 2:]
    sizes = anchors[..., 2:] * tf.exp(deltas[..., 2:])
    return to_corners(tf.concat([centres, sizes], axis=-1))


def arguments():
    return encode, decode
