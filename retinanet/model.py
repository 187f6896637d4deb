"""RetinaNet: backbone + FPN + the two shared subnets (Lin et al., Fig. 3).

The output is one tensor ``(batch, num_anchors, 4 + K)``: the four box deltas first, then the K class
logits, with anchors in :mod:`retinanet.anchors` order (level, row, column, anchor of the location).
"""

from retinanet._tf import keras, tf
from retinanet.anchors import ANCHORS_PER_LOCATION, SIZE_DIVISOR
from retinanet.fpn import FeaturePyramidNetwork
from retinanet.heads import build_head, prior_bias


class RetinaNet(keras.Model):
    """The one-stage detector.

    Args:
        num_classes: K ≥ 1 object classes (background is not a class: scores are K sigmoids).
        backbone: optional model mapping images to ``[C3, C4, C5]``; ResNet50 by default.

    Images go in as ``(batch, height, width, 3)`` float tensors, preprocessed with
    :func:`retinanet.backbone.preprocess_images`; height and width are multiples of 32.
    """

    def __init__(self, num_classes, backbone=None, **kwargs):
        if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
        kwargs.setdefault("name", "RetinaNet")
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.fpn = FeaturePyramidNetwork(backbone)
        self.cls_head = build_head(
            ANCHORS_PER_LOCATION * self.num_classes,
            bias_initializer=keras.initializers.Constant(prior_bias()),
        )
        self.box_head = build_head(ANCHORS_PER_LOCATION * 4)

    def call(self, image, training=False):
        shape = image.shape
        if shape.rank != 4 or shape[-1] != 3:
            raise ValueError(f"RetinaNet expects images of shape (batch, height, width, 3), got {shape}")
        for side in shape[1:3]:
            if side is not None and side % SIZE_DIVISOR:
                raise ValueError(f"image height and width must be multiples of {SIZE_DIVISOR}, got {shape[1:3]}")
        batch_size = tf.shape(image)[0]
        box_outputs, cls_outputs = [], []
        for feature in self.fpn(image, training=training):
            box_outputs.append(tf.reshape(self.box_head(feature), [batch_size, -1, 4]))
            cls_outputs.append(tf.reshape(self.cls_head(feature), [batch_size, -1, self.num_classes]))
        box_outputs = tf.concat(box_outputs, axis=1)
        cls_outputs = tf.concat(cls_outputs, axis=1)
        return tf.concat([box_outputs, cls_outputs], axis=-1)

    def get_config(self):
        return {"num_classes": self.num_classes}
