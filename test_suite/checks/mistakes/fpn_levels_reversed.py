"""The levels are returned coarse to fine, (P7, …, P3)."""
from retinanet.fpn import FeaturePyramidNetwork as Reference

CHECK, CAUSE, KEYWORD = "TEST_FPN", "fpn.levels_reversed", "wrong order"


class FeaturePyramidNetwork(Reference):
    def call(self, images, training=False):
        return tuple(reversed(super().call(images, training=training)))


def arguments():
    return (FeaturePyramidNetwork,)
