"""The stride computed as image size / number of cells instead of 2^level: wrong where a side is not a
multiple of the level's stride (P6 and P7 of a 64×96 image)."""
import math

import numpy as np

from retinanet.anchors import ANCHOR_SIZES, PYRAMID_LEVELS, anchor_shapes

CHECK, CAUSE, KEYWORD = "TEST_ANCHORS", "anchors.stride_from_cells", "image size / cells"


def generate_anchors(image_height, image_width):
    levels = []
    for level, base in zip(PYRAMID_LEVELS, ANCHOR_SIZES):
        rows, cols = math.ceil(image_height / 2 ** level), math.ceil(image_width / 2 ** level)
        stride_y, stride_x = image_height / rows, image_width / cols
        y, x = np.meshgrid((np.arange(rows) + 0.5) * stride_y, (np.arange(cols) + 0.5) * stride_x, indexing="ij")
        centres = np.stack([x, y], -1).reshape(-1, 1, 2)
        half = anchor_shapes(base).reshape(1, -1, 2) / 2
        levels.append(np.concatenate([centres - half, centres + half], -1).reshape(-1, 4))
    return np.concatenate(levels).astype(np.float32)


def arguments():
    return (generate_anchors,)
