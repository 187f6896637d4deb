"""One hidden Conv2D layer object applied four times: the four hidden convolutions share their weights."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_HEAD_MODEL", "head.conv_reused", "one Conv2D layer"


def build_head(output_filters, bias_initializer="zeros"):
    init = keras.initializers.RandomNormal(stddev=0.01)
    hidden = keras.layers.Conv2D(256, 3, padding="same", activation="relu", kernel_initializer=init)
    inputs = keras.Input(shape=[None, None, 256])
    x = inputs
    for _ in range(4):
        x = hidden(x)
    outputs = keras.layers.Conv2D(output_filters, 3, padding="same", kernel_initializer=init,
                                  bias_initializer=bias_initializer)(x)
    return keras.Model(inputs, outputs)


def arguments():
    return (build_head,)
