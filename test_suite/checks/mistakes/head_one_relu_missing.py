"""keras.io style with a ReLU layer after only three of the four hidden convolutions."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_HEAD_MODEL", "head.relu_missing", "Hidden convolution 4"


def build_head(output_filters, bias_initializer="zeros"):
    init = keras.initializers.RandomNormal(stddev=0.01)
    head = keras.Sequential([keras.Input(shape=[None, None, 256])])
    for index in range(4):
        head.add(keras.layers.Conv2D(256, 3, padding="same", kernel_initializer=init))
        if index < 3:
            head.add(keras.layers.ReLU())
    head.add(keras.layers.Conv2D(output_filters, 3, padding="same", kernel_initializer=init,
                                 bias_initializer=bias_initializer))
    return head


def arguments():
    return (build_head,)
