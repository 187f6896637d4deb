"""The learner-facing checks of tests.py: the reference passes each with one printed line and a silent stderr;
code that crashes or is left unfinished gets a short AssertionError instead of a traceback into the checker.

Wrong-but-running implementations are covered by the mistakes catalogue (test_mistakes.py), correct ones
written differently from the reference by test_check_alternatives.py.
"""

import subprocess
import sys

import pytest

import course_checks
import tests
from course_checks import backbone
from course_checks.harness import images, small_backbone
from retinanet import fpn, heads, model
from retinanet.backbone import get_backbone

from course_checks.reference import REFERENCE_ARGUMENTS


class UnfinishedFPN(fpn.FeaturePyramidNetwork):
    def call(self, images, training=False):
        raise NotImplementedError()


class UnfinishedRetinaNet(model.RetinaNet):
    def call(self, image, training=False):
        raise NotImplementedError()


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


def returns_none(*args, **kwargs):
    return None


REFERENCE = REFERENCE_ARGUMENTS

UNFINISHED = {
    "TEST_FPN": lambda: (UnfinishedFPN,),
    "TEST_RETINANET": lambda: (UnfinishedRetinaNet(num_classes=3, backbone=small_backbone()),),
    "TEST_RESNET": lambda: (UnfinishedRetinaNet(num_classes=3, backbone=small_backbone()),),
    "TEST_BOX_CODING": lambda: (not_implemented, not_implemented),
}

FUNCTION_CHECKS = [name for name in tests.__all__ if name not in ("TEST_FPN", "TEST_RETINANET", "TEST_RESNET")]


def test_every_check_has_a_reference_case():
    assert set(REFERENCE) == set(tests.__all__)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_passes_with_one_line_and_no_stderr(name, capsys):
    result = getattr(tests, name)(*REFERENCE[name]())
    captured = capsys.readouterr()
    assert result is None
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{name} passed"), captured.out


def test_full_size_retinanet_passes(capsys):
    """TEST_RETINANET as the notebook calls it: ResNet50 at 128×128, ten classes, a model never called before."""
    tests.TEST_RETINANET(model.RetinaNet(num_classes=10, backbone=get_backbone(weights=None)))
    captured = capsys.readouterr()
    assert captured.err == "" and "3069" in captured.out


def test_resnet50_parameter_count_is_the_reference_backbones():
    """TEST_BACKBONE_MODEL compares with this number instead of building a second ResNet50."""
    assert backbone.RESNET50_PARAMETERS == get_backbone(weights=None).count_params()


def test_resnet_is_the_whole_model_check_under_its_design_name(capsys):
    """TEST_RESNET (the design card's name) runs the same check as TEST_RETINANET and says which was called."""
    wrong = model.RetinaNet(num_classes=3, backbone=small_backbone())
    wrong.box_head = heads.build_head(9 * 4, bias_initializer="ones")
    messages = []
    for name in ("TEST_RETINANET", "TEST_RESNET"):
        with pytest.raises(AssertionError) as failure:
            getattr(tests, name)(wrong)
        messages.append(str(failure.value))
    assert messages[0] == messages[1] and "box head" in messages[0]


def test_a_never_called_model_is_left_as_a_normal_first_call_leaves_it(capsys):
    """TEST_RETINANET runs a never-called model's first call eagerly only (no symbolic build); afterwards the
    model is built, counts the same parameters and computes the same as a model built by a plain call."""
    checked, plain = (model.RetinaNet(num_classes=3, backbone=small_backbone()) for _ in range(2))
    tests.TEST_RETINANET(checked)
    batch = images(64, 64)
    plain(batch)
    plain.set_weights(checked.get_weights())
    assert checked.built and checked.fpn.built and checked.count_params() == plain.count_params()
    assert (checked(batch).numpy() == plain(batch).numpy()).all()


def test_the_check_does_not_change_the_learners_model():
    """TEST_RETINANET compares with the learner's own weights and leaves them as they were."""
    retinanet = model.RetinaNet(num_classes=3, backbone=small_backbone())
    retinanet(images(64, 64))
    before = [w.copy() for w in retinanet.get_weights()]
    tests.TEST_RETINANET(retinanet)
    assert all((a == b).all() for a, b in zip(before, retinanet.get_weights()))



@pytest.mark.parametrize("name", sorted(tests.__all__))
def test_unfinished_code_gets_a_clear_message(name, capsys):
    arguments = UNFINISHED.get(name, lambda: (not_implemented,))()
    with pytest.raises(AssertionError) as failure:
        getattr(tests, name)(*arguments)
    assert "NotImplementedError" in str(failure.value)
    assert failure.value.__cause__ is None and failure.value.__suppress_context__
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("name", FUNCTION_CHECKS)
def test_none_left_in_place_gets_a_clear_message(name):
    arguments = (returns_none, returns_none) if name == "TEST_BOX_CODING" else (returns_none,)
    with pytest.raises(AssertionError, match="None"):
        getattr(tests, name)(*arguments)


def test_wrong_return_type_is_named():
    with pytest.raises(AssertionError, match="should return a keras.Model.*list"):
        tests.TEST_BACKBONE_MODEL(lambda: [1, 2, 3])
    with pytest.raises(AssertionError, match="one loss per element"):
        tests.TEST_FOCAL_LOSS(lambda labels, logits, alpha, gamma: 0.5)


def test_facade_exports_the_package_checks():
    assert tests.__all__ == course_checks.__all__
    assert all(getattr(tests, name) is getattr(course_checks, name) for name in tests.__all__)


def test_checks_import_from_any_folder(tmp_path):
    """As in the seed notebook; works outside the repository through the editable install (py-modules)."""
    result = subprocess.run(
        [sys.executable, "-c", "from tests import TEST_BACKBONE_MODEL, TEST_RESNET, TEST_HEAD_MODEL, TEST_RETINANET; "
         "print('ok')"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    assert result.stderr == ""
