"""C4 taken from the fifth block of stage 4 instead of the last (sixth) one."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_BACKBONE_MODEL", "backbone.wrong_layer", "conv4_block6_out"


def get_backbone(input_shape=(128, 128, 3)):
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_shape=input_shape)
    names = ["conv3_block4_out", "conv4_block5_out", "conv5_block3_out"]
    return keras.Model(resnet.input, [resnet.get_layer(name).output for name in names])


def arguments():
    return (get_backbone,)
