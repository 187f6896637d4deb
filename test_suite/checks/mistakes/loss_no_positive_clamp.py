"""Division by the raw number of positives: an image without objects gives NaN/inf."""
from course import tf
from retinanet.losses import sigmoid_focal_loss, smooth_l1_loss

CHECK, CAUSE, KEYWORD = "TEST_DETECTION_LOSS", "loss.not_finite", "max(number of positives, 1)"


def detection_loss(targets, predictions, num_classes):
    labels = targets[..., 4]
    positive, counted = labels >= 0, labels != -2
    num_positive = tf.reduce_sum(tf.cast(positive, tf.float32), -1)
    one_hot = tf.one_hot(tf.cast(tf.where(positive, labels, -1.0), tf.int32), num_classes)
    focal = tf.where(counted[..., None], sigmoid_focal_loss(one_hot, predictions[..., 4:]), 0.0)
    box = tf.where(positive, tf.reduce_sum(smooth_l1_loss(targets[..., :4], predictions[..., :4]), -1), 0.0)
    return tf.reduce_sum(focal, [1, 2]) / num_positive, tf.reduce_sum(box, -1) / num_positive


def arguments():
    return (detection_loss,)
