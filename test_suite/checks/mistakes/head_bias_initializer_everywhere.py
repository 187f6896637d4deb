"""bias_initializer is passed to every convolution, not only the output one."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_HEAD_MODEL", "head.bias_initializer_on_hidden", "for the output convolution only"


def build_head(output_filters, bias_initializer="zeros"):
    init = keras.initializers.RandomNormal(stddev=0.01)
    head = keras.Sequential([keras.Input(shape=[None, None, 256])])
    for _ in range(4):
        head.add(keras.layers.Conv2D(256, 3, padding="same", activation="relu", kernel_initializer=init,
                                     bias_initializer=bias_initializer))
    head.add(keras.layers.Conv2D(output_filters, 3, padding="same", kernel_initializer=init,
                                 bias_initializer=bias_initializer))
    return head


def arguments():
    return (build_head,)
