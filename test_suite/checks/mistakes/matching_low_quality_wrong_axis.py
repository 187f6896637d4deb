"""The low-quality rule along the wrong axis: each anchor's best box (the maximum of its IoU row) instead of
each box's best anchors (the maximum of its column), so every overlapping anchor becomes positive."""
import numpy as np

from retinanet.boxes import iou

CHECK, CAUSE, KEYWORD = "TEST_MATCHING", "matching.wrong_axis", "each box's best anchors"


def match_anchors(anchors, gt_boxes):
    overlaps = np.asarray(iou(anchors, np.reshape(gt_boxes, (-1, 4))))
    if overlaps.shape[1] == 0:
        nothing = np.zeros(len(anchors), bool)
        return np.zeros(len(anchors), np.int32), nothing, nothing
    best = overlaps.max(axis=1)
    claimed = ((overlaps == overlaps.max(axis=1, keepdims=True)) & (overlaps > 0)).any(axis=1)
    positive = (best >= 0.5) | claimed
    ignored = ~positive & (best >= 0.4)
    return overlaps.argmax(axis=1), positive, ignored


def arguments():
    return (match_anchors,)
