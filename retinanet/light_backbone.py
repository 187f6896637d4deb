"""A small residual backbone for CPU training: C3, C4, C5 at strides 8, 16, 32.

The paper's backbone is an ImageNet-pretrained ResNet-50/101 (Lin et al., Sec. 4, 4.1). Without
pretrained weights and on a 2-core CPU, ResNet-50 from scratch cannot learn the course's synthetic data in
the ``make demo`` time budget, so the CPU default swaps in this network: the same interface as
:func:`retinanet.backbone.get_backbone` (a ``Model`` from images to ``[C3, C4, C5]``), the same strides,
ResNet's basic blocks (He et al., 2016) with batch normalisation, but far fewer channels and layers. The
FPN and both subnets keep the paper's structure (five levels; four 3×3 convolutions per subnet); the CPU
recipe narrows them (see :data:`retinanet.run.recipes.CPU_HEAD_CHANNELS`).
"""

from retinanet._keras import keras

LIGHT_STAGE_WIDTHS = (32, 64, 128, 256)
"""Channels at strides 4 (stem), 8 (C3), 16 (C4) and 32 (C5)."""

BN_MOMENTUM = 0.9
"""Batch-norm moving averages follow the last ~10 batches (Keras' default 0.99: ~100), so that they keep
up with weights that change fast in a short from-scratch training, where the default's statistics lag
behind and cost accuracy."""


def _conv_bn(x, filters, strides, name, activation=True):
    x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x) if activation else x


def _basic_block(x, filters, strides, name):
    """Two 3×3 convolutions plus an identity (or strided 1×1 projection) shortcut."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_proj")(x)
        shortcut = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_proj_bn")(shortcut)
    x = _conv_bn(x, filters, strides, f"{name}_1")
    x = _conv_bn(x, filters, 1, f"{name}_2", activation=False)
    return keras.layers.ReLU(name=f"{name}_out")(keras.layers.Add(name=f"{name}_add")([x, shortcut]))


def get_light_backbone(input_shape=(None, None, 3), widths=LIGHT_STAGE_WIDTHS):
    """A ``keras.Model`` mapping preprocessed images to ``[C3, C4, C5]`` (strides 8, 16, 32).

    Args:
        input_shape: ``(height, width, 3)``; ``None`` sides accept any multiple of 32.
        widths: channels of the stride-4 stem and of C3, C4, C5.
    """
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"input_shape must be (height, width, 3), got {tuple(input_shape)}")
    if len(widths) != 4 or min(widths) < 1:
        raise ValueError(f"widths must be four positive channel counts, got {widths}")
    images = keras.Input(shape=tuple(input_shape))
    x = _conv_bn(images, widths[0] // 2, 2, "stem_1")
    x = _conv_bn(x, widths[0], 2, "stem_2")
    outputs = []
    for stage, filters in enumerate(widths[1:], start=3):
        x = _basic_block(x, filters, 2, f"c{stage}_block1")
        x = _basic_block(x, filters, 1, f"c{stage}_block2")
        outputs.append(x)
    return keras.Model(images, outputs, name="light_backbone")
