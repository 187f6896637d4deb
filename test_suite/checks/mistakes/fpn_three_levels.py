"""Only P3, P4 and P5 are returned; the two coarse levels P6 and P7 are missing."""
from retinanet.fpn import FeaturePyramidNetwork as Reference

CHECK, CAUSE, KEYWORD = "TEST_FPN", "fpn.output_count", "five maps"


class FeaturePyramidNetwork(Reference):
    def call(self, images, training=False):
        c3, c4, c5 = self.backbone(images, training=training)
        lateral5 = self.conv_c5_1x1(c5)
        merged4 = self.conv_c4_1x1(c4) + self.upsample_2x(lateral5)
        merged3 = self.conv_c3_1x1(c3) + self.upsample_2x(merged4)
        return self.conv_c3_3x3(merged3), self.conv_c4_3x3(merged4), self.conv_c5_3x3(lateral5)


def arguments():
    return (FeaturePyramidNetwork,)
