"""The nine anchors of a location in scale-major order (the model's rows expect ratio-major)."""
import numpy as np

from retinanet.anchors import generate_anchors as reference

CHECK, CAUSE, KEYWORD = "TEST_ANCHORS", "anchors.scale_major", "wrong order"


def generate_anchors(image_height, image_width):
    anchors = reference(image_height, image_width).reshape(-1, 3, 3, 4)  # (location, ratio, scale, 4)
    return np.ascontiguousarray(anchors.transpose(0, 2, 1, 3)).reshape(-1, 4)


def arguments():
    return (generate_anchors,)
