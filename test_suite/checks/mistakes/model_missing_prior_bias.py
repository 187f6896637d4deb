"""The classification head keeps a zero bias: no prior π = 0.01 (Sec. 3.3, 4.1)."""
from retinanet.fpn import FeaturePyramidNetwork
from retinanet.heads import build_head
from retinanet.model import RetinaNet as Reference

from course_checks.harness import small_backbone

CHECK, CAUSE, KEYWORD = "TEST_RESNET", "model.prior_missing", "missing prior bias"


class RetinaNet(Reference):
    def __init__(self, num_classes, backbone=None):
        super(Reference, self).__init__(name="RetinaNet")
        self.num_classes = num_classes
        self.fpn = FeaturePyramidNetwork(backbone)
        self.cls_head = build_head(9 * num_classes)
        self.box_head = build_head(9 * 4)


def arguments():
    return (RetinaNet(num_classes=3, backbone=small_backbone()),)
