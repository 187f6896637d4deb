"""The score threshold written into the function (0.05) instead of the score_threshold argument."""
from retinanet.postprocess import decode_detections as reference

CHECK, CAUSE, KEYWORD = "TEST_DECODE", "decode.argument_ignored", "use the score_threshold argument"


def decode_detections(predictions, image_height, image_width, score_threshold=0.05, top_k_per_level=1000,
                      nms_iou_threshold=0.5, max_detections=100):
    return reference(predictions, image_height, image_width, 0.05, top_k_per_level, nms_iou_threshold,
                     max_detections)


def arguments():
    return (decode_detections,)
