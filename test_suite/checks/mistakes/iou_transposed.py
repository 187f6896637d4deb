"""The matrix comes out as (M, N): boxes_b along the rows."""
from course import tf

CHECK, CAUSE, KEYWORD = "TEST_IOU", "iou.transposed", "rows index boxes_a"


def iou(boxes_a, boxes_b):
    a, b = tf.convert_to_tensor(boxes_a, tf.float32), tf.convert_to_tensor(boxes_b, tf.float32)
    top_left = tf.maximum(b[:, None, :2], a[None, :, :2])
    bottom_right = tf.minimum(b[:, None, 2:], a[None, :, 2:])
    size = tf.maximum(bottom_right - top_left, 0.0)
    intersection = size[..., 0] * size[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return tf.math.divide_no_nan(intersection, area_b[:, None] + area_a[None, :] - intersection)


def arguments():
    return (iou,)
