"""Right answers written differently from the reference must pass their check.

The checks judge behaviour, not style: a subnet written keras.io-style (``Conv2D`` then a separate ``ReLU()``
layer), the functional API, NumPy instead of TensorFlow, ``keras.ops``, loops instead of broadcasting, a
per-image NMS loop — each is a correct answer a learner may write, and each must print the check's success
line.
"""

import numpy as np
import pytest

import tests
from course import keras, tf
from course_checks.harness import small_backbone
from retinanet.anchors import ANCHOR_SCALES, ANCHOR_SIZES, ASPECT_RATIOS, PYRAMID_LEVELS, anchors_per_level
from retinanet.anchors import generate_anchors as reference_anchors
from retinanet.boxes import decode as reference_decode
from retinanet.fpn import FeaturePyramidNetwork as ReferenceFPN
from retinanet.heads import build_head as reference_head
from retinanet.losses import sigmoid_focal_loss as reference_focal, smooth_l1_loss
from retinanet.model import RetinaNet as ReferenceRetinaNet
from retinanet.nms import class_wise_nms
from retinanet.postprocess import Detections

KERNEL_INIT = keras.initializers.RandomNormal(stddev=0.01)


def passes(name, *arguments, capsys):
    getattr(tests, name)(*arguments)
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{name} passed") and captured.err == ""


# Stage 1 ------------------------------------------------------------------------------------------

def backbone_with_input_list(input_shape=(128, 128, 3)):
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_shape=input_shape)
    names = ("conv3_block4_out", "conv4_block6_out", "conv5_block3_out")
    return keras.Model(inputs=resnet.inputs, outputs=tuple(resnet.get_layer(name).output for name in names))


def test_backbone_from_the_input_list_with_tuple_outputs(capsys):
    passes("TEST_BACKBONE_MODEL", backbone_with_input_list, capsys=capsys)


def backbone_with_named_outputs(input_shape=(128, 128, 3)):
    """The outputs renamed with Identity layers: the same values, other layer names."""
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_shape=input_shape)
    names = ("conv3_block4_out", "conv4_block6_out", "conv5_block3_out")
    return keras.Model(resnet.input, [keras.layers.Identity(name=f"C{level}")(resnet.get_layer(name).output)
                                      for level, name in zip((3, 4, 5), names)])


def test_backbone_with_outputs_renamed_by_identity_layers(capsys):
    passes("TEST_BACKBONE_MODEL", backbone_with_named_outputs, capsys=capsys)


def backbone_behind_a_fresh_input(input_shape=(128, 128, 3)):
    """The extractor built on ResNet50, then called on a fresh keras.Input: ResNet50 one level down."""
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_shape=input_shape)
    names = ("conv3_block4_out", "conv4_block6_out", "conv5_block3_out")
    extractor = keras.Model(resnet.input, [resnet.get_layer(name).output for name in names])
    images = keras.Input(shape=input_shape)
    return keras.Model(images, extractor(images))


def test_backbone_behind_a_fresh_input(capsys):
    passes("TEST_BACKBONE_MODEL", backbone_behind_a_fresh_input, capsys=capsys)


class FpnWithOpsAndList(ReferenceFPN):
    """keras.ops and keras.layers.Add, a list instead of a tuple."""

    def call(self, images, training=False):
        c3, c4, c5 = self.backbone(images, training=training)
        merged5 = self.conv_c5_1x1(c5)
        merged4 = keras.layers.Add()([self.conv_c4_1x1(c4), self.upsample_2x(merged5)])
        merged3 = keras.ops.add(self.conv_c3_1x1(c3), self.upsample_2x(merged4))
        p6 = self.conv_c6_3x3(c5)
        return [self.conv_c3_3x3(merged3), self.conv_c4_3x3(merged4), self.conv_c5_3x3(merged5), p6,
                self.conv_c7_3x3(keras.activations.relu(p6))]


def test_fpn_with_keras_ops(capsys):
    passes("TEST_FPN", FpnWithOpsAndList, capsys=capsys)


def keras_io_head(output_filters, bias_initializer="zeros"):
    """The keras.io RetinaNet example's style: each Conv2D is linear and followed by a ReLU layer."""
    head = keras.Sequential([keras.Input(shape=[None, None, 256])])
    for _ in range(4):
        head.add(keras.layers.Conv2D(256, 3, padding="same", kernel_initializer=KERNEL_INIT))
        head.add(keras.layers.ReLU())
    head.add(keras.layers.Conv2D(output_filters, 3, 1, padding="same", kernel_initializer=KERNEL_INIT,
                                 bias_initializer=bias_initializer))
    return head


