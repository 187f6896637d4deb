"""The lateral convolutions are 3×3 instead of 1×1."""
from course import keras
from retinanet.fpn import FeaturePyramidNetwork as Reference

CHECK, CAUSE, KEYWORD = "TEST_FPN", "fpn.layer_config", "kernel_size"


class FeaturePyramidNetwork(Reference):
    def __init__(self, backbone=None, **kwargs):
        super().__init__(backbone, **kwargs)
        self.conv_c3_1x1 = keras.layers.Conv2D(256, 3, padding="same")
        self.conv_c4_1x1 = keras.layers.Conv2D(256, 3, padding="same")
        self.conv_c5_1x1 = keras.layers.Conv2D(256, 3, padding="same")


def arguments():
    return (FeaturePyramidNetwork,)
