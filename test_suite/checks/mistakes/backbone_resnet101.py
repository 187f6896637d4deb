"""ResNet101, whose layers carry the same names, instead of ResNet50."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_BACKBONE_MODEL", "backbone.parameters", "not another ResNet"


def get_backbone(input_shape=(128, 128, 3)):
    resnet = keras.applications.ResNet101(include_top=False, weights=None, input_shape=input_shape)
    names = ["conv3_block4_out", "conv4_block6_out", "conv5_block3_out"]
    return keras.Model(resnet.input, [resnet.get_layer(name).output for name in names])


def arguments():
    return (get_backbone,)
