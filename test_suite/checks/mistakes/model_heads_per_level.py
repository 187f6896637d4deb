"""A separate pair of subnets for every level instead of two subnets shared by all levels."""
from course import keras, tf
from retinanet.heads import build_head
from retinanet.model import RetinaNet as Reference

from course_checks.harness import small_backbone

CHECK, CAUSE, KEYWORD = "TEST_RETINANET", "model.unshared_heads", "shared by all levels"


class RetinaNet(Reference):
    def __init__(self, num_classes, backbone=None):
        super().__init__(num_classes, backbone)
        prior = keras.initializers.Constant(-4.59511985)
        self.level_cls_heads = [build_head(9 * num_classes, bias_initializer=prior) for _ in range(5)]
        self.level_box_heads = [build_head(9 * 4) for _ in range(5)]

    def call(self, image, training=False):
        batch_size = tf.shape(image)[0]
        box_outputs, cls_outputs = [], []
        levels = self.fpn(image, training=training)
        for feature, box_head, cls_head in zip(levels, self.level_box_heads, self.level_cls_heads):
            box_outputs.append(tf.reshape(box_head(feature), [batch_size, -1, 4]))
            cls_outputs.append(tf.reshape(cls_head(feature), [batch_size, -1, self.num_classes]))
        return tf.concat([tf.concat(box_outputs, axis=1), tf.concat(cls_outputs, axis=1)], axis=-1)


def arguments():
    return (RetinaNet(num_classes=3, backbone=small_backbone()),)
