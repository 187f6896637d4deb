"""The subnets are built inside call, so every call gets new random ones."""
from course import keras, tf
from retinanet.heads import build_head
from retinanet.model import RetinaNet as Reference

from course_checks.harness import small_backbone

CHECK, CAUSE, KEYWORD = "TEST_RETINANET", "model.heads_built_in_call", "changes from one call to the next"


class RetinaNet(Reference):
    def call(self, image, training=False):
        batch_size = tf.shape(image)[0]
        box_head = build_head(9 * 4)
        cls_head = build_head(9 * self.num_classes, bias_initializer=keras.initializers.Constant(-4.59511985))
        box_outputs, cls_outputs = [], []
        for feature in self.fpn(image, training=training):
            box_outputs.append(tf.reshape(box_head(feature), [batch_size, -1, 4]))
            cls_outputs.append(tf.reshape(cls_head(feature), [batch_size, -1, self.num_classes]))
        return tf.concat([tf.concat(box_outputs, axis=1), tf.concat(cls_outputs, axis=1)], axis=-1)


def arguments():
    return (RetinaNet(num_classes=3, backbone=small_backbone()),)
