"""ResNet50's own single output (C5) is returned instead of the three maps."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_BACKBONE_MODEL", "backbone.output_count", "3 outputs (C3, C4, C5)"


def get_backbone(input_shape=(128, 128, 3)):
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_shape=input_shape)
    return keras.Model(resnet.input, resnet.output)


def arguments():
    return (get_backbone,)
