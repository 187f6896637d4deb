"""No low-quality matches: a small box whose best anchor has IoU < 0.5 gets no positive anchor."""
import numpy as np

from retinanet.boxes import iou

CHECK, CAUSE, KEYWORD = "TEST_MATCHING", "matching.no_low_quality", "low-quality match"


def match_anchors(anchors, gt_boxes):
    overlaps = np.asarray(iou(anchors, np.reshape(gt_boxes, (-1, 4))))
    if overlaps.shape[1] == 0:
        nothing = np.zeros(len(anchors), bool)
        return np.zeros(len(anchors), np.int32), nothing, nothing
    best = overlaps.max(1)
    return overlaps.argmax(1), best >= 0.5, (best >= 0.4) & (best < 0.5)


def arguments():
    return (match_anchors,)
