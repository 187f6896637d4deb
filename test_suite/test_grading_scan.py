"""The scan for reference use and tampering, on single cells (no grading run)."""

import nbformat
import pytest

from retinanet.grading.scan import scan_notebook, scan_source


@pytest.mark.parametrize("source, flag", [
    ("from retinanet.backbone import get_backbone", "uses-reference"),
    ("import retinanet.fpn as fpn", "uses-reference"),
    ("from retinanet import heads", "uses-reference"),
    ("text = open('../../sol' + 'utions/01-architecture/architecture.ipynb').read()", "uses-reference"),
    ("TEST_FPN = lambda layer: None", "tampering"),
    ("import tests\ntests.TEST_HEAD_MODEL = print", "tampering"),
    ("del TEST_RESNET", "tampering"),
    ("import sys\nsys.modules['tests'].TEST_FPN = None", "tampering"),
    ("globals()['TEST_' + 'FPN'] = print", "tampering"),
    ("__import__('te' + 'sts')", "tampering"),
    ("import builtins\nbuiltins.AssertionError = Exception", "tampering"),
])
def test_suspicious_code_is_flagged(source, flag):
    assert flag in {found for found, _ in scan_source(source)}


@pytest.mark.parametrize("source", [
    "from retinanet._tf import keras, tf",
    "def build_head(output_filters):\n    return keras.Sequential([keras.layers.Conv2D(output_filters, 3)])",
    "TEST_HEAD_MODEL(build_head)  # learners may run a check themselves",
    "%timeit build_head(9)\n!ls",
    "def broken(:\n    pass",
    "model.compile(optimizer='adam')",
])
def test_ordinary_learner_code_is_not_flagged(source):
    assert scan_source(source) == []


def test_only_cells_the_learner_wrote_are_scanned():
    setup = "from tests import TEST_FPN"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(setup),
                                         nbformat.v4.new_code_cell("import tests")])
    assert {flag for flag, _ in scan_notebook(nb, [setup])} == {"tampering"}
    assert scan_notebook(nb, [setup, "import tests"]) == []
