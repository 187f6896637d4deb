"""The old '+1' pixel convention: width = x2 − x1 + 1."""
from course import tf

CHECK, CAUSE, KEYWORD = "TEST_IOU", "iou.plus_one", "+1"


def iou(boxes_a, boxes_b):
    a, b = tf.constant(boxes_a, tf.float32), tf.constant(boxes_b, tf.float32)
    lt = tf.maximum(a[:, None, :2], b[None, :, :2])
    rb = tf.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = tf.maximum(rb - lt + 1, 0.0)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    return tf.math.divide_no_nan(inter, area_a[:, None] + area_b[None, :] - inter)


def arguments():
    return (iou,)
