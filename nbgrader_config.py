"""nbgrader configuration of the course.

The course keeps its notebooks in two folders at the project root:

* ``solutions/<assignment>/<notebook>.ipynb`` — the nbgrader *source*: reference solutions between
  ``### BEGIN SOLUTION`` / ``### END SOLUTION`` and graded check cells, some with hidden tests;
* ``exercises/<assignment>/<notebook>.ipynb`` — the learner notebooks, *generated* from the source with
  ``make exercises`` (``nbgrader generate_assignment <assignment> --force`` in a temporary copy of the course,
  autograder/release.py; exercises/ and the course's ``gradebook.db``, where the assignments are recorded,
  are replaced only when nbgrader succeeded) and never edited by hand.

nbgrader reads this file from the directory it runs in, so run nbgrader from the project root.
"""

import os

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)

# Paths are relative to the project root, wherever nbgrader is started from.
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# What replaces a solution region in the exercises: the learner sees where to write, and running the
# unfinished cell fails with a NotImplementedError that the checks turn into a one-line hint.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Autograding (sandboxed kernels, hidden tests run last and never shown, checks that cannot be rebound,
# per-cell timeout suited to TensorFlow, TensorFlow's stderr noise ignored): one file shared with
# `make grade`'s grading folders. Points per graded cell are in the solution notebooks' nbgrader metadata.
load_subconfig(os.path.join(c.CourseDirectory.root, "autograder", "grading", "autograde_config.py"))  # noqa: F821

# What a graded kernel may read besides the Python environment (autograder/sandbox/sandbox.py): the
# reference package, which notebooks 02-04 import for helpers, and the course package, which every notebook
# imports (`from course import keras, tf`; the figures of course.widgets). The checks are judged by the grader, never
# in the kernel: the grader reads the course's tests.py named here, and the kernel's tests.py is
# autograder/grading/kernel_checks.py (TEST_* names that do nothing); course_checks is not mounted.
c.Sandbox.work_files = {"tests.py": os.path.join(c.CourseDirectory.root, "tests.py")}
c.Sandbox.packages = ["retinanet", "course"]

# Due dates and late policies, per assignment, in this one place (autograder/grades/schedule.py): each submission's
# time (nbgrader collect's timestamp.txt) against its due date (plus any extension) gives its late penalty.
# `make exercises` writes the dates into the course's gradebook; `make grade` into the class gradebook.
# Format: {"01-architecture": "2026-12-07 23:59:00 Europe/Berlin"} and {"01-architecture": "10% per day"}
# (policies: "none", "zero", "P% per day", "P% per hour"; unlisted: LateSubmissionPlugin.penalty_method).
c.Schedule.due = {}
c.Schedule.late_policy = {}
c.LateSubmissionPlugin.penalty_method = "none"
