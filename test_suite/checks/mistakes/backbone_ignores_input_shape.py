"""ResNet50 is built without input_shape, so the backbone takes images of any size."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_BACKBONE_MODEL", "backbone.input_shape", "input_shape=input_shape"


def get_backbone(input_shape=(128, 128, 3)):
    resnet = keras.applications.ResNet50(include_top=False, weights=None)
    names = ["conv3_block4_out", "conv4_block6_out", "conv5_block3_out"]
    return keras.Model(resnet.input, [resnet.get_layer(name).output for name in names])


def arguments():
    return (get_backbone,)
