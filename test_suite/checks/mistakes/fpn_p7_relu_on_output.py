"""The seed notebook's mistake: the ReLU sits on P7's output (activation='relu' on conv_c7_3x3)."""
from course import tf
from retinanet.fpn import FeaturePyramidNetwork as Reference

CHECK, CAUSE, KEYWORD = "TEST_FPN", "fpn.p7_relu_on_output", "ReLU on its output"


class FeaturePyramidNetwork(Reference):
    def call(self, images, training=False):
        c3, c4, c5 = self.backbone(images, training=training)
        p5_1x1 = self.conv_c5_1x1(c5)
        merged_p4 = self.conv_c4_1x1(c4) + self.upsample_2x(p5_1x1)
        merged_p3 = self.conv_c3_1x1(c3) + self.upsample_2x(merged_p4)
        p6 = self.conv_c6_3x3(c5)
        return (self.conv_c3_3x3(merged_p3), self.conv_c4_3x3(merged_p4), self.conv_c5_3x3(p5_1x1), p6,
                tf.nn.relu(self.conv_c7_3x3(tf.nn.relu(p6))))


def arguments():
    return (FeaturePyramidNetwork,)
