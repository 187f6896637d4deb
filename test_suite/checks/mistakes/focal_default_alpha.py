"""The right formula with the default alpha=0.75 (1 − α) in the signature: every explicit (α, γ) pair is
right, the call with the defaults is not."""
from course import tf

CHECK, CAUSE, KEYWORD = "TEST_FOCAL_LOSS", "focal.defaults", "α = 0.75, γ = 2"


def sigmoid_focal_loss(labels, logits, alpha=0.75, gamma=2.0):
    labels, logits = tf.convert_to_tensor(labels, tf.float32), tf.convert_to_tensor(logits, tf.float32)
    p = tf.sigmoid(logits)
    p_t = labels * p + (1 - labels) * (1 - p)
    alpha_t = labels * alpha + (1 - labels) * (1 - alpha)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    return alpha_t * (1 - p_t) ** gamma * ce


def arguments():
    return (sigmoid_focal_loss,)
