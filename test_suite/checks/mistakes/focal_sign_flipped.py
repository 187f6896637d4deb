"""The minus sign of the cross-entropy is lost: FL = α_t (1 − p_t)^γ log(p_t) ≤ 0."""
from course import tf

CHECK, CAUSE, KEYWORD = "TEST_FOCAL_LOSS", "focal.negative", "negative"


def sigmoid_focal_loss(labels, logits, alpha=0.25, gamma=2.0):
    labels, logits = tf.constant(labels, tf.float32), tf.constant(logits, tf.float32)
    p = tf.sigmoid(logits)
    p_t = labels * p + (1 - labels) * (1 - p)
    alpha_t = labels * alpha + (1 - labels) * (1 - alpha)
    return alpha_t * (1 - p_t) ** gamma * tf.math.log(p_t)


def arguments():
    return (sigmoid_focal_loss,)