def functional_head(output_filters, bias_initializer="zeros"):
    """The functional API, with Activation layers and tf.nn.relu as activations."""
    inputs = x = keras.Input(shape=(None, None, 256))
    for index in range(4):
        if index % 2:
            x = keras.layers.Conv2D(256, 3, padding="same", activation=tf.nn.relu, kernel_initializer=KERNEL_INIT)(x)
        else:
            x = keras.layers.Activation("relu")(keras.layers.Conv2D(256, (3, 3), padding="same",
                                                                     kernel_initializer=KERNEL_INIT)(x))
    outputs = keras.layers.Conv2D(output_filters, 3, padding="same", kernel_initializer=KERNEL_INIT,
                                  bias_initializer=bias_initializer)(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("build_head", [keras_io_head, functional_head])
def test_head_styles(build_head, capsys):
    passes("TEST_HEAD_MODEL", build_head, capsys=capsys)


class RetinaNetWithKerasLayers(ReferenceRetinaNet):
    """keras.io-style heads, Reshape layers and per-level [boxes, classes] concatenated once per level."""

    def __init__(self, num_classes, backbone=None):
        keras.Model.__init__(self, name="RetinaNet")
        self.num_classes = num_classes
        self.fpn = ReferenceFPN(backbone)
        prior = -np.log((1 - 0.01) / 0.01)
        self.cls_head = keras_io_head(9 * num_classes, bias_initializer=keras.initializers.Constant(prior))
        self.box_head = keras_io_head(9 * 4)
        self.to_boxes = keras.layers.Reshape((-1, 4))
        self.to_classes = keras.layers.Reshape((-1, num_classes))

    def call(self, image, training=False):
        levels = [keras.ops.concatenate([self.to_boxes(self.box_head(p)), self.to_classes(self.cls_head(p))], -1)
                  for p in self.fpn(image, training=training)]
        return keras.ops.concatenate(levels, axis=1)


def test_retinanet_with_keras_layers_and_per_level_concatenation(capsys):
    passes("TEST_RETINANET", RetinaNetWithKerasLayers(num_classes=3, backbone=small_backbone()), capsys=capsys)


# Stage 2 ------------------------------------------------------------------------------------------

def focal_with_log_sigmoid(labels, logits, alpha=0.25, gamma=2.0):
    """log p_t from tf.math.log_sigmoid, stable in both directions."""
    labels, logits = tf.constant(labels, tf.float32), tf.constant(logits, tf.float32)
    log_p_t = tf.math.log_sigmoid(tf.where(labels == 1, logits, -logits))
    alpha_t = tf.where(labels == 1, alpha, 1 - alpha)
    return -alpha_t * (1 - tf.exp(log_p_t)) ** gamma * log_p_t


def focal_with_keras_ops(labels, logits, alpha=0.25, gamma=2.0):
    cross_entropy = keras.ops.binary_crossentropy(labels, logits, from_logits=True)
    p = keras.ops.sigmoid(logits)
    p_t = labels * p + (1 - labels) * (1 - p)
    return (labels * alpha + (1 - labels) * (1 - alpha)) * keras.ops.power(1 - p_t, gamma) * cross_entropy


def focal_in_numpy(labels, logits, alpha=0.25, gamma=2.0):
    labels, logits = np.asarray(labels, np.float64), np.asarray(logits, np.float64)
    cross_entropy = np.logaddexp(0, -logits) * labels + np.logaddexp(0, logits) * (1 - labels)
    p_t = np.exp(-cross_entropy)
    return np.where(labels == 1, alpha, 1 - alpha) * (1 - p_t) ** gamma * cross_entropy


@pytest.mark.parametrize("loss", [focal_with_log_sigmoid, focal_with_keras_ops, focal_in_numpy])
def test_focal_loss_styles(loss, capsys):
    passes("TEST_FOCAL_LOSS", loss, capsys=capsys)


# Stage 3 ------------------------------------------------------------------------------------------

def anchors_with_loops(image_height, image_width):
    """Plain Python loops, float64 output."""
    boxes = []
    for level, base in zip(PYRAMID_LEVELS, ANCHOR_SIZES):
        stride = 2 ** level
        for row in range(-(-image_height // stride)):
            for col in range(-(-image_width // stride)):
                x, y = (col + 0.5) * stride, (row + 0.5) * stride
                for ratio in ASPECT_RATIOS:
                    for scale in ANCHOR_SCALES:
                        width, height = base * scale / ratio ** 0.5, base * scale * ratio ** 0.5
                        boxes.append([x - width / 2, y - height / 2, x + width / 2, y + height / 2])
    return np.array(boxes)


def test_anchors_with_loops(capsys):
    passes("TEST_ANCHORS", anchors_with_loops, capsys=capsys)


def iou_in_numpy(boxes_a, boxes_b):
    a, b = np.asarray(boxes_a, np.float64), np.asarray(boxes_b, np.float64)
    width = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    height = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    intersection = width * height
    union = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None] + ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])) \
        - intersection
    return np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)


