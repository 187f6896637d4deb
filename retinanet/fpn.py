"""The Feature Pyramid Network: P3–P7 from C3–C5.

Lin et al., Sec. 4, "Feature Pyramid Network Backbone": the pyramid has levels P3 to P7, each with
C = 256 channels, where level l has stride 2^l. P3–P5 come from C3–C5 through FPN's top-down pathway
(1×1 lateral convolutions, nearest-neighbour 2× upsampling, element-wise sums, then a 3×3 convolution on
each merged map). Unlike the original FPN, P6 is a stride-2 3×3 convolution on **C5** (not on P5), and P7
is a stride-2 3×3 convolution on **ReLU(P6)**; P7 itself has no activation (footnote 2 of the paper).
"""

from retinanet._tf import keras, tf
from retinanet.backbone import get_backbone

FPN_CHANNELS = 256
"""C = 256 channels on every pyramid level (Sec. 4)."""

PYRAMID_LEVELS = (3, 4, 5, 6, 7)
"""Levels P3–P7; level l has stride 2**l (Sec. 4)."""


def _conv(kernel_size, strides=1):
    return keras.layers.Conv2D(FPN_CHANNELS, kernel_size, strides=strides, padding="same")


class FeaturePyramidNetwork(keras.layers.Layer):
    """Backbone plus top-down pathway; ``call(images)`` returns ``(P3, P4, P5, P6, P7)``.

    Args:
        backbone: a model mapping images to ``[C3, C4, C5]``; by default :func:`get_backbone` with any
            input size. Injecting one (a smaller network, or ImageNet-initialised ResNet50) is how the
            course tests and trains lighter variants.
    """

    def __init__(self, backbone=None, **kwargs):
        kwargs.setdefault("name", "FeaturePyramidNetwork")
        super().__init__(**kwargs)
        self.backbone = backbone if backbone is not None else get_backbone(input_shape=(None, None, 3))

        # Lateral 1×1 convolutions bring C3–C5 to 256 channels.
        self.conv_c3_1x1 = _conv(1)
        self.conv_c4_1x1 = _conv(1)
        self.conv_c5_1x1 = _conv(1)

        # 3×3 convolutions: smoothing of the merged maps (P3–P5) and the two extra coarse levels.
        self.conv_c3_3x3 = _conv(3)
        self.conv_c4_3x3 = _conv(3)
        self.conv_c5_3x3 = _conv(3)
        self.conv_c6_3x3 = _conv(3, strides=2)
        self.conv_c7_3x3 = _conv(3, strides=2)

        self.upsample_2x = keras.layers.UpSampling2D(2, interpolation="nearest")

    def call(self, images, training=False):
        c3, c4, c5 = self.backbone(images, training=training)

        top_down_p5 = self.conv_c5_1x1(c5)
        top_down_p4 = self.conv_c4_1x1(c4) + self.upsample_2x(top_down_p5)
        top_down_p3 = self.conv_c3_1x1(c3) + self.upsample_2x(top_down_p4)

        p3 = self.conv_c3_3x3(top_down_p3)
        p4 = self.conv_c4_3x3(top_down_p4)
        p5 = self.conv_c5_3x3(top_down_p5)
        p6 = self.conv_c6_3x3(c5)
        p7 = self.conv_c7_3x3(tf.nn.relu(p6))
        return p3, p4, p5, p6, p7
