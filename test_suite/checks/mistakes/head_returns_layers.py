"""The layers are returned as a list instead of being added to a Sequential model."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_HEAD_MODEL", "head.not_a_model", "should be a keras Sequential model"


def build_head(output_filters, bias_initializer="zeros"):
    init = keras.initializers.RandomNormal(stddev=0.01)
    layers = [keras.layers.Conv2D(256, 3, padding="same", activation="relu", kernel_initializer=init)
              for _ in range(4)]
    return layers + [keras.layers.Conv2D(output_filters, 3, padding="same", kernel_initializer=init,
                                         bias_initializer=bias_initializer)]


def arguments():
    return (build_head,)
