"""The bias_initializer argument is accepted but never used, so the prior bias cannot reach the head."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_HEAD_MODEL", "head.ignores_bias_initializer", "ignored"


def build_head(output_filters, bias_initializer="zeros"):
    init = keras.initializers.RandomNormal(stddev=0.01)
    head = keras.Sequential([keras.Input(shape=[None, None, 256])])
    for _ in range(4):
        head.add(keras.layers.Conv2D(256, 3, padding="same", activation="relu", kernel_initializer=init))
    head.add(keras.layers.Conv2D(output_filters, 3, padding="same", kernel_initializer=init))
    return head


def arguments():
    return (build_head,)
