"""Anchor centres built with x from the rows and y from the columns (swapped on non-square images)."""
import numpy as np

from retinanet.anchors import ANCHOR_SIZES, PYRAMID_LEVELS, anchor_shapes, feature_map_shapes

CHECK, CAUSE, KEYWORD = "TEST_ANCHORS", "anchors.swapped_xy", "x and y swapped"


def generate_anchors(image_height, image_width):
    levels = []
    for level, base, (rows, cols) in zip(PYRAMID_LEVELS, ANCHOR_SIZES, feature_map_shapes(image_height, image_width)):
        stride = 2 ** level
        x, y = np.meshgrid((np.arange(rows) + 0.5) * stride, (np.arange(cols) + 0.5) * stride, indexing="ij")
        centres = np.stack([x, y], -1).reshape(-1, 1, 2)
        half = anchor_shapes(base)[:, ::-1].reshape(1, -1, 2) / 2
        levels.append(np.concatenate([centres - half, centres + half], -1).reshape(-1, 4))
    return np.concatenate(levels).astype(np.float32)


def arguments():
    return (generate_anchors,)
