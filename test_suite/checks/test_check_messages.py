"""The checks' messages: code in them works when copied into the notebook, numbers come from the reference.

Code a learner may copy is written between backticks. Here the hints whose correctness matters most are
executed the way a learner would: in the namespace the notebook has at that point (for stage 1, where
``prior_bias`` is a float computed in ``__init__``, not the reference's function).
"""

import inspect
import re
import types

import numpy as np
import pytest

import tests
from course import keras, tf
from course_checks import backbone, decode, focal_loss, iou, model
from course_checks.harness import CAUSES, PAPER
from retinanet.boxes import iou as iou_reference
from retinanet.heads import build_head, prior_bias


def snippets(text):
    return re.findall(r"`([^`]+)`", text)


@pytest.mark.parametrize("cause", [model.MODEL_PRIOR_MISSING, model.MODEL_PRIOR_SIGN, model.MODEL_PRIOR_LOG_PI,
                                   model.MODEL_PRIOR_IS_PI, model.MODEL_PRIOR_WRONG], ids=lambda cause: cause.key)
def test_prior_bias_hint_works_in_the_notebooks_init(cause):
    """Copied into RetinaNet.__init__ of the stage-1 notebook, the hint gives the classification head the prior."""
    code = snippets(cause.text(found=0.0))
    assert len(code) == 2 and code[0].startswith("prior_bias = ") and "Constant(prior_bias)" in code[1]
    namespace = {"np": np, "keras": keras, "tf": tf, "build_head": build_head, "num_classes": 3,
                 "self": types.SimpleNamespace()}
    for line in code:
        exec(line, namespace)
    assert isinstance(namespace["prior_bias"], float)
    np.testing.assert_allclose(np.asarray(namespace["self"].cls_head.layers[-1].bias), prior_bias(), rtol=1e-6)


def test_combined_nms_hint_is_a_real_keyword():
    (code,) = snippets(decode.DECODE_UNIT_CLIP.text(what="decode_detections(...)"))
    call = code.replace("...", "boxes, scores")
    assert call.startswith("tf.image.combined_non_max_suppression(") and "clip_boxes=False" in call
    inspect.signature(tf.image.combined_non_max_suppression).bind(None, None, 1, 1, clip_boxes=False)


def test_divide_no_nan_hint_gives_zero_for_two_empty_boxes():
    (code,) = snippets(iou.IOU_EMPTY_BOXES.text(what="iou", box_a="[5, 5, 5, 5]", box_b="[5, 5, 5, 5]"))
    value = eval(code, {"tf": tf, "intersection": tf.zeros(3), "union": tf.zeros(3)})
    assert np.array_equal(np.asarray(value), np.zeros(3))


@pytest.mark.parametrize("cause", [focal_loss.NOT_FINITE, focal_loss.CAPPED], ids=lambda cause: cause.key)
def test_cross_entropy_hint_is_exact_at_large_logits(cause):
    (code,) = snippets(cause.text(label=1, logit=-100, expected=25.0, found=4.0))
    labels, logits = np.array([1.0, 0.0], np.float32), np.array([-100.0, 100.0], np.float32)
    value = eval(code, {"tf": tf, "labels": labels, "logits": logits})
    np.testing.assert_allclose(np.asarray(value), [100.0, 100.0])


def test_layer_output_hint_names_the_layer():
    (code,) = snippets(backbone.BACKBONE_LAYER_INPUT.text(index=1, level=3, expected="conv3_block4_out",
                                                          found="conv3_block4_add"))
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(128, 128, 3))
    output = eval(code, {"resnet": resnet})
    assert output is resnet.get_layer("conv3_block4_out").output


def test_batch_size_hint_reads_the_batch():
    (code,) = snippets(model.MODEL_BATCH_HARD_CODED.text(batch=2, expected=(2, 9, 7), found=(1, 18, 7)))
    namespace = {"tf": tf, "image": tf.zeros((2, 64, 64, 3))}
    exec(code, namespace)
    assert int(namespace["batch_size"]) == 2


def test_every_code_snippet_is_python():
    for cause in CAUSES.values():
        for code in snippets(cause.message):
            code = code.format(**PAPER, name="conv_c3_1x1", expected="conv3_block4_out")
            try:
                compile(code, cause.key, "eval")
            except SyntaxError:
                compile("def hint():\n    " + code, cause.key, "exec")  # a statement (assignment, return)


@pytest.mark.parametrize("literal", ["0.01", "0.05", "0.25", "4.595", "0.1, 0.1, 0.2, 0.2", "256", "36"])
def test_paper_numbers_come_from_the_reference_constants(literal):
    """A message shows σ, π, the prior, the score threshold, α, the variances, C and 9·4 through PAPER."""
    written_out = [cause.key for cause in CAUSES.values() if literal in re.sub(r"\{[^}]*\}", "", cause.message)]
    assert not written_out, f"{literal} is written out in {written_out}; use the PAPER name instead"


def test_every_cause_key_names_its_module():
    modules = {"backbone", "fpn", "head", "model", "focal", "anchors", "iou", "matching", "box_coding", "loss",
               "decode"}
    assert {key.split(".")[0] for key in CAUSES} == modules


def test_iou_report_shows_two_different_numbers_for_a_small_difference():
    """The fallback names the pair that differs most, with enough digits that the two values read differently."""
    boxes_a, boxes_b = iou._iou_case()
    reference = np.asarray(iou_reference(boxes_a, boxes_b))

    def nearly(a, b):
        values = reference.copy()
        values[3, 4] += 3e-4
        return values

    with pytest.raises(AssertionError) as failure:
        tests.TEST_IOU(nearly)
    found = re.search(r"should be (\S+), found (\S+);", str(failure.value))
    assert failure.value.cause == "iou.differs" and found and found.group(1) != found.group(2)
    assert iou._box(boxes_a[3]) in str(failure.value) and iou._box(boxes_b[4]) in str(failure.value)


def test_crash_reports_carry_tensorflows_message_without_its_decorations():
    def crashes(*arguments):
        return tf.concat([tf.zeros((2, 5, 4)), tf.zeros((2, 6, 3))], axis=-1)

    with pytest.raises(AssertionError) as failure:
        tests.TEST_IOU(crashes)
    message = str(failure.value)
    assert message.startswith("iou(boxes_a, boxes_b) raised InvalidArgumentError: ConcatOp : Dimension 1")
    assert "function_node" not in message and "\x1b" not in message and "[Op:" not in message


class RetinaNetWhoseAttributeRaises(keras.Model):
    """An answer whose attribute raises something other than AttributeError (the checks' hasattr lets it out)."""

    @property
    def num_classes(self):
        return {}[0]


def test_an_exception_inside_a_check_becomes_a_message_about_the_answer():
    with pytest.raises(AssertionError) as failure:
        tests.TEST_RETINANET(RetinaNetWhoseAttributeRaises())
    message = str(failure.value)
    assert message.startswith("TEST_RETINANET could not read your answer") and "KeyError" in message
    assert failure.value.__cause__ is None and "\n" not in message
