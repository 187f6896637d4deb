"""The classification and box regression subnets.

Lin et al., Sec. 4, "Classification Subnet" and "Box Regression Subnet": a small fully convolutional
network, shared by all pyramid levels, of four 3×3 convolutions with C = 256 filters each followed by
ReLU, then a 3×3 convolution with K·A filters (classification) or 4·A filters (boxes).

Sec. 4.1, "Initialization": every convolution of the subnets starts from a Gaussian with σ = 0.01 and a
zero bias, except the classification subnet's last bias, b = −log((1 − π)/π) with prior π = 0.01, so that
every anchor starts out as foreground with probability ≈ π and the ~100k background anchors do not
swamp the first iterations with a huge loss.
"""

import math

from retinanet._keras import keras
from retinanet.fpn import FPN_CHANNELS

HEAD_DEPTH = 4
"""Number of 3×3/256 ReLU convolutions before each subnet's output layer (Sec. 4)."""

KERNEL_STDDEV = 0.01
"""σ of the Gaussian weight fill of all subnet convolutions (Sec. 4.1)."""

PRIOR_PROBABILITY = 0.01
"""π, the foreground probability every anchor starts with (Sec. 3.3 and 4.1)."""


def prior_bias(prior_probability=PRIOR_PROBABILITY):
    """The classification subnet's final bias b = −log((1 − π)/π); ≈ −4.595 for π = 0.01."""
    if not 0.0 < prior_probability < 1.0:
        raise ValueError(f"prior_probability must lie in (0, 1), got {prior_probability}")
    return -math.log((1.0 - prior_probability) / prior_probability)


def build_head(output_filters, bias_initializer="zeros", channels=FPN_CHANNELS, hidden_initializer=None):
    """One subnet: Input ``[None, None, 256]`` → 4 × (3×3 conv, 256, ReLU) → 3×3 conv, ``output_filters``.

    Args:
        output_filters: K·A for the classification subnet, 4·A for the box subnet.
        bias_initializer: of the final convolution. The box subnet keeps ``"zeros"``;
            :class:`retinanet.RetinaNet` passes ``Constant(prior_bias())`` for the classification subnet.
        channels: input and hidden width; the paper's 256 unless a recipe says otherwise.
        hidden_initializer: kernel initializer of the four hidden convolutions; ``None`` is the paper's
            Gaussian with σ = :data:`KERNEL_STDDEV` (the output convolution always has it).

    Returns:
        ``keras.Sequential`` whose output has ``output_filters`` channels and no activation.
    """
    if isinstance(output_filters, bool) or int(output_filters) != output_filters or output_filters < 1:
        raise ValueError(f"output_filters must be a positive integer, got {output_filters!r}")
    kernel_init = keras.initializers.RandomNormal(mean=0.0, stddev=KERNEL_STDDEV)
    head = keras.Sequential()
    head.add(keras.Input(shape=[None, None, int(channels)]))
    for _ in range(HEAD_DEPTH):
        head.add(
            keras.layers.Conv2D(
                int(channels), 3, padding="same", activation="relu",
                kernel_initializer=hidden_initializer or kernel_init, bias_initializer="zeros",
            )
        )
    head.add(
        keras.layers.Conv2D(
            int(output_filters), 3, strides=1, padding="same",
            kernel_initializer=kernel_init, bias_initializer=bias_initializer,
        )
    )
    return head