def test_iou_in_numpy(capsys):
    passes("TEST_IOU", iou_in_numpy, capsys=capsys)


def matching_in_tensorflow(anchors, gt_boxes):
    """TensorFlow ops; background anchors get matched_index −1 (only positives' index is used)."""
    overlaps = tf.convert_to_tensor(iou_in_numpy(anchors, np.reshape(gt_boxes, (-1, 4))), tf.float32)
    if overlaps.shape[1] == 0:
        nothing = tf.zeros(len(anchors), tf.bool)
        return -tf.ones(len(anchors), tf.int32), nothing, nothing
    best = tf.reduce_max(overlaps, axis=1)
    box_best = tf.reduce_max(overlaps, axis=0)
    forced = tf.reduce_any((overlaps == box_best[None]) & (box_best[None] > 0), axis=1)
    positive = (best >= 0.5) | forced
    ignored = (best >= 0.4) & ~positive
    matched = tf.where(positive, tf.argmax(overlaps, axis=1, output_type=tf.int32), -1)
    return matched, positive, ignored


def test_matching_in_tensorflow(capsys):
    passes("TEST_MATCHING", matching_in_tensorflow, capsys=capsys)


def encode_in_numpy(anchors, boxes):
    anchors, boxes = np.asarray(anchors, np.float64), np.asarray(boxes, np.float64)
    anchor_size, box_size = anchors[..., 2:] - anchors[..., :2], boxes[..., 2:] - boxes[..., :2]
    offset = (boxes[..., :2] + boxes[..., 2:] - anchors[..., :2] - anchors[..., 2:]) / 2
    return np.concatenate([offset / anchor_size / 0.1, np.log(box_size / anchor_size) / 0.2], axis=-1)


def decode_with_keras_ops(anchors, deltas):
    anchors = keras.ops.convert_to_tensor(anchors, "float32")
    size = anchors[..., 2:] - anchors[..., :2]
    centre = anchors[..., :2] + size / 2 + deltas[..., :2] * 0.1 * size
    new_size = size * keras.ops.exp(deltas[..., 2:] * 0.2)
    return keras.ops.concatenate([centre - new_size / 2, centre + new_size / 2], axis=-1)


def test_box_coding_in_numpy_and_keras_ops(capsys):
    passes("TEST_BOX_CODING", encode_in_numpy, decode_with_keras_ops, capsys=capsys)


# Stage 4 ------------------------------------------------------------------------------------------

def loss_with_counts(targets, predictions, num_classes):
    """tf.math.count_nonzero for the normaliser, a boolean mask instead of tf.where."""
    targets, predictions = tf.constant(targets), tf.constant(predictions)
    labels = targets[..., 4]
    positive = labels > -1
    num_positive = tf.maximum(tf.cast(tf.math.count_nonzero(positive, axis=-1), tf.float32), 1.0)
    one_hot = tf.one_hot(tf.cast(labels, tf.int32), num_classes)  # −1 and −2 give rows of zeros
    focal = reference_focal(one_hot, predictions[..., 4:]) * tf.cast(labels != -2, tf.float32)[..., None]
    box = tf.reduce_sum(smooth_l1_loss(targets[..., :4], predictions[..., :4]), -1) * tf.cast(positive, tf.float32)
    return tf.reduce_sum(focal, axis=(1, 2)) / num_positive, tf.reduce_sum(box, axis=1) / num_positive


def test_detection_loss_with_counts(capsys):
    passes("TEST_DETECTION_LOSS", loss_with_counts, capsys=capsys)


