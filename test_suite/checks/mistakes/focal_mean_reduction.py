"""The loss is averaged inside the function instead of being returned element-wise."""
from course import tf
from retinanet.losses import sigmoid_focal_loss as reference

CHECK, CAUSE, KEYWORD = "TEST_FOCAL_LOSS", "focal.reduced", "do not reduce"


def sigmoid_focal_loss(labels, logits, alpha=0.25, gamma=2.0):
    return tf.reduce_mean(reference(labels, logits, alpha=alpha, gamma=gamma))


def arguments():
    return (sigmoid_focal_loss,)
