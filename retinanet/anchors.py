"""Anchor boxes on P3–P7.

Lin et al., Sec. 4, "Anchors": on pyramid level l (stride 2^l) the anchors have areas 32² … 512² on
P3 … P7; at each location there are A = 9 anchors, the three sizes {2^0, 2^(1/3), 2^(2/3)} times the base
size, each with the three aspect ratios {1:2, 1:1, 2:1}. Together they cover 32 to 813 pixels.

Order (shared with :class:`retinanet.RetinaNet`'s output): level P3 … P7, then row, then column, then
the 9 anchors of a location (aspect ratio major, scale minor). Anchors are centred in their cells.
"""

import math

import numpy as np

from retinanet.fpn import PYRAMID_LEVELS

ANCHOR_SIZES = (32.0, 64.0, 128.0, 256.0, 512.0)
"""Base side length of the anchors on P3 … P7 (areas 32² … 512², Sec. 4)."""

ANCHOR_SCALES = (2.0 ** 0, 2.0 ** (1.0 / 3.0), 2.0 ** (2.0 / 3.0))
"""Octave scales applied to the base size at each location (Sec. 4)."""

ASPECT_RATIOS = (0.5, 1.0, 2.0)
"""Height : width ratios 1:2, 1:1 and 2:1 (Sec. 4)."""

ANCHORS_PER_LOCATION = len(ANCHOR_SCALES) * len(ASPECT_RATIOS)
"""A = 9 (Sec. 4)."""

SIZE_DIVISOR = 2 ** 5
"""Image sides must be multiples of 32, the stride of C5, so that the top-down sums line up."""


def level_stride(level):
    """Stride of pyramid level ``level`` relative to the image: 2**level."""
    return 2 ** level


def check_image_size(image_height, image_width):
    """Raise ``ValueError`` unless both sides are positive multiples of :data:`SIZE_DIVISOR`."""
    for name, side in (("image_height", image_height), ("image_width", image_width)):
        if int(side) != side or side <= 0 or side % SIZE_DIVISOR:
            raise ValueError(f"{name} must be a positive multiple of {SIZE_DIVISOR}, got {side}")


def feature_map_shapes(image_height, image_width):
    """``[(rows, cols)]`` of P3 … P7 for an image; 'same'-padded stride-2 convs round up on P6 and P7."""
    check_image_size(image_height, image_width)
    return [
        (math.ceil(image_height / level_stride(level)), math.ceil(image_width / level_stride(level)))
        for level in PYRAMID_LEVELS
    ]


def anchors_per_level(image_height, image_width):
    """Number of anchors on each of P3 … P7, in output order."""
    return [rows * cols * ANCHORS_PER_LOCATION for rows, cols in feature_map_shapes(image_height, image_width)]


def anchor_shapes(base_size):
    """``(9, 2)`` widths and heights of the anchors of one location, aspect ratio major, scale minor."""
    shapes = []
    for ratio in ASPECT_RATIOS:
        for scale in ANCHOR_SCALES:
            side = base_size * scale  # the anchor's area is side², whatever its aspect ratio
            shapes.append((side / math.sqrt(ratio), side * math.sqrt(ratio)))
    return np.array(shapes, dtype=np.float64)


def generate_anchors(image_height, image_width):
    """All anchors of an image as float32 ``(N, 4)`` boxes ``[x1, y1, x2, y2]`` in pixels.

    ``N = 9 · Σ_l rows_l · cols_l``: 3,069 for 128×128 and 49,104 for 512×512.
    """
    levels = []
    for level, base_size, (rows, cols) in zip(
        PYRAMID_LEVELS, ANCHOR_SIZES, feature_map_shapes(image_height, image_width)
    ):
        stride = level_stride(level)
        centre_y, centre_x = np.meshgrid(
            (np.arange(rows) + 0.5) * stride, (np.arange(cols) + 0.5) * stride, indexing="ij"
        )
        centres = np.stack([centre_x, centre_y], axis=-1).reshape(-1, 1, 2)  # (rows·cols, 1, 2)
        half_sizes = anchor_shapes(base_size).reshape(1, -1, 2) / 2.0        # (1, 9, 2)
        boxes = np.concatenate([centres - half_sizes, centres + half_sizes], axis=-1)
        levels.append(boxes.reshape(-1, 4))
    return np.concatenate(levels, axis=0).astype(np.float32)
