"""The four deltas are stacked on a new first axis: shape (4, N)."""
from course import tf
from retinanet.boxes import decode

CHECK, CAUSE, KEYWORD = "TEST_BOX_CODING", "box_coding.encode_shape", "should return shape (12, 4)"


def to_centre_size(boxes):
    return tf.concat([(boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]], axis=-1)


BOX_VARIANCES = tf.constant([0.1, 0.1, 0.2, 0.2])


def encode(anchors, boxes):
    anchors = to_centre_size(tf.convert_to_tensor(anchors, tf.float32))
    boxes = to_centre_size(tf.convert_to_tensor(boxes, tf.float32))
    centre_deltas = (boxes[..., :2] - anchors[..., :2]) / anchors[..., 2:]
    size_deltas = tf.math.log(boxes[..., 2:] / anchors[..., 2:])
    deltas = [centre_deltas[..., 0], centre_deltas[..., 1], size_deltas[..., 0], size_deltas[..., 1]]
    return tf.stack(deltas) / BOX_VARIANCES[:, None]


def arguments():
    return encode, decode
