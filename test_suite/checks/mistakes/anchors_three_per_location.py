"""Only the three aspect ratios at scale 1: 3 anchors per location instead of 9."""
from retinanet.anchors import generate_anchors as reference

CHECK, CAUSE, KEYWORD = "TEST_ANCHORS", "anchors.three_per_location", "9"


def generate_anchors(image_height, image_width):
    return reference(image_height, image_width).reshape(-1, 3, 3, 4)[:, :, 0].reshape(-1, 4)


def arguments():
    return (generate_anchors,)
