"""matched_index holds each anchor's best IoU (max) instead of the box's index (argmax)."""
import numpy as np

from retinanet.boxes import iou

CHECK, CAUSE, KEYWORD = "TEST_MATCHING", "matching.wrong_box", "its highest IoU is with box 0"


def match_anchors(anchors, gt_boxes):
    overlaps = np.asarray(iou(anchors, np.reshape(gt_boxes, (-1, 4))))
    if overlaps.shape[1] == 0:
        nothing = np.zeros(len(anchors), bool)
        return np.zeros(len(anchors), np.int32), nothing, nothing
    best, box_best = overlaps.max(axis=1), overlaps.max(axis=0)
    forced = ((overlaps == box_best) & (box_best > 0)).any(axis=1)
    positive = (best >= 0.5) | forced
    return best, positive, (best >= 0.4) & ~positive


def arguments():
    return (match_anchors,)