def decode_with_keras_nms(predictions, image_height, image_width, score_threshold=0.05, top_k_per_level=1000,
                          nms_iou_threshold=0.5, max_detections=100):
    """keras.ops throughout and the reference's keras.ops NMS (retinanet.nms) instead of TensorFlow's; that NMS
    wants at least max_detections candidates, so a short list is padded with zero scores."""
    predictions = keras.ops.convert_to_tensor(predictions, "float32")
    num_classes = predictions.shape[-1] - 4
    anchors = reference_anchors(image_height, image_width)
    limits = keras.ops.convert_to_tensor([image_width, image_height, image_width, image_height], "float32")
    boxes = keras.ops.clip(reference_decode(anchors[None], predictions[..., :4]), 0.0, limits)
    scores = keras.ops.sigmoid(predictions[..., 4:])
    parts = ([], [], [])
    start = 0
    for count in anchors_per_level(image_height, image_width):
        flat = keras.ops.reshape(scores[:, start:start + count], (predictions.shape[0], -1))
        top_scores, index = keras.ops.top_k(flat, k=min(top_k_per_level, count * num_classes))
        parts[0].append(keras.ops.take_along_axis(boxes[:, start:start + count], (index // num_classes)[..., None], 1))
        parts[1].append(top_scores)
        parts[2].append(index % num_classes)
        start += count
    candidates = [keras.ops.concatenate(part, axis=1) for part in parts]
    missing = max(max_detections - candidates[1].shape[1], 0)
    candidates = [keras.ops.pad(part, [(0, 0), (0, missing)] + [(0, 0)] * (len(part.shape) - 2)) for part in candidates]
    return Detections(*class_wise_nms(*candidates, nms_iou_threshold, score_threshold, max_detections))


def decode_with_a_loop_per_image_and_class(predictions, image_height, image_width, score_threshold=0.05,
                                           top_k_per_level=1000, nms_iou_threshold=0.5, max_detections=100):
    """NumPy candidates and tf.image.non_max_suppression once per image and class, padded by hand."""
    predictions = np.asarray(predictions, np.float32)
    num_classes = predictions.shape[-1] - 4
    anchors = reference_anchors(image_height, image_width)
    limits = np.array([image_width, image_height, image_width, image_height], np.float32)
    boxes = np.clip(np.asarray(reference_decode(anchors[None], predictions[..., :4])), 0.0, limits)
    scores = 1 / (1 + np.exp(-predictions[..., 4:]))
    out = np.zeros((len(predictions), max_detections, 4), np.float32), np.zeros((len(predictions), max_detections),
                                                                                np.float32)
    out_classes, counts = np.zeros((len(predictions), max_detections), np.int32), np.zeros(len(predictions), np.int32)
    for image in range(len(predictions)):
        candidates, start = [], 0
        for count in anchors_per_level(image_height, image_width):
            flat = scores[image, start:start + count].reshape(-1)
            for index in np.argsort(-flat, kind="stable")[:top_k_per_level]:
                if flat[index] > score_threshold:
                    candidates.append((flat[index], start + index // num_classes, index % num_classes))
            start += count
        kept = []
        for cls in range(num_classes):
            mine = [c for c in candidates if c[2] == cls]
            if mine:
                keep = tf.image.non_max_suppression(boxes[image, [c[1] for c in mine]], [c[0] for c in mine],
                                                    max_detections, nms_iou_threshold).numpy()
                kept += [mine[k] for k in keep]
        kept = sorted(kept, key=lambda c: -c[0])[:max_detections]
        for row, (score, anchor, cls) in enumerate(kept):
            out[0][image, row], out[1][image, row], out_classes[image, row] = boxes[image, anchor], score, cls
        counts[image] = len(kept)
    return Detections(out[0], out[1], out_classes, counts)


@pytest.mark.parametrize("decode_detections", [decode_with_keras_nms, decode_with_a_loop_per_image_and_class])
def test_decode_styles(decode_detections, capsys):
    passes("TEST_DECODE", decode_detections, capsys=capsys)


def test_reference_head_still_passes_after_a_keras_io_head(capsys):
    """The checks keep no state from one learner model to the next."""
    passes("TEST_HEAD_MODEL", keras_io_head, capsys=capsys)
    passes("TEST_HEAD_MODEL", reference_head, capsys=capsys)
