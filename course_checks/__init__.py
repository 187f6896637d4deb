"""The checks of the RetinaNet course: one ``TEST_*`` function per exercise, one module per stage.

Every check feeds the same inputs (and, for layers, the same weights) into the learner's code and into the
reference implementation (the ``retinanet`` package) and compares what comes out. On success it prints one
line; on failure it raises ``AssertionError`` with one message: what was expected, what was found, and the
cause when the check can tell it.

=====================  ==============================================================================
``harness``            shared: calling learner code safely, comparisons, the table of causes
``architecture``       stage 1: TEST_BACKBONE_MODEL, TEST_FPN, TEST_HEAD_MODEL, TEST_RETINANET (TEST_RESNET)
``focal_loss``         stage 2: TEST_FOCAL_LOSS
``anchors``            stage 3: TEST_ANCHORS, TEST_IOU, TEST_MATCHING, TEST_BOX_CODING
``training``           stage 4: TEST_DETECTION_LOSS, TEST_DECODE
=====================  ==============================================================================

Learners import the checks from the facade ``tests.py``: ``from tests import TEST_HEAD_MODEL``.
"""

from course_checks.anchors import TEST_ANCHORS, TEST_BOX_CODING, TEST_IOU, TEST_MATCHING
from course_checks.architecture import TEST_BACKBONE_MODEL, TEST_FPN, TEST_HEAD_MODEL, TEST_RESNET, TEST_RETINANET
from course_checks.focal_loss import TEST_FOCAL_LOSS
from course_checks.training import TEST_DECODE, TEST_DETECTION_LOSS

__all__ = [
    "TEST_BACKBONE_MODEL", "TEST_FPN", "TEST_HEAD_MODEL", "TEST_RETINANET", "TEST_RESNET", "TEST_FOCAL_LOSS",
    "TEST_ANCHORS", "TEST_IOU", "TEST_MATCHING", "TEST_BOX_CODING", "TEST_DETECTION_LOSS", "TEST_DECODE",
]
