"""The thresholds are applied to the whole IoU matrix: (N, M) masks instead of (N,)."""
import numpy as np

from retinanet.boxes import iou

CHECK, CAUSE, KEYWORD = "TEST_MATCHING", "matching.shapes", "one entry per anchor"


def match_anchors(anchors, gt_boxes):
    overlaps = np.asarray(iou(anchors, np.reshape(gt_boxes, (-1, 4))))
    if overlaps.shape[1] == 0:
        nothing = np.zeros(len(anchors), bool)
        return np.zeros(len(anchors), np.int32), nothing, nothing
    best, box_best = overlaps.max(axis=1), overlaps.max(axis=0)
    positive = overlaps >= 0.5
    return overlaps.argmax(axis=1), positive, (overlaps >= 0.4) & ~positive


def arguments():
    return (match_anchors,)
