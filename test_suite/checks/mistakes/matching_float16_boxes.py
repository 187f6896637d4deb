"""The ground-truth boxes are converted to float16 (to save memory): coordinates in the hundreds lose their
fractions (steps of 0.25), so anchors within a hair of the 0.5 / 0.4 thresholds change label."""
import numpy as np

from retinanet.boxes import iou

CHECK, CAUSE, KEYWORD = "TEST_MATCHING", "matching.precision", "rounded to float16"


def match_anchors(anchors, gt_boxes):
    gt_boxes = np.reshape(np.asarray(gt_boxes, np.float16), (-1, 4)).astype(np.float32)
    overlaps = np.asarray(iou(anchors, gt_boxes))
    if overlaps.shape[1] == 0:
        nothing = np.zeros(len(anchors), bool)
        return np.zeros(len(anchors), np.int32), nothing, nothing
    best, box_best = overlaps.max(1), overlaps.max(0)
    forced = ((overlaps == box_best) & (box_best > 0)).any(1)
    positive = (best >= 0.5) | forced
    return overlaps.argmax(1), positive, (best >= 0.4) & ~positive


def arguments():
    return (match_anchors,)
