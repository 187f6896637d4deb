"""The output layer multiplies output_filters by the 9 anchors again."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_HEAD_MODEL", "head.output_filters", "should have 18 filters, found 162"


def build_head(output_filters, bias_initializer="zeros"):
    init = keras.initializers.RandomNormal(stddev=0.01)
    head = keras.Sequential([keras.Input(shape=[None, None, 256])])
    for _ in range(4):
        head.add(keras.layers.Conv2D(256, 3, padding="same", activation="relu", kernel_initializer=init))
    head.add(keras.layers.Conv2D(9 * output_filters, 3, padding="same", kernel_initializer=init,
                                 bias_initializer=bias_initializer))
    return head


def arguments():
    return (build_head,)
