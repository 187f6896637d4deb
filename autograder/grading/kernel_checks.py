"""The learner kernel's ``tests.py`` while a notebook is graded (the grader mounts it in place of the course's).

The course's checks never run in the learner's kernel when grading: each check cell is judged by the grader
in its own process (:mod:`autograder.grading.judge`), and so are the hidden tests. The notebook still imports
``from tests import TEST_FPN``; here every ``TEST_*`` name is a function that does nothing, so those imports
succeed without the checks, the reference they compare with, or anything that decides a grade being in
the kernel. Standard library only.
"""

import re


def _judged_by_the_grader(*args, **kwargs):
    """A course check: while grading, the grader runs it outside this kernel (this call does nothing)."""
    return None


def __getattr__(name):
    if re.fullmatch(r"TEST_\w+", name):
        return _judged_by_the_grader
    raise AttributeError(f"while grading, tests.py offers only the TEST_* checks, not {name!r}")
