"""The checks of the RetinaNet course: one ``TEST_*`` function per exercise, one module per exercise.

Every check feeds the same inputs (and, for layers, the same weights) into the learner's code and into the
reference implementation (the ``retinanet`` package) and compares what comes out. On success it prints one
line; on failure it raises ``AssertionError`` with one message: what was expected, what was found, and the
cause when the check can tell it.

=====================  ==============================================================================
``harness``            shared: calling learner code, comparisons, the table of causes, common inputs
``backbone``           stage 1: TEST_BACKBONE_MODEL
``fpn``                stage 1: TEST_FPN
``heads``              stage 1: TEST_HEAD_MODEL
``model``              stage 1: TEST_RETINANET (and TEST_RESNET, its name on the design card)
``focal_loss``         stage 2: TEST_FOCAL_LOSS
``anchors``            stage 3: TEST_ANCHORS
``iou``                stage 3: TEST_IOU
``matching``           stage 3: TEST_MATCHING
``box_coding``         stage 3: TEST_BOX_CODING
``detection_loss``     stage 4: TEST_DETECTION_LOSS
``decode``             stage 4: TEST_DECODE
``reference``          the reference solution as each check's argument (for the test suite)
``probe``, ``remote``  the grader's wire: the probe agent in the learner's kernel, handles to its objects
=====================  ==============================================================================

Each exercise's module holds its check, its helpers and the causes it reports, and is named after its
exercise, like the exercise's cause keys and mistake files (``fpn``: causes ``fpn.*``, mutants
``test_suite/checks/mistakes/fpn_*.py``, reference ``retinanet/fpn.py``). A later exercise reuses an earlier one's
checks by importing them (``model`` from ``fpn`` and ``heads``, ``box_coding`` from ``anchors``); what
several share lives in ``harness``.

Learners import the checks from the facade ``tests.py``: ``from tests import TEST_HEAD_MODEL``.
"""

import importlib

_MODULES = {
    "TEST_BACKBONE_MODEL": "backbone", "TEST_FPN": "fpn", "TEST_HEAD_MODEL": "heads", "TEST_RETINANET": "model",
    "TEST_RESNET": "model", "TEST_FOCAL_LOSS": "focal_loss", "TEST_ANCHORS": "anchors", "TEST_IOU": "iou",
    "TEST_MATCHING": "matching", "TEST_BOX_CODING": "box_coding", "TEST_DETECTION_LOSS": "detection_loss",
    "TEST_DECODE": "decode", "draw_inputs": "harness",
}
"""Where each check lives. The package imports an exercise's module (and so TensorFlow and the reference) only
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
