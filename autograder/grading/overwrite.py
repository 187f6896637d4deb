"""nbgrader's OverwriteCells without its false alarm on check cells that have hidden tests.

``nbgrader generate_assignment`` stores each read-only cell in the gradebook, with its checksum, *before*
it removes the hidden tests (``ComputeChecksums``, ``SaveCells``, then ``ClearHiddenTests``, in nbgrader
0.9.6's ``GenerateAssignment.preprocessors``), and the released cell's checksum is computed after. So at
``nbgrader autograde`` the untouched released cell never matches the stored checksum: OverwriteCells logs
``Attribute 'checksum' for cell … has changed!`` for every check cell with hidden tests of every submission,
then puts the stored source (hidden tests included) back, which is how the hidden tests come to run
(jupyter/nbgrader#1961). :class:`OverwriteCells` puts that source back silently when the submitted cell is
exactly the released one; a cell the learner changed is reported as before.
"""

from nbgrader import utils
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import ClearHiddenTests
from nbgrader.preprocessors import OverwriteCells as NbgraderOverwriteCells
from nbformat.notebooknode import NotebookNode


class OverwriteCells(NbgraderOverwriteCells):
    """nbgrader's OverwriteCells; a read-only cell as released (its hidden tests removed) is restored from the
    gradebook without a warning, since nothing about it changed."""

    def released_source(self, source_cell):
        """The source the learner received for the gradebook's ``source_cell``: nbgrader's ClearHiddenTests,
        with this configuration's delimiters, applied to the stored source."""
        cell = NotebookNode(source=source_cell.source, cell_type=source_cell.cell_type, metadata=NotebookNode())
        ClearHiddenTests(parent=self)._remove_hidden_test_region(cell)
        return cell.source

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None and utils.is_locked(cell):
            try:
                source_cell = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
            except MissingEntry:
                source_cell = None  # nbgrader's own handling follows
            if (source_cell is not None and source_cell.locked and cell.cell_type == source_cell.cell_type
                    and cell.source != source_cell.source and cell.source == self.released_source(source_cell)):
                cell.source = source_cell.source  # what nbgrader would do, after its warning
        return super().preprocess_cell(cell, resources, cell_index)
