"""α = 0.25 and γ = 2 written as numbers: the alpha and gamma arguments are ignored."""
from course import tf

CHECK, CAUSE, KEYWORD = "TEST_FOCAL_LOSS", "focal.ignores_arguments", "whatever is passed"


def sigmoid_focal_loss(labels, logits, alpha=0.25, gamma=2.0):
    labels, logits = tf.convert_to_tensor(labels, tf.float32), tf.convert_to_tensor(logits, tf.float32)
    p = tf.sigmoid(logits)
    p_t = labels * p + (1 - labels) * (1 - p)
    alpha_t = labels * 0.25 + (1 - labels) * 0.75
    return alpha_t * (1 - p_t) ** 2 * tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def arguments():
    return (sigmoid_focal_loss,)
