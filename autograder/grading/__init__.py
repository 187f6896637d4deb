"""One submission through nbgrader: the steps nbgrader runs (its preprocessors and exporter) and their settings.

``worker``            ``python -I -m autograder.grading.worker``: ``nbgrader autograde``, the scan, the feedback
``execute``           nbgrader's Execute step, guarded: learner cells in the sandboxed kernel, checks in the judge
``judge``             runs a check cell's checks in the grader, with handles to the learner's objects
``kernel_checks``     the kernel's ``tests.py`` while grading (mounted by path): ``TEST_*`` names that do nothing
``scan``              flags code that uses the reference or tampers, for review (never a score)
``outputs``           caps on outputs; no HTML or JavaScript from learner code
``markup``            learner markdown, raw cells and names cleaned; the feedback pages' CSP
``feedback``          the learner's view of a graded notebook; pages for ungraded submissions
``autograde_config``  nbgrader settings (a config file, loaded by path by the course's ``nbgrader_config.py``)
"""
