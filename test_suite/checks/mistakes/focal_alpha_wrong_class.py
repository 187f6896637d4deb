"""α weights the negatives and 1 − α the positives."""
from course import tf

CHECK, CAUSE, KEYWORD = "TEST_FOCAL_LOSS", "focal.alpha_swapped", "wrong class"


def sigmoid_focal_loss(labels, logits, alpha=0.25, gamma=2.0):
    labels, logits = tf.constant(labels, tf.float32), tf.constant(logits, tf.float32)
    p = tf.sigmoid(logits)
    p_t = labels * p + (1 - labels) * (1 - p)
    alpha_t = labels * (1 - alpha) + (1 - labels) * alpha
    return alpha_t * (1 - p_t) ** gamma * tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def arguments():
    return (sigmoid_focal_loss,)
