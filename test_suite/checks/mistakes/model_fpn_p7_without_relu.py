"""The model's FPN computes P7 without the ReLU on P6 (its own FPN mistake)."""
from course import keras
from retinanet.fpn import FeaturePyramidNetwork as ReferenceFPN
from retinanet.heads import build_head
from retinanet.model import RetinaNet as Reference

from course_checks.harness import small_backbone

CHECK, CAUSE, KEYWORD = "TEST_RETINANET", "model.fpn_differs", "run TEST_FPN"


class FeaturePyramidNetwork(ReferenceFPN):
    def call(self, images, training=False):
        c3, c4, c5 = self.backbone(images, training=training)
        lateral5 = self.conv_c5_1x1(c5)
        merged4 = self.conv_c4_1x1(c4) + self.upsample_2x(lateral5)
        merged3 = self.conv_c3_1x1(c3) + self.upsample_2x(merged4)
        p6 = self.conv_c6_3x3(c5)
        return (self.conv_c3_3x3(merged3), self.conv_c4_3x3(merged4), self.conv_c5_3x3(lateral5), p6,
                self.conv_c7_3x3(p6))


class RetinaNet(Reference):
    def __init__(self, num_classes, backbone=None):
        keras.Model.__init__(self, name="RetinaNet")
        self.num_classes = num_classes
        self.fpn = FeaturePyramidNetwork(backbone)
        self.cls_head = build_head(9 * num_classes, bias_initializer=keras.initializers.Constant(-4.59511985))
        self.box_head = build_head(9 * 4)


def arguments():
    return (RetinaNet(num_classes=3, backbone=small_backbone()),)
