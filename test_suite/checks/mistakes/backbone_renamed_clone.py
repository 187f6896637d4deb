"""ResNet50 cloned with every layer renamed ("my_conv3_block4_out", ...): the check finds none of ResNet50's
layers to compute C3–C5 with, and says so instead of crashing."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_BACKBONE_MODEL", "backbone.no_resnet", "has no layers 'conv1_pad'"


def get_backbone(input_shape=(128, 128, 3)):
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_shape=input_shape)
    names = ["conv3_block4_out", "conv4_block6_out", "conv5_block3_out"]
    extractor = keras.Model(resnet.input, [resnet.get_layer(name).output for name in names])
    return keras.models.clone_model(
        extractor, clone_function=lambda layer: layer.__class__.from_config({**layer.get_config(),
                                                                              "name": "my_" + layer.name}))


def arguments():
    return (get_backbone,)
