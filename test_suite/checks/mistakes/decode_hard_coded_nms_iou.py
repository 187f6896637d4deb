"""The NMS IoU threshold written into the function (0.5) instead of the nms_iou_threshold argument."""
from retinanet.postprocess import decode_detections as reference

CHECK, CAUSE, KEYWORD = "TEST_DECODE", "decode.argument_ignored", "use the nms_iou_threshold argument"


def decode_detections(predictions, image_height, image_width, score_threshold=0.05, top_k_per_level=1000,
                      nms_iou_threshold=0.5, max_detections=100):
    return reference(predictions, image_height, image_width, score_threshold, top_k_per_level, 0.5, max_detections)


def arguments():
    return (decode_detections,)
