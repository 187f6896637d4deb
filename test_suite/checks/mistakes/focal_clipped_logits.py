"""The logits are clipped to [−20, 20] "for stability", which changes the loss beyond |z| = 20."""
from course import tf

CHECK, CAUSE, KEYWORD = "TEST_FOCAL_LOSS", "focal.extreme_differs", "for confident predictions"


def sigmoid_focal_loss(labels, logits, alpha=0.25, gamma=2.0):
    labels, logits = tf.convert_to_tensor(labels, tf.float32), tf.convert_to_tensor(logits, tf.float32)
    p = tf.sigmoid(logits)
    p_t = labels * p + (1 - labels) * (1 - p)
    alpha_t = labels * alpha + (1 - labels) * (1 - alpha)
    logits = tf.clip_by_value(logits, -20.0, 20.0)
    p = tf.sigmoid(logits)
    p_t = labels * p + (1 - labels) * (1 - p)
    return alpha_t * (1 - p_t) ** gamma * tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def arguments():
    return (sigmoid_focal_loss,)
