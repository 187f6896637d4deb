"""The class count of the notebook's check cell written as a number: right for 10 classes, wrong for others."""
from course import keras, tf
from retinanet.fpn import FeaturePyramidNetwork
from retinanet.heads import build_head
from retinanet.model import RetinaNet as Reference

from course_checks.harness import small_backbone

CHECK, CAUSE, KEYWORD = "TEST_RETINANET", "model.fixed_classes", "stays at 10"


class RetinaNet(Reference):
    def __init__(self, num_classes, backbone=None):
        keras.Model.__init__(self, name="RetinaNet")
        self.num_classes = num_classes
        self.fpn = FeaturePyramidNetwork(backbone)
        self.cls_head = build_head(9 * 10, bias_initializer=keras.initializers.Constant(-4.59511985))
        self.box_head = build_head(9 * 4)

    def call(self, image, training=False):
        batch_size = tf.shape(image)[0]
        box_outputs, cls_outputs = [], []
        for feature in self.fpn(image, training=training):
            box_outputs.append(tf.reshape(self.box_head(feature), [batch_size, -1, 4]))
            cls_outputs.append(tf.reshape(self.cls_head(feature), [batch_size, -1, 10]))
        return tf.concat([tf.concat(box_outputs, axis=1), tf.concat(cls_outputs, axis=1)], axis=-1)


def arguments():
    return (RetinaNet(num_classes=10, backbone=small_backbone()),)
