"""Capped activations: keras.layers.ReLU(max_value=6) (MobileNet's ReLU6) after each hidden convolution."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_HEAD_MODEL", "head.capped_relu", "capped"


def build_head(output_filters, bias_initializer="zeros"):
    init = keras.initializers.RandomNormal(stddev=0.01)
    head = keras.Sequential([keras.Input(shape=[None, None, 256])])
    for _ in range(4):
        head.add(keras.layers.Conv2D(256, 3, padding="same", kernel_initializer=init))
        head.add(keras.layers.ReLU(max_value=6))
    head.add(keras.layers.Conv2D(output_filters, 3, padding="same", kernel_initializer=init,
                                 bias_initializer=bias_initializer))
    return head


def arguments():
    return (build_head,)
