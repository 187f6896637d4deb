"""The course's autograding settings: an nbgrader (traitlets) config file, not a module to import.

The course's ``nbgrader_config.py`` loads it with ``load_subconfig``, and every grading folder the
driver writes loads the course's config, so a plain ``nbgrader autograde`` / ``generate_feedback`` and
``make grade`` behave alike: sandboxed kernels, hidden tests deferred, checks re-bound, outputs capped,
learner markup sanitised, hidden tests never in feedback. Points per graded cell live in the notebooks'
nbgrader metadata (set in ``solutions/``); what the sandbox mounts for the course (``c.Sandbox.packages``,
``c.Sandbox.work_files``) is set in the course's ``nbgrader_config.py``.
"""

c = get_config()  # noqa: F821 (provided by the traitlets config loader)

# Sanitizing: nbgrader's steps, with RemoveDuplicateIds (autograder/intake/intake.py) in place of DeduplicateIds, whose
# emptied metadata on a copied check cell crashes OverwriteCells (nbgrader 0.9.6, KeyError: 'grade_id'), and
# OverwriteCells (autograder/grading/overwrite.py) without nbgrader's false "checksum has changed" warning on
# every untouched check cell that has hidden tests.
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "autograder.intake.intake.RemoveDuplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "autograder.grading.overwrite.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Execution: nbgrader's steps, with GuardedExecute (autograder/grading/execute.py) in place of Execute,
# OutputCaps (autograder/grading/outputs.py) after LimitOutput, and SanitizeMarkup (autograder/grading/markup.py)
# after the grades are saved (SaveAutoGrades compares solution cells' checksums): the autograded notebook, which
# the formgrader shows, holds no learner markup that could run.
c.Autograde.autograde_preprocessors = [
    "autograder.grading.execute.GuardedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbgrader.preprocessors.LimitOutput",
    "autograder.grading.outputs.OutputCaps",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "autograder.grading.markup.SanitizeMarkup",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Per cell. Building a ResNet50 or a training step on a 2-core CPU takes tens of seconds, not the
# default 30; the grading CLI's --cell-timeout overrides it.
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True

# Late penalties: per assignment, from c.Schedule in the course's nbgrader_config.py (autograder/grades/schedule.py).
c.AssignLatePenalties.plugin_class = "autograder.grades.schedule.LatePolicy"

# A submission that deleted test cells gets them back (nbgrader restores edited ones in any case).
c.OverwriteCells.add_missing_cells = True

# nbgrader scores a test cell that wrote anything to stderr 0, and TensorFlow writes there on its own.
# stderr chunks matching this pattern are dropped before scoring; any other stderr output still fails.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = (
    r"(?m)^("
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] "  # TensorFlow C++ logging
    r"|[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\]"  # absl logging (XLA, oneDNN, CUDA stubs)
    r"|WARNING: All log messages before absl::InitializeLog"
    r"|.*:\d+: \w*Warning: "  # Python warnings (Keras, NumPy deprecations)
    r")"
)

# A flood of prints is cut to this many lines; OutputCaps caps sizes and drops HTML/JavaScript outputs.
c.LimitOutput.max_lines = 1000

# Feedback: the learner's view (autograder/grading/feedback.py): no hidden tests, no output of a kernel that
# saw them, the grader's verdict per check.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "autograder.grading.feedback.LearnerView",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# Every page that shows a notebook: the feedback pages and the formgrader's submission view (nbgrader builds
# both with an HTMLExporter of this config) sanitise learner markup again when they render it (notebooks
# graded before SanitizeMarkup existed included), and outputs go through the same policy (sanitize_html on,
# nbconvert's clean_html filter replaced: its allow-list escapes headings and images). Feedback pages are
# written by SafeHTMLExporter: it sanitises last (after the learner view) and adds a Content-Security-Policy
# that forbids every script. See autograder/grading/markup.py.
c.HTMLExporter.preprocessors = ["autograder.grading.markup.SanitizeMarkup"]
c.HTMLExporter.sanitize_html = True
c.HTMLExporter.filters = {"clean_html": "autograder.grading.markup.clean_html"}
c.GenerateFeedback.exporter_class = "autograder.grading.markup.SafeHTMLExporter"
