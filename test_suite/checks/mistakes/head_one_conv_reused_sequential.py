"""One hidden Conv2D object added four times to a Sequential: 631,570 parameters, fewer than the subnet's
(the check used to call them "extra")."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_HEAD_MODEL", "head.conv_reused", "instead of 2,401,810"


def build_head(output_filters, bias_initializer="zeros"):
    init = keras.initializers.RandomNormal(stddev=0.01)
    hidden = keras.layers.Conv2D(256, 3, padding="same", activation="relu", kernel_initializer=init)
    return keras.Sequential([keras.Input(shape=[None, None, 256]), hidden, hidden, hidden, hidden,
                             keras.layers.Conv2D(output_filters, 3, padding="same", kernel_initializer=init,
                                                 bias_initializer=bias_initializer)])


def arguments():
    return (build_head,)
