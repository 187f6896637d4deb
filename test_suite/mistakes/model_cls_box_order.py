"""The output concatenates [class logits, box deltas] instead of [box deltas, class logits]."""
from retinanet._tf import tf
from retinanet.model import RetinaNet as Reference

import tests

CHECK, KEYWORD = "TEST_RESNET", "[box deltas, class logits]"


class RetinaNet(Reference):
    def call(self, image, training=False):
        output = super().call(image, training=training)
        return tf.concat([output[..., 4:], output[..., :4]], axis=-1)


def arguments():
    return (RetinaNet(num_classes=3, backbone=tests._small_backbone()),)
