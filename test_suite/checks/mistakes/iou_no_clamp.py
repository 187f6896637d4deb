"""The intersection's width and height are not clamped at 0, so disjoint boxes overlap."""
from course import tf

CHECK, CAUSE, KEYWORD = "TEST_IOU", "iou.no_clamp", "clamp"


def iou(boxes_a, boxes_b):
    a, b = tf.constant(boxes_a, tf.float32), tf.constant(boxes_b, tf.float32)
    wh = tf.minimum(a[:, None, 2:], b[None, :, 2:]) - tf.maximum(a[:, None, :2], b[None, :, :2])
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return tf.math.divide_no_nan(inter, area_a[:, None] + area_b[None, :] - inter)


def arguments():
    return (iou,)
