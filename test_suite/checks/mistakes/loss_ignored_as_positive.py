"""Positive anchors taken as labels != -1 (not background): the ignored anchors (-2) count as positive."""
from course import tf
from retinanet.losses import sigmoid_focal_loss, smooth_l1_loss

CHECK, CAUSE, KEYWORD = "TEST_DETECTION_LOSS", "loss.ignored_as_positive", "counted as positive"


def detection_loss(targets, predictions, num_classes):
    targets, predictions = tf.convert_to_tensor(targets, tf.float32), tf.convert_to_tensor(predictions, tf.float32)
    labels = targets[..., 4]
    positive, not_ignored = labels != -1, labels != -2
    num_positive = tf.maximum(tf.reduce_sum(tf.cast(positive, tf.float32), axis=-1), 1.0)
    one_hot = tf.one_hot(tf.cast(tf.where(positive, labels, -1.0), tf.int32), num_classes)
    focal = tf.where(not_ignored[..., None], sigmoid_focal_loss(one_hot, predictions[..., 4:]), 0.0)
    box = tf.where(positive, tf.reduce_sum(smooth_l1_loss(targets[..., :4], predictions[..., :4]), axis=-1), 0.0)
    return tf.reduce_sum(focal, axis=[1, 2]) / num_positive, tf.reduce_sum(box, axis=-1) / num_positive


def arguments():
    return (detection_loss,)
