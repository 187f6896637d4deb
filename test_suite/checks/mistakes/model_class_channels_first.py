"""The class outputs are transposed to channels-first before the reshape."""
from course import tf
from retinanet.model import RetinaNet as Reference

from course_checks.harness import small_backbone

CHECK, CAUSE, KEYWORD = "TEST_RETINANET", "model.classes_differ", "the class logits (columns 4 on) differ"


class RetinaNet(Reference):
    def call(self, image, training=False):
        batch_size = tf.shape(image)[0]
        box_outputs, cls_outputs = [], []
        for feature in self.fpn(image, training=training):
            box_outputs.append(tf.reshape(self.box_head(feature), [batch_size, -1, 4]))
            logits = tf.transpose(self.cls_head(feature), [0, 3, 1, 2])
            cls_outputs.append(tf.reshape(logits, [batch_size, -1, self.num_classes]))
        return tf.concat([tf.concat(box_outputs, axis=1), tf.concat(cls_outputs, axis=1)], axis=-1)


def arguments():
    return (RetinaNet(num_classes=3, backbone=small_backbone()),)
