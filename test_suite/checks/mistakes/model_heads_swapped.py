"""cls_head is built with 9·4 filters and box_head with 9·K: the two heads are swapped."""
from course import keras
from retinanet.fpn import FeaturePyramidNetwork
from retinanet.heads import build_head, prior_bias
from retinanet.model import RetinaNet as Reference

from course_checks.harness import small_backbone

CHECK, CAUSE, KEYWORD = "TEST_RESNET", "model.heads_swapped", "swapped"


class RetinaNet(Reference):
    def __init__(self, num_classes, backbone=None):
        super(Reference, self).__init__(name="RetinaNet")
        self.num_classes = num_classes
        self.fpn = FeaturePyramidNetwork(backbone)
        self.cls_head = build_head(9 * 4, bias_initializer=keras.initializers.Constant(prior_bias()))
        self.box_head = build_head(9 * num_classes)


def arguments():
    return (RetinaNet(num_classes=3, backbone=small_backbone()),)
