"""The backbone is called with training=True in FeaturePyramidNetwork.call: its BatchNormalization layers then
normalise with the batch's statistics (and update their moving averages) even at inference."""
from retinanet.fpn import FeaturePyramidNetwork as Reference, pyramid_from_features

CHECK, CAUSE, KEYWORD = "TEST_FPN", "fpn.training_mode", "training mode"


class FeaturePyramidNetwork(Reference):
    def call(self, images, training=False):
        return pyramid_from_features(self, *self.backbone(images, training=True))


def arguments():
    return (FeaturePyramidNetwork,)
