"""The '+1' pixel convention: x2 = x1 + w − 1, so every anchor is one pixel short in width and height."""
import numpy as np

from retinanet.anchors import ANCHOR_SIZES, PYRAMID_LEVELS, anchor_shapes, feature_map_shapes

CHECK, CAUSE, KEYWORD = "TEST_ANCHORS", "anchors.plus_one", "'+1' pixel convention"


def generate_anchors(image_height, image_width):
    levels = []
    for level, base, (rows, cols) in zip(PYRAMID_LEVELS, ANCHOR_SIZES, feature_map_shapes(image_height, image_width)):
        stride = 2 ** level
        y, x = np.meshgrid((np.arange(rows) + 0.5) * stride, (np.arange(cols) + 0.5) * stride, indexing="ij")
        centres = np.stack([x, y], -1).reshape(-1, 1, 2)
        half = (anchor_shapes(base).reshape(1, -1, 2) - 1) / 2
        levels.append(np.concatenate([centres - half, centres + half], -1).reshape(-1, 4))
    return np.concatenate(levels).astype(np.float32)


def arguments():
    return (generate_anchors,)
