"""The classification subnet is stored as self.classification_head instead of self.cls_head."""
from course import keras
from retinanet.fpn import FeaturePyramidNetwork
from retinanet.heads import build_head
from retinanet.model import RetinaNet as Reference

from course_checks.harness import small_backbone

CHECK, CAUSE, KEYWORD = "TEST_RETINANET", "model.missing_attribute", "no attribute `cls_head`"


class RetinaNet(Reference):
    def __init__(self, num_classes, backbone=None):
        keras.Model.__init__(self, name="RetinaNet")
        self.num_classes = num_classes
        self.fpn = FeaturePyramidNetwork(backbone)
        self.classification_head = build_head(9 * num_classes)
        self.box_head = build_head(9 * 4)


def arguments():
    return (RetinaNet(num_classes=3, backbone=small_backbone()),)
