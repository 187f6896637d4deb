"""decode returns [cx, cy, w, h]: the conversion back to corners is missing."""
from course import tf
from retinanet.boxes import encode

CHECK, CAUSE, KEYWORD = "TEST_BOX_CODING", "box_coding.decode_centre_size", "convert back to corners"


def to_centre_size(boxes):
    return tf.concat([(boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]], axis=-1)


BOX_VARIANCES = tf.constant([0.1, 0.1, 0.2, 0.2])


def decode(anchors, deltas):
    anchors = to_centre_size(tf.convert_to_tensor(anchors, tf.float32))
    deltas = tf.convert_to_tensor(deltas, tf.float32)
    deltas = deltas * BOX_VARIANCES
    centres = anchors[..., :2] + deltas[..., :2] * anchors[..., 2:]
    sizes = anchors[..., 2:] * tf.exp(deltas[..., 2:])
    return tf.concat([centres, sizes], axis=-1)


def arguments():
    return encode, decode
