"""merged P3 adds the upsampled *lateral* C4 map instead of the merged P4 (P5's information is lost)."""
from course import tf
from retinanet.fpn import FeaturePyramidNetwork as Reference

CHECK, CAUSE, KEYWORD = "TEST_FPN", "fpn.p3_from_lateral_p4", "merged* P4"


class FeaturePyramidNetwork(Reference):
    def call(self, images, training=False):
        c3, c4, c5 = self.backbone(images, training=training)
        p5_1x1 = self.conv_c5_1x1(c5)
        p4_1x1 = self.conv_c4_1x1(c4)
        merged_p4 = p4_1x1 + self.upsample_2x(p5_1x1)
        merged_p3 = self.conv_c3_1x1(c3) + self.upsample_2x(p4_1x1)
        p6 = self.conv_c6_3x3(c5)
        return (self.conv_c3_3x3(merged_p3), self.conv_c4_3x3(merged_p4), self.conv_c5_3x3(p5_1x1), p6,
                self.conv_c7_3x3(tf.nn.relu(p6)))


def arguments():
    return (FeaturePyramidNetwork,)
