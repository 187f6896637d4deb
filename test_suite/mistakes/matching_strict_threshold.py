"""IoU > 0.5 instead of IoU ≥ 0.5 for positives: an anchor at exactly 0.5 becomes ignored."""
import numpy as np

from retinanet.boxes import iou

CHECK, KEYWORD = "TEST_MATCHING", "≥ vs >"


def match_anchors(anchors, gt_boxes):
    overlaps = np.asarray(iou(anchors, np.reshape(gt_boxes, (-1, 4))))
    if overlaps.shape[1] == 0:
        nothing = np.zeros(len(anchors), bool)
        return np.zeros(len(anchors), np.int32), nothing, nothing
    best = overlaps.max(1)
    positive, ignored = best > 0.5, (best >= 0.4) & (best <= 0.5)
    for box in range(overlaps.shape[1]):
        positive[overlaps[:, box].argmax()], ignored[overlaps[:, box].argmax()] = True, False
    return overlaps.argmax(1), positive, ignored


def arguments():
    return (match_anchors,)
