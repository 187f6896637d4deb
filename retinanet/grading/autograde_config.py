"""The course's autograding settings: an nbgrader (traitlets) config file, not a module to import.

The course's ``nbgrader_config.py`` loads it with ``load_subconfig``, and every grading folder the
driver writes loads the course's config, so manual ``nbgrader`` commands and ``make grade`` behave alike.
Points per graded cell live in the notebooks' nbgrader metadata (set in ``solutions/``); these are the
execution and feedback settings.
"""

c = get_config()  # noqa: F821 (provided by the traitlets config loader)

# Per cell. Building a ResNet50 or a training step on a 2-core CPU takes tens of seconds, not the
# default 30; the grading CLI's --cell-timeout overrides it.
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True

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

# A flood of prints is cut to this many lines in the autograded notebook and the feedback.
c.LimitOutput.max_lines = 1000

# Feedback never shows hidden tests (nbgrader 0.9 renders them otherwise): see feedback.py.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "retinanet.grading.feedback.HideHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
