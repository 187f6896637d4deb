"""Only the two masks are returned, without matched_index."""
import numpy as np

from retinanet.boxes import iou

CHECK, CAUSE, KEYWORD = "TEST_MATCHING", "matching.returns", "three things"


def match_anchors(anchors, gt_boxes):
    overlaps = np.asarray(iou(anchors, np.reshape(gt_boxes, (-1, 4))))
    if overlaps.shape[1] == 0:
        nothing = np.zeros(len(anchors), bool)
        return nothing, nothing
    best, box_best = overlaps.max(axis=1), overlaps.max(axis=0)
    forced = ((overlaps == box_best) & (box_best > 0)).any(axis=1)
    positive = (best >= 0.5) | forced
    return positive, (best >= 0.4) & ~positive


def arguments():
    return (match_anchors,)
