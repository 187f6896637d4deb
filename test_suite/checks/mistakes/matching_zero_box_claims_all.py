"""The "> 0" guard put on the anchor's best IoU instead of the box's: the box that overlaps no anchor has
best IoU 0, every anchor ties with it, and every anchor overlapping anything becomes positive."""
import numpy as np

from retinanet.boxes import iou

CHECK, CAUSE, KEYWORD = "TEST_MATCHING", "matching.zero_box_claims_all", "overlaps no anchor: its best IoU is 0"


def match_anchors(anchors, gt_boxes):
    overlaps = np.asarray(iou(anchors, np.reshape(gt_boxes, (-1, 4))))
    if overlaps.shape[1] == 0:
        nothing = np.zeros(len(anchors), bool)
        return np.zeros(len(anchors), np.int32), nothing, nothing
    best, box_best = overlaps.max(axis=1), overlaps.max(axis=0)
    claimed = (overlaps == box_best).any(axis=1) & (best > 0)
    positive = (best >= 0.5) | claimed
    ignored = ~positive & (best >= 0.4)
    return overlaps.argmax(axis=1), positive, ignored


def arguments():
    return (match_anchors,)
