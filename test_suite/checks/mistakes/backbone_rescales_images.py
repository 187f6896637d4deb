"""The images are rescaled to [0, 1] inside the backbone, before ResNet50."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_BACKBONE_MODEL", "backbone.values", "no preprocessing, rescaling"


def get_backbone(input_shape=(128, 128, 3)):
    images = keras.Input(shape=input_shape)
    scaled = keras.layers.Rescaling(1.0 / 255.0)(images)
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_tensor=scaled)
    names = ["conv3_block4_out", "conv4_block6_out", "conv5_block3_out"]
    return keras.Model(images, [resnet.get_layer(name).output for name in names])


def arguments():
    return (get_backbone,)
