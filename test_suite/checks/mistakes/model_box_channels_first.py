"""The box outputs are transposed to channels-first before the reshape (PyTorch habit)."""
from course import tf
from retinanet.model import RetinaNet as Reference

from course_checks.harness import small_backbone

CHECK, CAUSE, KEYWORD = "TEST_RETINANET", "model.boxes_differ", "the box deltas (columns 0–3) differ"


class RetinaNet(Reference):
    def call(self, image, training=False):
        batch_size = tf.shape(image)[0]
        box_outputs, cls_outputs = [], []
        for feature in self.fpn(image, training=training):
            boxes = tf.transpose(self.box_head(feature), [0, 3, 1, 2])
            box_outputs.append(tf.reshape(boxes, [batch_size, -1, 4]))
            cls_outputs.append(tf.reshape(self.cls_head(feature), [batch_size, -1, self.num_classes]))
        return tf.concat([tf.concat(box_outputs, axis=1), tf.concat(cls_outputs, axis=1)], axis=-1)


def arguments():
    return (RetinaNet(num_classes=3, backbone=small_backbone()),)
