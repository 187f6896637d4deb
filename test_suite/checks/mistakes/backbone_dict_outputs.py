"""The three maps returned as a dict {"C3": ..., "C4": ..., "C5": ...}: the check used to crash with KeyError: 0."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_BACKBONE_MODEL", "backbone.output_type", "with keys ['C3', 'C4', 'C5']"


def get_backbone(input_shape=(128, 128, 3)):
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_shape=input_shape)
    names = {"C3": "conv3_block4_out", "C4": "conv4_block6_out", "C5": "conv5_block3_out"}
    return keras.Model(resnet.input, {key: resnet.get_layer(name).output for key, name in names.items()})


def arguments():
    return (get_backbone,)
