"""The outputs are listed coarse to fine, [C5, C4, C3]."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_BACKBONE_MODEL", "backbone.output_order", "wrong order"


def get_backbone(input_shape=(128, 128, 3)):
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_shape=input_shape)
    names = ["conv5_block3_out", "conv4_block6_out", "conv3_block4_out"]
    return keras.Model(resnet.input, [resnet.get_layer(name).output for name in names])


def arguments():
    return (get_backbone,)
