"""The pyramid computed with training=True written into call: a backbone with BatchNormalization then
normalises with the batch's statistics (and updates its moving averages) even when the model is called
with training=False. The FPN itself is right (TEST_FPN passes): the model's call forces the flag."""
from course import keras
from retinanet.model import RetinaNet as Reference, outputs_from_pyramid

CHECK, CAUSE, KEYWORD = "TEST_RETINANET", "model.training_mode", "training=True"


def backbone_with_batch_norm():
    inputs = keras.Input(shape=(None, None, 3))
    features, x = [], inputs
    for index, (filters, strides) in enumerate(zip((8, 16, 32), (8, 2, 2))):
        x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same",
                                kernel_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=index))(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        features.append(x)
    return keras.Model(inputs, features)


class RetinaNet(Reference):
    def call(self, image, training=False):
        pyramid = self.fpn(image, training=True)
        return outputs_from_pyramid(pyramid, self.box_head, self.cls_head, self.num_classes)


def arguments():
    return (RetinaNet(num_classes=3, backbone=backbone_with_batch_norm()),)
