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

import importlib

_MODULES = {
    "TEST_BACKBONE_MODEL": "architecture", "TEST_FPN": "architecture", "TEST_HEAD_MODEL": "architecture",
    "TEST_RETINANET": "architecture", "TEST_RESNET": "architecture", "TEST_FOCAL_LOSS": "focal_loss",
    "TEST_ANCHORS": "anchors", "TEST_IOU": "anchors", "TEST_MATCHING": "anchors", "TEST_BOX_CODING": "anchors",
    "TEST_DETECTION_LOSS": "training", "TEST_DECODE": "training", "draw_inputs": "harness",
}
"""Where each check lives. The package imports a stage's module (and so TensorFlow and the reference) only
when one of its checks is asked for: the grader imports :mod:`course_checks.probe` alone."""

__all__ = [
    "TEST_BACKBONE_MODEL", "TEST_FPN", "TEST_HEAD_MODEL", "TEST_RETINANET", "TEST_RESNET", "TEST_FOCAL_LOSS",
    "TEST_ANCHORS", "TEST_IOU", "TEST_MATCHING", "TEST_BOX_CODING", "TEST_DETECTION_LOSS", "TEST_DECODE",
]


def __getattr__(name):
    if name in _MODULES:
        return getattr(importlib.import_module(f"course_checks.{_MODULES[name]}"), name)
    raise AttributeError(f"module 'course_checks' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_MODULES))
