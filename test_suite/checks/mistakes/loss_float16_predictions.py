"""The predictions are converted to float16 (as a mixed-precision model outputs them) and left so: the loss is
computed in float16. On the loss case the difference hides under the tolerance; near float16's spacing it
does not."""
from course import keras
from retinanet.losses import sigmoid_focal_loss

CHECK, CAUSE, KEYWORD = "TEST_DETECTION_LOSS", "loss.precision", "computed in float16"
ops = keras.ops


def detection_loss(targets, predictions, num_classes):
    targets = ops.convert_to_tensor(targets, dtype="float16")
    predictions = ops.convert_to_tensor(predictions, dtype="float16")
    labels = targets[..., 4]
    positive, not_ignored = labels >= 0, labels != -2
    num_positive = ops.maximum(ops.sum(ops.cast(positive, "float32"), axis=-1), 1.0)
    one_hot = ops.one_hot(ops.cast(ops.where(positive, labels, -1.0), "int32"), num_classes)
    focal = ops.where(not_ignored[..., None], sigmoid_focal_loss(one_hot, predictions[..., 4:]), 0.0)
    difference = ops.abs(targets[..., :4] - predictions[..., :4])
    smooth_l1 = ops.where(difference < 1.0, 0.5 * difference ** 2, difference - 0.5)
    box = ops.cast(ops.where(positive, ops.sum(smooth_l1, axis=-1), 0.0), "float32")
    return ops.sum(focal, axis=[1, 2]) / num_positive, ops.sum(box, axis=-1) / num_positive


def arguments():
    return (detection_loss,)
