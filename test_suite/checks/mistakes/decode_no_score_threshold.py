"""No score threshold: candidates scoring below 0.05 survive."""
from retinanet.postprocess import decode_detections as reference

CHECK, CAUSE, KEYWORD = "TEST_DECODE", "decode.below_threshold", "below 0.05"


def decode_detections(predictions, image_height, image_width, score_threshold=0.05, top_k_per_level=1000,
                      nms_iou_threshold=0.5, max_detections=100):
    return reference(predictions, image_height, image_width, 0.01, top_k_per_level, nms_iou_threshold,
                     max_detections)


def arguments():
    return (decode_detections,)
