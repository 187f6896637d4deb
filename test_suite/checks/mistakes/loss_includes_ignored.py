"""Ignored anchors (label −2) are treated as background in the classification loss."""
from course import tf
from retinanet.losses import sigmoid_focal_loss, smooth_l1_loss

CHECK, CAUSE, KEYWORD = "TEST_DETECTION_LOSS", "loss.ignored_counted", "ignored anchors"


def detection_loss(targets, predictions, num_classes):
    labels = targets[..., 4]
    positive = labels >= 0
    num_positive = tf.maximum(tf.reduce_sum(tf.cast(positive, tf.float32), -1), 1.0)
    one_hot = tf.one_hot(tf.cast(tf.where(positive, labels, -1.0), tf.int32), num_classes)
    focal = sigmoid_focal_loss(one_hot, predictions[..., 4:])
    box = tf.where(positive, tf.reduce_sum(smooth_l1_loss(targets[..., :4], predictions[..., :4]), -1), 0.0)
    return tf.reduce_sum(focal, [1, 2]) / num_positive, tf.reduce_sum(box, -1) / num_positive


def arguments():
    return (detection_loss,)
