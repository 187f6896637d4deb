"""The P6 convolution is renamed in __init__ (self.conv_p6), so the pyramid lacks conv_c6_3x3."""
from course import keras, tf
from retinanet.fpn import FeaturePyramidNetwork as Reference

CHECK, CAUSE, KEYWORD = "TEST_FPN", "fpn.missing_layer", "no attribute `conv_c6_3x3`"


class FeaturePyramidNetwork(Reference):
    def __init__(self, backbone=None, **kwargs):
        super().__init__(backbone, **kwargs)
        self.conv_p6 = keras.layers.Conv2D(256, 3, strides=2, padding="same")
        del self.conv_c6_3x3

    def call(self, images, training=False):
        c3, c4, c5 = self.backbone(images, training=training)
        lateral5 = self.conv_c5_1x1(c5)
        merged4 = self.conv_c4_1x1(c4) + self.upsample_2x(lateral5)
        merged3 = self.conv_c3_1x1(c3) + self.upsample_2x(merged4)
        p6 = self.conv_p6(c5)
        return (self.conv_c3_3x3(merged3), self.conv_c4_3x3(merged4), self.conv_c5_3x3(lateral5), p6,
                self.conv_c7_3x3(tf.nn.relu(p6)))


def arguments():
    return (FeaturePyramidNetwork,)
