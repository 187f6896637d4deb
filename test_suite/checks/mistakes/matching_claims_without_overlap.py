"""Each box claims argmax of its column even when it overlaps no anchor."""
import numpy as np

from retinanet.boxes import iou

CHECK, CAUSE, KEYWORD = "TEST_MATCHING", "matching.no_overlap_claims", "overlaps no anchor"


def match_anchors(anchors, gt_boxes):
    overlaps = np.asarray(iou(anchors, np.reshape(gt_boxes, (-1, 4))))
    if overlaps.shape[1] == 0:
        nothing = np.zeros(len(anchors), bool)
        return np.zeros(len(anchors), np.int32), nothing, nothing
    best, box_best = overlaps.max(axis=1), overlaps.max(axis=0)
    positive, ignored = best >= 0.5, (best >= 0.4) & (best < 0.5)
    for box in range(overlaps.shape[1]):
        claimed = overlaps[:, box] == box_best[box]
        positive[claimed], ignored[claimed] = True, False
    return overlaps.argmax(axis=1), positive, ignored


def arguments():
    return (match_anchors,)
