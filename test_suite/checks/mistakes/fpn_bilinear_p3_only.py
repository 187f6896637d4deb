"""Nearest-neighbour upsampling for merged P4, but tf.image.resize (bilinear) for merged P3 only: the
bilinear message used to be tried on P4 alone."""
from course import tf
from retinanet.fpn import FeaturePyramidNetwork as Reference

CHECK, CAUSE, KEYWORD = "TEST_FPN", "fpn.bilinear", "upsampled bilinearly"


class FeaturePyramidNetwork(Reference):
    def call(self, images, training=False):
        c3, c4, c5 = self.backbone(images, training=training)
        lateral5 = self.conv_c5_1x1(c5)
        merged4 = self.conv_c4_1x1(c4) + self.upsample_2x(lateral5)
        lateral3 = self.conv_c3_1x1(c3)
        merged3 = lateral3 + tf.image.resize(merged4, tf.shape(lateral3)[1:3])
        p6 = self.conv_c6_3x3(c5)
        return (self.conv_c3_3x3(merged3), self.conv_c4_3x3(merged4), self.conv_c5_3x3(lateral5), p6,
                self.conv_c7_3x3(tf.nn.relu(p6)))


def arguments():
    return (FeaturePyramidNetwork,)
