"""Keep hidden tests out of the feedback a learner receives.

nbgrader 0.9's ``generate_feedback`` renders the *autograded* notebook, in which ``OverwriteCells`` has
put back each test cell's full source, hidden tests included, and a failing hidden test's traceback
quotes its lines. :class:`HideHiddenTests` (listed in ``GenerateFeedback.preprocessors`` in
``nbgrader_config.py``) removes the ``### BEGIN HIDDEN TESTS`` … ``### END HIDDEN TESTS`` regions and
shortens the tracebacks of those cells to their last line (the exception and its message).
"""

from nbgrader.preprocessors import ClearHiddenTests
from traitlets import Bool


class HideHiddenTests(ClearHiddenTests):
    """ClearHiddenTests, plus tracebacks of the affected cells cut down to ``Error: message``."""

    enforce_metadata = Bool(False, help="Feedback renders already-validated notebooks").tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        had_hidden_tests = self.begin_test_delimeter in cell.source
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if had_hidden_tests and cell.cell_type == "code":
            for output in cell.outputs:
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources
