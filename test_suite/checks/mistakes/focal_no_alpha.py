"""The α-balancing factor is left out."""
from course import tf

CHECK, CAUSE, KEYWORD = "TEST_FOCAL_LOSS", "focal.no_alpha", "α-balancing factor"


def sigmoid_focal_loss(labels, logits, alpha=0.25, gamma=2.0):
    labels, logits = tf.convert_to_tensor(labels, tf.float32), tf.convert_to_tensor(logits, tf.float32)
    p = tf.sigmoid(logits)
    p_t = labels * p + (1 - labels) * (1 - p)
    return (1 - p_t) ** gamma * tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def arguments():
    return (sigmoid_focal_loss,)
