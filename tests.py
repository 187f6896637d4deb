"""The checks of the RetinaNet course, as learners import them: ``from tests import TEST_HEAD_MODEL``.

A thin facade over the package :mod:`course_checks` (one module per stage, a shared harness); see its
docstring. Kept as a top-level module because the notebooks, the seed notebook's API and the grader's
pristine copy all import ``tests``.
"""

from course_checks import *  # noqa: F401,F403  (the TEST_* functions)
from course_checks import __all__  # noqa: F401
from course_checks import draw_inputs  # noqa: F401  (the autograder's judge: fresh inputs per grading run)
