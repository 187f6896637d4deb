"""What the course's notebooks import besides the reference solution and the checks.

``from course import keras, tf`` is the learners' import of TensorFlow and Keras 3: the same modules as
``import tensorflow as tf`` and ``import keras``, loaded without the lines TensorFlow prints to stderr at
start-up (they alarm learners, and nbgrader scores a check cell that wrote to stderr as failed). The one
implementation of that quiet import is :mod:`retinanet._tf`, which the checks and the command line use too;
this package only gives learners a public name for it. :mod:`course.widgets` holds the interactive figures
of the notebooks.

Neither belongs in :mod:`retinanet`, which holds the paper's model and its machinery only: both exist for
teaching in notebooks. ``keras`` and ``tf`` load on first use, so ``from course.widgets import ...`` imports
no more than the figures need.
"""

import importlib

__all__ = ["keras", "tf"]


def __getattr__(name):
    if name in __all__:
        value = getattr(importlib.import_module("retinanet._tf"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'course' has no attribute {name!r}")
