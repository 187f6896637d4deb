"""The scan for reference use and tampering, on single cells (no grading run)."""

import nbformat
import pytest

from autograder.grading.scan import scan_notebook, scan_source


@pytest.mark.parametrize("source, flag", [
    ("from retinanet.backbone import get_backbone", "uses-reference"),
    ("import retinanet.fpn as fpn", "uses-reference"),
    ("from retinanet import heads", "uses-reference"),
    ("Ref = TEST_FPN.__globals__['RefFeaturePyramidNetwork']", "uses-reference"),
    ("%time from retinanet.fpn import FeaturePyramidNetwork", "uses-reference"),
    ("%%capture\nfrom retinanet import fpn", "uses-reference"),
    ("%%writefile helper.py\nfrom retinanet.fpn import FeaturePyramidNetwork", "uses-reference"),
    ("answer = !python -c 'import retinanet.boxes'", "uses-reference"),
    ("TEST_FPN = lambda layer: None", "tampering"),
    ("def TEST_FPN(FeaturePyramidNetwork):\n    print('TEST_FPN passed')", "tampering"),
    ("from unittest.mock import MagicMock as TEST_FPN", "tampering"),
    ("TEST_FPN.__wrapped__.__code__ = (lambda layer: None).__code__", "tampering"),
    ("%time TEST_FPN = lambda layer: None", "tampering"),
    ("import tests\ntests.TEST_HEAD_MODEL = print", "tampering"),
    ("import course_checks.fpn as checks\nchecks.TEST_FPN = print", "tampering"),
    ("del TEST_RESNET", "tampering"),
    ("import sys\nsys.modules['tests'].TEST_FPN = None", "tampering"),
    ("globals()['TEST_' + 'FPN'] = print", "tampering"),
    ("__import__('te' + 'sts')", "tampering"),
    ("import builtins\nbuiltins.AssertionError = Exception", "tampering"),
    ("get_ipython().events.register('pre_run_cell', print)", "tampering"),
    ("import sys\nsys.settrace(lambda *a: None)", "tampering"),
    ("import numpy as np\nnp.allclose = lambda *a, **k: True", "tampering"),
    ("import gc\nchecks = gc.get_objects()", "tampering"),
    ("value = getattr(layer, '__glo' + 'bals__')", "uses-reference"),
    ("import sys as _s\n_s.modules['tests'] = None", "tampering"),
    ("import pkgutil\ncheck = pkgutil.resolve_name('tests:TEST_FPN')", "tampering"),
    ("import operator\nframe = operator.attrgetter('f_back')(f)", "tampering"),
    ("%alias_magic t time", "tampering"),
])
def test_suspicious_code_is_flagged(source, flag):
    assert flag in {found for found, _ in scan_source(source, {"np"})}


@pytest.mark.parametrize("source", [
    "from retinanet._tf import keras, tf",  # the notebooks' import before the course package
    "from course import keras, tf",
    "from course.widgets import focal_loss_explorer",
    "import course.widgets\ncourse.widgets.focal_loss_explorer()",
    "def build_head(output_filters):\n    return keras.Sequential([keras.layers.Conv2D(output_filters, 3)])",
    "TEST_HEAD_MODEL(build_head)  # learners may run a check themselves",
    "%timeit build_head(9)\n!ls",
    "%%time\nmodel = build_head(9)",
    "%matplotlib inline",
    "def broken(:\n    pass",
    "model.compile(optimizer='adam')",
    "print(In[-1])",
    "np.random.seed(0)\nplt.rcParams['figure.dpi'] = 100",
    "import threading\nthreading.Thread(target=print).start()",
    # Honest code an earlier scan flagged (the scan is advice now, and silent on everyday Python):
    "import math",
    "from tests import TEST_FOCAL_LOSS",
    "checks = [TEST_FPN, TEST_RESNET]",
    "from course_checks import harness",
    "print('my solutions: see the .ipynb next to the gradebook')",
    "kind = loss.__class__.__name__\nstate = self.__dict__",
    "for level in (3, 4, 5):\n    layer = getattr(self, f'conv_c{level}_1x1')",
])
def test_ordinary_learner_code_is_not_flagged(source):
    assert scan_source(source, {"np", "plt"}) == []


def test_only_statements_the_learner_wrote_are_scanned():
    setup = "import gc\nfrom tests import TEST_FPN"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(setup),
                                         nbformat.v4.new_code_cell("import gc")])
    assert {flag for flag, _ in scan_notebook(nb, [])} == {"tampering"}
    assert scan_notebook(nb, [setup]) == []


def test_a_line_added_to_a_released_cell_or_crlf_endings_flag_nothing():
    released = "import numpy as np\nimport gc  # the course's own (say)\nfrom tests import TEST_FPN"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import math\r\n" + released.replace("\n", "\r\n"))])
    assert scan_notebook(nb, [released]) == []


def test_patching_a_module_is_known_from_any_cell_of_the_notebook():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import numpy as np"),
                                         nbformat.v4.new_code_cell("np.allclose = lambda *a, **k: True")])
    assert [flag for flag, _ in scan_notebook(nb, ["import numpy as np"])] == ["tampering"]
