"""The Sequential head has no keras.Input, so it is not built and has no input shape."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_HEAD_MODEL", "head.input", "keras.Input"


def build_head(output_filters, bias_initializer="zeros"):
    init = keras.initializers.RandomNormal(stddev=0.01)
    head = keras.Sequential()
    for _ in range(4):
        head.add(keras.layers.Conv2D(256, 3, padding="same", activation="relu", kernel_initializer=init))
    head.add(keras.layers.Conv2D(output_filters, 3, padding="same", kernel_initializer=init,
                                 bias_initializer=bias_initializer))
    return head


def arguments():
    return (build_head,)
