"""The modulating factor uses p instead of p_t: (1 − p)^γ for both classes."""
from course import tf

CHECK, CAUSE, KEYWORD = "TEST_FOCAL_LOSS", "focal.gamma_on_p", "uses p instead of p_t"


def sigmoid_focal_loss(labels, logits, alpha=0.25, gamma=2.0):
    labels, logits = tf.constant(labels, tf.float32), tf.constant(logits, tf.float32)
    p = tf.sigmoid(logits)
    alpha_t = labels * alpha + (1 - labels) * (1 - alpha)
    return alpha_t * (1 - p) ** gamma * tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def arguments():
    return (sigmoid_focal_loss,)
