"""The reshapes drop the batch axis: (-1, 4) and (-1, num_classes)."""
from course import tf
from retinanet.model import RetinaNet as Reference

from course_checks.harness import small_backbone

CHECK, CAUSE, KEYWORD = "TEST_RETINANET", "model.batch_dropped", "without a batch axis"


class RetinaNet(Reference):
    def call(self, image, training=False):
        batch_size = tf.shape(image)[0]
        box_outputs, cls_outputs = [], []
        for feature in self.fpn(image, training=training):
            box_outputs.append(tf.reshape(self.box_head(feature), [-1, 4]))
            cls_outputs.append(tf.reshape(self.cls_head(feature), [-1, self.num_classes]))
        return tf.concat([tf.concat(box_outputs, axis=0), tf.concat(cls_outputs, axis=0)], axis=-1)


def arguments():
    return (RetinaNet(num_classes=3, backbone=small_backbone()),)
