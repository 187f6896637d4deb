"""Keras' own keras.losses.binary_focal_crossentropy, which averages the last axis (one loss per row)."""
from course import keras

CHECK, CAUSE, KEYWORD = "TEST_FOCAL_LOSS", "focal.last_axis_reduced", "the last axis was averaged away"


def sigmoid_focal_loss(labels, logits, alpha=0.25, gamma=2.0):
    return keras.losses.binary_focal_crossentropy(labels, logits, apply_class_balancing=True, alpha=alpha,
                                                  gamma=gamma, from_logits=True)


def arguments():
    return (sigmoid_focal_loss,)
