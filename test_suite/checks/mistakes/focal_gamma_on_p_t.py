"""p_t^γ instead of (1 − p_t)^γ: easy examples are weighted up instead of down."""
from course import tf

CHECK, CAUSE, KEYWORD = "TEST_FOCAL_LOSS", "focal.gamma_on_p_t", "p_t^γ"


def sigmoid_focal_loss(labels, logits, alpha=0.25, gamma=2.0):
    labels, logits = tf.constant(labels, tf.float32), tf.constant(logits, tf.float32)
    p = tf.sigmoid(logits)
    p_t = labels * p + (1 - labels) * (1 - p)
    alpha_t = labels * alpha + (1 - labels) * (1 - alpha)
    return alpha_t * p_t ** gamma * tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def arguments():
    return (sigmoid_focal_loss,)
