"""log(p_t) of a probability clipped to [1e-7, 1]: finite, but capped for confident mistakes."""
from course import tf

CHECK, CAUSE, KEYWORD = "TEST_FOCAL_LOSS", "focal.capped", "clipped or ε-shifted log(p_t)"


def sigmoid_focal_loss(labels, logits, alpha=0.25, gamma=2.0):
    labels, logits = tf.convert_to_tensor(labels, tf.float32), tf.convert_to_tensor(logits, tf.float32)
    p = tf.sigmoid(logits)
    p_t = labels * p + (1 - labels) * (1 - p)
    alpha_t = labels * alpha + (1 - labels) * (1 - alpha)
    return -alpha_t * (1 - p_t) ** gamma * tf.math.log(tf.clip_by_value(p_t, 1e-7, 1.0))


def arguments():
    return (sigmoid_focal_loss,)
