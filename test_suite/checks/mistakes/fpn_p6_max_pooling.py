"""P6 by stride-2 max pooling, as the original FPN subsamples P5, instead of a stride-2 convolution."""
from course import keras, tf
from retinanet.fpn import FeaturePyramidNetwork as Reference

CHECK, CAUSE, KEYWORD = "TEST_FPN", "fpn.not_conv", "should be a Conv2D layer"


class FeaturePyramidNetwork(Reference):
    def __init__(self, backbone=None, **kwargs):
        super().__init__(backbone, **kwargs)
        self.conv_c6_3x3 = keras.layers.MaxPooling2D(1, strides=2)

    def call(self, images, training=False):
        c3, c4, c5 = self.backbone(images, training=training)
        lateral5 = self.conv_c5_1x1(c5)
        merged4 = self.conv_c4_1x1(c4) + self.upsample_2x(lateral5)
        merged3 = self.conv_c3_1x1(c3) + self.upsample_2x(merged4)
        p5 = self.conv_c5_3x3(lateral5)
        p6 = self.conv_c6_3x3(p5)
        return self.conv_c3_3x3(merged3), self.conv_c4_3x3(merged4), p5, p6, self.conv_c7_3x3(tf.nn.relu(p6))


def arguments():
    return (FeaturePyramidNetwork,)
