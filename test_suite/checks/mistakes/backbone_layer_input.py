"""`.input` instead of `.output` of the named layers: the maps before the block's final ReLU."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_BACKBONE_MODEL", "backbone.layer_input", "take the layer's output"


def get_backbone(input_shape=(128, 128, 3)):
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_shape=input_shape)
    names = ["conv3_block4_out", "conv4_block6_out", "conv5_block3_out"]
    return keras.Model(resnet.input, [resnet.get_layer(name).input for name in names])


def arguments():
    return (get_backbone,)
