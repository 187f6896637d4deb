"""The output concatenates [class logits, box deltas] instead of [box deltas, class logits]."""
from course import tf
from retinanet.model import RetinaNet as Reference

from course_checks.harness import small_backbone

CHECK, CAUSE, KEYWORD = "TEST_RESNET", "model.classes_first", "[box deltas, class logits]"


class RetinaNet(Reference):
    def call(self, image, training=False):
        output = super().call(image, training=training)
        return tf.concat([output[..., 4:], output[..., :4]], axis=-1)


def arguments():
    return (RetinaNet(num_classes=3, backbone=small_backbone()),)
