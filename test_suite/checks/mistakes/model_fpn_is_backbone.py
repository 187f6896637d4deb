"""self.fpn is the backbone itself, not a FeaturePyramidNetwork around it."""
from course import keras
from retinanet.heads import build_head
from retinanet.model import RetinaNet as Reference

from course_checks.harness import small_backbone

CHECK, CAUSE, KEYWORD = "TEST_RETINANET", "model.fpn_type", "should be your FeaturePyramidNetwork"


class RetinaNet(Reference):
    def __init__(self, num_classes, backbone=None):
        keras.Model.__init__(self, name="RetinaNet")
        self.num_classes = num_classes
        self.fpn = backbone
        self.cls_head = build_head(9 * num_classes, bias_initializer=keras.initializers.Constant(-4.59511985))
        self.box_head = build_head(9 * 4)


def arguments():
    return (RetinaNet(num_classes=3, backbone=small_backbone()),)
