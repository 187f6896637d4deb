"""The levels are concatenated coarse to fine (P7 first)."""
from course import tf
from retinanet.model import RetinaNet as Reference

from course_checks.harness import small_backbone

CHECK, CAUSE, KEYWORD = "TEST_RETINANET", "model.levels_reversed", "reverse order"


class RetinaNet(Reference):
    def call(self, image, training=False):
        batch_size = tf.shape(image)[0]
        box_outputs, cls_outputs = [], []
        for feature in reversed(self.fpn(image, training=training)):
            box_outputs.append(tf.reshape(self.box_head(feature), [batch_size, -1, 4]))
            cls_outputs.append(tf.reshape(self.cls_head(feature), [batch_size, -1, self.num_classes]))
        return tf.concat([tf.concat(box_outputs, axis=1), tf.concat(cls_outputs, axis=1)], axis=-1)


def arguments():
    return (RetinaNet(num_classes=3, backbone=small_backbone()),)
