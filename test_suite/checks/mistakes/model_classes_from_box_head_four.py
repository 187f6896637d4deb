"""The class outputs computed with box_head for a model of 4 classes: shapes right, class logits equal to the
box deltas (found by the table of variants, not by a crash)."""
from course import tf
from retinanet.model import RetinaNet as Reference

from course_checks.harness import small_backbone

CHECK, CAUSE, KEYWORD = "TEST_RESNET", "model.classes_from_box_head", "come from box_head"


class RetinaNet(Reference):
    def call(self, image, training=False):
        pyramid = self.fpn(image, training=training)
        batch_size = tf.shape(image)[0]
        boxes = [tf.reshape(self.box_head(level), [batch_size, -1, 4]) for level in pyramid]
        classes = [tf.reshape(self.box_head(level), [batch_size, -1, self.num_classes]) for level in pyramid]
        return tf.concat([tf.concat(boxes, axis=1), tf.concat(classes, axis=1)], axis=-1)


def arguments():
    return (RetinaNet(num_classes=4, backbone=small_backbone()),)
