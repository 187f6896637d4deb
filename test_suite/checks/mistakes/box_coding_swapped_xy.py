"""Deltas in [dy, dx, dh, dw] order: x and y swapped."""
from retinanet.boxes import decode, encode as reference_encode

CHECK, CAUSE, KEYWORD = "TEST_BOX_CODING", "box_coding.encode_swapped_xy", "x and y swapped"


def encode(anchors, boxes):
    return reference_encode(anchors, boxes).numpy()[:, [1, 0, 3, 2]]


def arguments():
    return encode, decode
