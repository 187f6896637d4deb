"""IoU > 0.5 instead of IoU ≥ 0.5 for positives: an anchor at exactly 0.5 becomes ignored."""
import numpy as np

from retinanet.boxes import iou

CHECK, CAUSE, KEYWORD = "TEST_MATCHING", "matching.strict_positive", "≥ vs >"


def match_anchors(anchors, gt_boxes):
    overlaps = np.asarray(iou(anchors, np.reshape(gt_boxes, (-1, 4))))
    if overlaps.shape[1] == 0:
        nothing = np.zeros(len(anchors), bool)
        return np.zeros(len(anchors), np.int32), nothing, nothing
    best, box_best = overlaps.max(1), overlaps.max(0)
    forced = ((overlaps == box_best) & (box_best > 0)).any(1)
    positive = (best > 0.5) | forced
    return overlaps.argmax(1), positive, (best >= 0.4) & ~positive


def arguments():
    return (match_anchors,)
