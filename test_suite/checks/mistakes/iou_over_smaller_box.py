"""The intersection is divided by the smaller box's area (intersection over minimum)."""
from course import tf

CHECK, CAUSE, KEYWORD = "TEST_IOU", "iou.over_smaller", "smaller box's area"


def iou(boxes_a, boxes_b):
    a, b = tf.convert_to_tensor(boxes_a, tf.float32), tf.convert_to_tensor(boxes_b, tf.float32)
    top_left = tf.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = tf.minimum(a[:, None, 2:], b[None, :, 2:])
    size = tf.maximum(bottom_right - top_left, 0.0)
    intersection = size[..., 0] * size[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return tf.math.divide_no_nan(intersection, tf.minimum(area_a[:, None], area_b[None, :]))


def arguments():
    return (iou,)
