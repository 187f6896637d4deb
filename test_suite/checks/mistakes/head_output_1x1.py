"""The output convolution is 1×1 instead of 3×3."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_HEAD_MODEL", "head.output_config", "kernel_size=(1, 1)"


def build_head(output_filters, bias_initializer="zeros"):
    init = keras.initializers.RandomNormal(stddev=0.01)
    head = keras.Sequential([keras.Input(shape=[None, None, 256])])
    for _ in range(4):
        head.add(keras.layers.Conv2D(256, 3, padding="same", activation="relu", kernel_initializer=init))
    head.add(keras.layers.Conv2D(output_filters, 1, padding="same", kernel_initializer=init,
                                 bias_initializer=bias_initializer))
    return head


def arguments():
    return (build_head,)
