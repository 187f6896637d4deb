"""The top-down path carries the smoothed outputs (P5, then P4) instead of the merged maps."""
from course import tf
from retinanet.fpn import FeaturePyramidNetwork as Reference

CHECK, CAUSE, KEYWORD = "TEST_FPN", "fpn.top_down_from_p5", "upsampled P5 *output*"


class FeaturePyramidNetwork(Reference):
    def call(self, images, training=False):
        c3, c4, c5 = self.backbone(images, training=training)
        lateral5 = self.conv_c5_1x1(c5)
        p5 = self.conv_c5_3x3(lateral5)
        p4 = self.conv_c4_3x3(self.conv_c4_1x1(c4) + self.upsample_2x(p5))
        p3 = self.conv_c3_3x3(self.conv_c3_1x1(c3) + self.upsample_2x(p4))
        p6 = self.conv_c6_3x3(c5)
        return p3, p4, p5, p6, self.conv_c7_3x3(tf.nn.relu(p6))


def arguments():
    return (FeaturePyramidNetwork,)
