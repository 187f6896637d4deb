"""The RetinaNet class itself is passed to the check instead of a model built from it."""
from retinanet.model import RetinaNet

CHECK, CAUSE, KEYWORD = "TEST_RETINANET", "model.not_a_model", "expects a RetinaNet instance"


def arguments():
    return (RetinaNet,)
