"""The box subnet also gets the prior bias."""
import numpy as np

from course import keras
from retinanet.fpn import FeaturePyramidNetwork
from retinanet.heads import build_head
from retinanet.model import RetinaNet as Reference

from course_checks.harness import small_backbone

CHECK, CAUSE, KEYWORD = "TEST_RETINANET", "model.box_bias", "only the classification head"


class RetinaNet(Reference):
    def __init__(self, num_classes, backbone=None):
        keras.Model.__init__(self, name="RetinaNet")
        self.num_classes = num_classes
        self.fpn = FeaturePyramidNetwork(backbone)
        prior = keras.initializers.Constant(-np.log((1 - 0.01) / 0.01))
        self.cls_head = build_head(9 * num_classes, bias_initializer=prior)
        self.box_head = build_head(9 * 4, bias_initializer=prior)


def arguments():
    return (RetinaNet(num_classes=3, backbone=small_backbone()),)
