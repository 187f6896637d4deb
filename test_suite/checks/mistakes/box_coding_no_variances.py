"""Encode and decode without the variances (0.1, 0.1, 0.2, 0.2)."""
from retinanet.boxes import decode as reference_decode, encode as reference_encode, BOX_VARIANCES

CHECK, CAUSE, KEYWORD = "TEST_BOX_CODING", "box_coding.encode_no_variances", "variances"


def encode(anchors, boxes):
    return reference_encode(anchors, boxes) * BOX_VARIANCES


def decode(anchors, deltas):
    return reference_decode(anchors, deltas / BOX_VARIANCES)


def arguments():
    return encode, decode
