"""num_classes is stored as a float."""
from course import keras
from retinanet.fpn import FeaturePyramidNetwork
from retinanet.heads import build_head
from retinanet.model import RetinaNet as Reference

from course_checks.harness import small_backbone

CHECK, CAUSE, KEYWORD = "TEST_RETINANET", "model.num_classes", "found 3.0"


class RetinaNet(Reference):
    def __init__(self, num_classes, backbone=None):
        keras.Model.__init__(self, name="RetinaNet")
        self.num_classes = float(num_classes)
        self.fpn = FeaturePyramidNetwork(backbone)
        self.cls_head = build_head(9 * num_classes, bias_initializer=keras.initializers.Constant(-4.59511985))
        self.box_head = build_head(9 * 4)


def arguments():
    return (RetinaNet(num_classes=3, backbone=small_backbone()),)
