"""The sums are returned without dividing by the number of positive anchors."""
from course import tf
from retinanet.losses import sigmoid_focal_loss, smooth_l1_loss

CHECK, CAUSE, KEYWORD = "TEST_DETECTION_LOSS", "loss.unnormalised", "not normalised"


def detection_loss(targets, predictions, num_classes):
    targets, predictions = tf.convert_to_tensor(targets, tf.float32), tf.convert_to_tensor(predictions, tf.float32)
    labels = targets[..., 4]
    positive, not_ignored = labels >= 0, labels != -2
    one_hot = tf.one_hot(tf.cast(tf.where(positive, labels, -1.0), tf.int32), num_classes)
    focal = tf.where(not_ignored[..., None], sigmoid_focal_loss(one_hot, predictions[..., 4:]), 0.0)
    box = tf.where(positive, tf.reduce_sum(smooth_l1_loss(targets[..., :4], predictions[..., :4]), axis=-1), 0.0)
    return tf.reduce_sum(focal, axis=[1, 2]), tf.reduce_sum(box, axis=-1)


def arguments():
    return (detection_loss,)
