"""Anchors against the paper (Lin et al., Sec. 4, "Anchors"): 9 per location on P3–P7, areas 32²…512²,
scales {2^0, 2^(1/3), 2^(2/3)}, aspect ratios {1:2, 1:1, 2:1}, strides 2^3…2^7, centred in their cells."""

import math

import numpy as np
import pytest

from retinanet.anchors import anchors_per_level, feature_map_shapes, generate_anchors

pytestmark = pytest.mark.backends("tensorflow", "jax")

PAPER_SIZES = (32, 64, 128, 256, 512)
PAPER_STRIDES = (8, 16, 32, 64, 128)
PAPER_SCALES = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))
PAPER_RATIOS = (0.5, 1.0, 2.0)  # height / width


def split_levels(anchors, height, width):
    """The anchors of each level as ``(rows, cols, 9, 4)``, rows/cols computed here from the strides."""
    levels, start = [], 0
    for stride in PAPER_STRIDES:
        rows, cols = math.ceil(height / stride), math.ceil(width / stride)
        count = rows * cols * 9
        levels.append(anchors[start : start + count].reshape(rows, cols, 9, 4))
        start += count
    assert start == len(anchors)
    return levels


@pytest.mark.parametrize("size, expected", [(128, 3069), (512, 49104)])
def test_anchor_count(size, expected):
    anchors = generate_anchors(size, size)
    assert anchors.shape == (expected, 4)
    assert anchors.dtype == np.float32


def test_counts_per_level():
    assert anchors_per_level(128, 128) == [16 * 16 * 9, 8 * 8 * 9, 4 * 4 * 9, 2 * 2 * 9, 1 * 1 * 9]
    assert anchors_per_level(512, 512) == [64 * 64 * 9, 32 * 32 * 9, 16 * 16 * 9, 8 * 8 * 9, 4 * 4 * 9]
    # A non-square image whose P6/P7 sides round up, as a 'same'-padded stride-2 convolution does.
    assert feature_map_shapes(96, 160) == [(12, 20), (6, 10), (3, 5), (2, 3), (1, 2)]
    assert anchors_per_level(96, 160) == [12 * 20 * 9, 6 * 10 * 9, 3 * 5 * 9, 2 * 3 * 9, 1 * 2 * 9]


@pytest.mark.parametrize("height, width", [(128, 128), (96, 160)])
def test_areas_scales_and_aspect_ratios_on_every_level(height, width):
    anchors = generate_anchors(height, width).astype(np.float64)
    for level, size in zip(split_levels(anchors, height, width), PAPER_SIZES):
        widths = level[..., 2] - level[..., 0]
        heights = level[..., 3] - level[..., 1]
        expected_areas = sorted((size * scale) ** 2 for scale in PAPER_SCALES for _ in PAPER_RATIOS)
        expected_ratios = sorted(ratio for _ in PAPER_SCALES for ratio in PAPER_RATIOS)
        for areas, ratios in zip((widths * heights).reshape(-1, 9), (heights / widths).reshape(-1, 9)):
            np.testing.assert_allclose(sorted(areas), expected_areas, rtol=1e-5)
            np.testing.assert_allclose(sorted(ratios), expected_ratios, rtol=1e-5)


def test_the_nine_anchors_of_a_location_are_ratio_major_scale_minor():
    first_location = generate_anchors(128, 128)[:9].astype(np.float64)
    widths = first_location[:, 2] - first_location[:, 0]
    heights = first_location[:, 3] - first_location[:, 1]
    expected = [(32 * s / math.sqrt(r), 32 * s * math.sqrt(r)) for r in PAPER_RATIOS for s in PAPER_SCALES]
    np.testing.assert_allclose(np.stack([widths, heights], axis=1), expected, rtol=1e-5)
    # Hand value: the 1:2 (h:w) anchor of scale 1 on P3 is 32·√2 wide and 32/√2 high, centred at (4, 4).
    np.testing.assert_allclose(first_location[0], [4 - 16 * 2 ** 0.5, 4 - 8 * 2 ** 0.5, 4 + 16 * 2 ** 0.5, 4 + 8 * 2 ** 0.5], rtol=1e-5)


@pytest.mark.parametrize("height, width", [(128, 128), (96, 160)])
def test_centres_follow_level_row_col_order(height, width):
    anchors = generate_anchors(height, width).astype(np.float64)
    for level, stride in zip(split_levels(anchors, height, width), PAPER_STRIDES):
        rows, cols = level.shape[:2]
        centre_x = (level[..., 0] + level[..., 2]) / 2
        centre_y = (level[..., 1] + level[..., 3]) / 2
        expected_x = np.broadcast_to(((np.arange(cols) + 0.5) * stride)[None, :, None], (rows, cols, 9))
        expected_y = np.broadcast_to(((np.arange(rows) + 0.5) * stride)[:, None, None], (rows, cols, 9))
        np.testing.assert_allclose(centre_x, expected_x, atol=1e-3)
        np.testing.assert_allclose(centre_y, expected_y, atol=1e-3)


def test_level_blocks_come_in_p3_to_p7_order():
    anchors = generate_anchors(128, 128).astype(np.float64)
    sides = np.sqrt((anchors[:, 2] - anchors[:, 0]) * (anchors[:, 3] - anchors[:, 1]))
    starts = np.cumsum([0] + anchors_per_level(128, 128))
    for start, stop, size in zip(starts[:-1], starts[1:], PAPER_SIZES):
        assert sides[start:stop].min() == pytest.approx(size, rel=1e-5)
        assert sides[start:stop].max() == pytest.approx(size * 2 ** (2 / 3), rel=1e-5)


def test_scale_range_is_32_to_813_pixels():
    anchors = generate_anchors(512, 512).astype(np.float64)
    sides = np.sqrt((anchors[:, 2] - anchors[:, 0]) * (anchors[:, 3] - anchors[:, 1]))
    assert sides.min() == pytest.approx(32.0, rel=1e-5)
    assert sides.max() == pytest.approx(812.7, abs=0.1)  # 512 · 2^(2/3), "up to 813 pixels"


@pytest.mark.parametrize("height, width", [(100, 128), (128, 100), (0, 128), (-32, 128), (128, 31.5), (16, 16)])
def test_sizes_that_are_not_positive_multiples_of_32_are_rejected(height, width):
    with pytest.raises(ValueError, match="multiple of 32"):
        generate_anchors(height, width)
