"""RetinaNet: backbone + FPN + the two shared subnets (Lin et al., Fig. 3).

The output is one tensor ``(batch, num_anchors, 4 + K)``: the four box deltas first, then the K class
logits, with anchors in :mod:`retinanet.anchors` order (level, row, column, anchor of the location).
"""

import copy

from retinanet._keras import keras, ops
from retinanet.anchors import ANCHORS_PER_LOCATION, SIZE_DIVISOR
from retinanet.fpn import FPN_CHANNELS, FeaturePyramidNetwork
from retinanet.heads import build_head, prior_bias


def check_image_shape(shape):
    """Raise ``ValueError`` unless ``shape`` is ``(batch, height, width, 3)`` with sides multiples of 32."""
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"RetinaNet expects images of shape (batch, height, width, 3), got {tuple(shape)}")
    for side in shape[1:3]:
        if side is not None and side % SIZE_DIVISOR:
            raise ValueError(f"image height and width must be multiples of {SIZE_DIVISOR}, got {tuple(shape[1:3])}")


def outputs_from_pyramid(pyramid, box_head, cls_head, num_classes):
    """The model's wiring after the FPN: ``(batch, N, 4 + K)`` from the levels P3–P7.

    Both subnets run on every level (shared weights); each level's outputs ``(batch, rows, cols, A·4)``
    and ``(batch, rows, cols, A·K)`` are flattened to one row per anchor, the levels are concatenated in
    order P3 … P7, and the box deltas come before the class logits.
    """
    batch_size = ops.shape(pyramid[0])[0]
    box_outputs = [ops.reshape(box_head(level), (batch_size, -1, 4)) for level in pyramid]
    cls_outputs = [ops.reshape(cls_head(level), (batch_size, -1, num_classes)) for level in pyramid]
    return ops.concatenate([ops.concatenate(box_outputs, axis=1), ops.concatenate(cls_outputs, axis=1)], axis=-1)


@keras.saving.register_keras_serializable(package="retinanet")
class RetinaNet(keras.Model):
    """The one-stage detector.

    Args:
        num_classes: K ≥ 1 object classes (background is not a class: scores are K sigmoids).
        backbone: optional model mapping images to ``[C3, C4, C5]``; ResNet50 by default.
        channels: width of the pyramid and the subnets (the paper's 256 by default).
        hidden_initializer: of the subnets' hidden convolutions (default: the paper's, see
            :func:`retinanet.heads.build_head`).

    Images go in as ``(batch, height, width, 3)`` float tensors, preprocessed with
    :func:`retinanet.backbone.preprocess_images`; height and width are multiples of 32.
    """

    def __init__(self, num_classes, backbone=None, channels=FPN_CHANNELS, hidden_initializer=None, **kwargs):
        if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
        kwargs.setdefault("name", "RetinaNet")
        super().__init__(**kwargs)
        self.num_classes, self.channels = int(num_classes), int(channels)
        self.hidden_initializer = keras.initializers.get(hidden_initializer) if hidden_initializer else None
        self.fpn = FeaturePyramidNetwork(backbone, channels=channels)
        self.cls_head = build_head(
            ANCHORS_PER_LOCATION * self.num_classes,
            bias_initializer=keras.initializers.Constant(prior_bias()),
            channels=channels, hidden_initializer=self.hidden_initializer,
        )
        self.box_head = build_head(ANCHORS_PER_LOCATION * 4, channels=channels, hidden_initializer=self.hidden_initializer)

    def call(self, image, training=False):
        check_image_shape(image.shape)
        return outputs_from_pyramid(self.fpn(image, training=training), self.box_head, self.cls_head, self.num_classes)

    def get_config(self):
        """The model's base config (name, dtype policy, …), ``num_classes``, the widths, the subnets'
        initializer and the backbone, so that ``from_config`` and ``keras.saving.load_model`` rebuild the
        same network."""
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "channels": self.channels,
            "hidden_initializer": keras.saving.serialize_keras_object(self.hidden_initializer),
            "backbone": keras.saving.serialize_keras_object(self.fpn.backbone),
        }

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)  # deserialising consumes the nested config; keep the caller's intact
        backbone = keras.saving.deserialize_keras_object(config.pop("backbone"))
        initializer = keras.saving.deserialize_keras_object(config.pop("hidden_initializer", None))
        return cls(backbone=backbone, hidden_initializer=initializer, **config)
