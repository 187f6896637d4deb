"""The Feature Pyramid Network: P3–P7 from C3–C5.

Lin et al., Sec. 4, "Feature Pyramid Network Backbone": the pyramid has levels P3 to P7, each with
C = 256 channels, where level l has stride 2^l. P3–P5 come from C3–C5 through FPN's top-down pathway
(1×1 lateral convolutions, nearest-neighbour 2× upsampling, element-wise sums, then a 3×3 convolution on
each merged map). Unlike the original FPN, P6 is a stride-2 3×3 convolution on **C5** (not on P5), and P7
is a stride-2 3×3 convolution on **ReLU(P6)**; P7 itself has no activation (footnote 2 of the paper).
"""

import copy

from retinanet._keras import keras, ops
from retinanet.backbone import get_backbone

FPN_CHANNELS = 256
"""C = 256 channels on every pyramid level (Sec. 4)."""

PYRAMID_LEVELS = (3, 4, 5, 6, 7)
"""Levels P3–P7; level l has stride 2**l (Sec. 4)."""

LATERAL_LAYERS = ("conv_c3_1x1", "conv_c4_1x1", "conv_c5_1x1")
"""Attribute names of the 1×1 lateral convolutions on C3, C4, C5."""

OUTPUT_LAYERS = ("conv_c3_3x3", "conv_c4_3x3", "conv_c5_3x3", "conv_c6_3x3", "conv_c7_3x3")
"""Attribute names of the 3×3 convolutions that give P3, P4, P5 (merged maps) and P6, P7 (stride 2)."""

FPN_LAYERS = LATERAL_LAYERS + OUTPUT_LAYERS
"""Every convolution of the pyramid, by attribute name; ``upsample_2x`` is the nearest-neighbour 2×."""


def pyramid_from_features(fpn, c3, c4, c5):
    """The FPN's wiring: ``(P3, P4, P5, P6, P7)`` from C3–C5 with the layers of ``fpn``.

    ``fpn`` is anything with the attributes named in :data:`FPN_LAYERS` and ``upsample_2x`` (a
    :class:`FeaturePyramidNetwork`, a learner's version of it): the same function builds the reference
    model and checks a learner's ``call`` on the learner's own layers.
    """
    top_down_p5 = fpn.conv_c5_1x1(c5)
    top_down_p4 = fpn.conv_c4_1x1(c4) + fpn.upsample_2x(top_down_p5)
    top_down_p3 = fpn.conv_c3_1x1(c3) + fpn.upsample_2x(top_down_p4)

    p3 = fpn.conv_c3_3x3(top_down_p3)
    p4 = fpn.conv_c4_3x3(top_down_p4)
    p5 = fpn.conv_c5_3x3(top_down_p5)
    p6 = fpn.conv_c6_3x3(c5)
    p7 = fpn.conv_c7_3x3(ops.relu(p6))
    return p3, p4, p5, p6, p7


def _conv(channels, kernel_size, strides=1):
    return keras.layers.Conv2D(channels, kernel_size, strides=strides, padding="same")


@keras.saving.register_keras_serializable(package="retinanet")
class FeaturePyramidNetwork(keras.layers.Layer):
    """Backbone plus top-down pathway; ``call(images)`` returns ``(P3, P4, P5, P6, P7)``.

    Args:
        backbone: a model mapping images to ``[C3, C4, C5]``; by default :func:`get_backbone` with any
            input size. Injecting one (a smaller network, or ImageNet-initialised ResNet50) is how the
            course tests and trains lighter variants.
        channels: of every pyramid level; the paper's :data:`FPN_CHANNELS` unless a recipe says otherwise
            (the CPU demo's, :data:`retinanet.run.recipes.CPU_HEAD_CHANNELS`).
    """

    def __init__(self, backbone=None, channels=FPN_CHANNELS, **kwargs):
        kwargs.setdefault("name", "FeaturePyramidNetwork")
        super().__init__(**kwargs)
        self.backbone = backbone if backbone is not None else get_backbone(input_shape=(None, None, 3))
        self.channels = int(channels)

        # Lateral 1×1 convolutions bring C3–C5 to 256 channels.
        self.conv_c3_1x1 = _conv(self.channels, 1)
        self.conv_c4_1x1 = _conv(self.channels, 1)
        self.conv_c5_1x1 = _conv(self.channels, 1)

        # 3×3 convolutions: smoothing of the merged maps (P3–P5) and the two extra coarse levels.
        self.conv_c3_3x3 = _conv(self.channels, 3)
        self.conv_c4_3x3 = _conv(self.channels, 3)
        self.conv_c5_3x3 = _conv(self.channels, 3)
        self.conv_c6_3x3 = _conv(self.channels, 3, strides=2)
        self.conv_c7_3x3 = _conv(self.channels, 3, strides=2)

        self.upsample_2x = keras.layers.UpSampling2D(2, interpolation="nearest")

    def call(self, images, training=False):
        c3, c4, c5 = self.backbone(images, training=training)
        return pyramid_from_features(self, c3, c4, c5)

    def get_config(self):
        """The layer's base config plus its width and backbone, so that ``from_config`` rebuilds the same network."""
        return {**super().get_config(), "channels": self.channels,
                "backbone": keras.saving.serialize_keras_object(self.backbone)}

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)  # deserialising consumes the nested config; keep the caller's intact
        return cls(backbone=keras.saving.deserialize_keras_object(config.pop("backbone")), **config)
