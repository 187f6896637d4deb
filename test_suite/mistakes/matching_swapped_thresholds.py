"""Thresholds swapped: positive from IoU 0.4, background below 0.5 (never true together), so no ignored band."""
import numpy as np

from retinanet.boxes import iou

CHECK, KEYWORD = "TEST_MATCHING", "thresholds"


def match_anchors(anchors, gt_boxes):
    overlaps = np.asarray(iou(anchors, np.reshape(gt_boxes, (-1, 4))))
    if overlaps.shape[1] == 0:
        nothing = np.zeros(len(anchors), bool)
        return np.zeros(len(anchors), np.int32), nothing, nothing
    best = overlaps.max(1)
    positive, ignored = best >= 0.4, np.zeros(len(best), bool)
    for box in range(overlaps.shape[1]):
        positive[overlaps[:, box].argmax()] = True
    return overlaps.argmax(1), positive, ignored


def arguments():
    return (match_anchors,)
