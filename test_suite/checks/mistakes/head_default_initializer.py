"""Keras' default Glorot-uniform kernels instead of the paper's Gaussian with σ = 0.01."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_HEAD_MODEL", "head.kernel_init", "σ = 0.01"


def build_head(output_filters, bias_initializer="zeros"):
    head = keras.Sequential([keras.Input(shape=[None, None, 256])])
    for _ in range(4):
        head.add(keras.layers.Conv2D(256, 3, padding="same", activation="relu"))
    head.add(keras.layers.Conv2D(output_filters, 3, padding="same", bias_initializer=bias_initializer))
    return head


def arguments():
    return (build_head,)
