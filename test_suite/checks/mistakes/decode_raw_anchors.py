"""The anchors themselves are returned as boxes: the predicted deltas are never decoded."""
import numpy as np

from retinanet.postprocess import decode_detections as reference

CHECK, CAUSE, KEYWORD = "TEST_DECODE", "decode.raw_anchors", "decode the predicted deltas"


def decode_detections(predictions, image_height, image_width, score_threshold=0.05, top_k_per_level=1000,
                      nms_iou_threshold=0.5, max_detections=100):
    predictions = np.array(predictions, np.float32)
    predictions[..., :4] = 0.0  # deltas ignored: every box is its anchor
    return reference(predictions, image_height, image_width, score_threshold, top_k_per_level,
                     nms_iou_threshold, max_detections)


def arguments():
    return (decode_detections,)
