"""ignored = IoU ≥ 0.4, without excluding the positive anchors."""
import numpy as np

from retinanet.boxes import iou

CHECK, CAUSE, KEYWORD = "TEST_MATCHING", "matching.both", "both positive and ignored"


def match_anchors(anchors, gt_boxes):
    overlaps = np.asarray(iou(anchors, np.reshape(gt_boxes, (-1, 4))))
    if overlaps.shape[1] == 0:
        nothing = np.zeros(len(anchors), bool)
        return np.zeros(len(anchors), np.int32), nothing, nothing
    best, box_best = overlaps.max(axis=1), overlaps.max(axis=0)
    forced = ((overlaps == box_best) & (box_best > 0)).any(axis=1)
    return overlaps.argmax(axis=1), (best >= 0.5) | forced, (best >= 0.4) & ~forced


def arguments():
    return (match_anchors,)
