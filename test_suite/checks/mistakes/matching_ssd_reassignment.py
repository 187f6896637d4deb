"""SSD-style: a claimed anchor is matched to the box that claims it, not to its own best box."""
import numpy as np

from retinanet.boxes import iou

CHECK, CAUSE, KEYWORD = "TEST_MATCHING", "matching.reassigned", "argmax of the anchor's own"


def match_anchors(anchors, gt_boxes):
    overlaps = np.asarray(iou(anchors, np.reshape(gt_boxes, (-1, 4))))
    if overlaps.shape[1] == 0:
        nothing = np.zeros(len(anchors), bool)
        return np.zeros(len(anchors), np.int32), nothing, nothing
    best, box_best = overlaps.max(axis=1), overlaps.max(axis=0)
    matched_index = overlaps.argmax(axis=1)
    positive, ignored = best >= 0.5, (best >= 0.4) & (best < 0.5)
    for box in range(overlaps.shape[1]):
        claimed = (overlaps[:, box] == box_best[box]) & (box_best[box] > 0)
        matched_index[claimed], positive[claimed], ignored[claimed] = box, True, False
    return matched_index, positive, ignored


def arguments():
    return (match_anchors,)
