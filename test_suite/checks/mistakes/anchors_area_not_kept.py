"""Height = side · ratio with width = side: the aspect ratio changes the area."""
import numpy as np

from retinanet.anchors import ANCHOR_SIZES, PYRAMID_LEVELS

CHECK, CAUSE, KEYWORD = "TEST_ANCHORS", "anchors.area_not_kept", "keep the area"


def generate_anchors(image_height, image_width):
    levels = []
    for level, base in zip(PYRAMID_LEVELS, ANCHOR_SIZES):
        stride = 2 ** level
        rows, cols = int(np.ceil(image_height / stride)), int(np.ceil(image_width / stride))
        centre_y, centre_x = np.meshgrid((np.arange(rows) + 0.5) * stride, (np.arange(cols) + 0.5) * stride,
                                         indexing="ij")
        centres = np.stack([centre_x, centre_y], axis=-1).reshape(-1, 1, 2)
        sizes = [(base * scale, base * scale * ratio)
                 for ratio in (0.5, 1.0, 2.0) for scale in (1.0, 2 ** (1 / 3), 2 ** (2 / 3))]
        half = np.array(sizes).reshape(1, -1, 2) / 2
        levels.append(np.concatenate([centres - half, centres + half], axis=-1).reshape(-1, 4))
    return np.concatenate(levels).astype(np.float32)


def arguments():
    return (generate_anchors,)
