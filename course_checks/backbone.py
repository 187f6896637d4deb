"""Stage 1, exercise 1, the backbone: ``get_backbone()`` (TEST_BACKBONE_MODEL).

Lin et al., Sec. 4: C3–C5 are the last blocks of ResNet stages 3–5 ("Feature Pyramid Network Backbone").
The check reads the learner's model (its input, the layers its outputs come from, its parameter count) and
compares its outputs with what ResNet50's own layers compute from the same images.
"""

import re
import types

import numpy as np

from retinanet._tf import keras
from retinanet.backbone import BACKBONE_OUTPUT_LAYERS, DEFAULT_INPUT_SHAPE

from course_checks import probe
from course_checks.harness import Cause, as_array, call_learner, check, close, describe, expect, fail, images, passed
from course_checks.remote import beside


BACKBONE_NOT_A_MODEL = Cause(
    "backbone.not_a_model",
    "get_backbone() should return a keras.Model, but it returned {found}; did you forget to "
    "`return keras.Model(inputs=..., outputs=...)`?")
BACKBONE_INPUT_SHAPE = Cause(
    "backbone.input_shape",
    "The backbone should take images of shape {expected}, found inputs {found}; pass "
    "input_shape=input_shape to ResNet50.")
BACKBONE_OUTPUT_COUNT = Cause(
    "backbone.output_count",
    "The backbone should have 3 outputs (C3, C4, C5), found {found}; pass a list of the three layers' "
    "outputs as `outputs`.")
BACKBONE_OUTPUT_ORDER = Cause(
    "backbone.output_order",
    "The backbone's outputs come from the right layers in the wrong order ({found}); return them as "
    "[C3, C4, C5]: '{c3_layer}', '{c4_layer}', '{c5_layer}'.")
BACKBONE_LAYER_INPUT = Cause(
    "backbone.layer_input",
    "Output {index} (C{level}) is the input of layer '{expected}' (the output of '{found}'); take the "
    "layer's output: `resnet.get_layer('{expected}').output`.")
BACKBONE_WRONG_LAYER = Cause(
    "backbone.wrong_layer",
    "Output {index} (C{level}) should come from layer '{expected}', the last block of ResNet stage {level}, "
    "but it comes from '{found}'; check the name passed to get_layer.")
BACKBONE_PARAMETERS = Cause(
    "backbone.parameters",
    "ResNet50 without its classifier has {expected:,} parameters, your backbone has {found:,}; use "
    "keras.applications.ResNet50 (not another ResNet) with include_top=False.")
BACKBONE_OUTPUT_TYPE = Cause(
    "backbone.output_type",
    "Calling your backbone returns {found}; return the three maps as a list [C3, C4, C5] "
    "(`outputs=[c3, c4, c5]`), in that order, so that `c3, c4, c5 = backbone(images)` works.")
BACKBONE_NO_RESNET = Cause(
    "backbone.no_resnet",
    "Your backbone has no layers '{first}' … '{c5_layer}' of keras.applications.ResNet50; build it on "
    "`keras.applications.ResNet50(include_top=False, input_shape=input_shape)` and take C3–C5 from its layers.")
BACKBONE_VALUES = Cause(
    "backbone.values",
    "Your C{level} differs from what ResNet50's own layers compute from the same images at '{layer}': the "
    "images must go straight into ResNet50 and C3–C5 come out unchanged (no preprocessing, rescaling or "
    "extra layers inside get_backbone).")


RESNET50_PARAMETERS = 23_587_712
"""Parameters of ``keras.applications.ResNet50(include_top=False)``; the suite checks it against the
reference backbone, which the check therefore need not build (seconds on a loaded 2-core CPU)."""

RESNET50_FIRST_LAYER = "conv1_pad"
"""The first layer of ResNet50 after its input: where the images must go in unchanged."""


def _resnet_outputs(model, batch):
    """C3, C4, C5 as ResNet50's own layers compute them from ``batch`` fed straight into its first layer:
    the learner's layers and weights, entered at ``conv1_pad`` and read at the three named layers (where the
    model lives: :func:`course_checks.probe.resnet_outputs`)."""
    return beside(probe.resnet_outputs, model, batch, RESNET50_FIRST_LAYER, list(BACKBONE_OUTPUT_LAYERS))


def producer(tensor):
    """The layer that produced a symbolic Keras tensor (``None`` for a model input); for a tensor of a model
    in the learner's kernel, an object with the producing layer's name."""
    if isinstance(tensor, probe.SymbolicTensor):
        return types.SimpleNamespace(name=tensor.producer) if tensor.producer else None
    history = getattr(tensor, "_keras_history", None)
    return getattr(history, "operation", None) or (history[0] if history else None)


RESNET_LAYER_NAME = re.compile(r"^(conv[1-5]_|pool[15]_)")
"""Names of ResNet50's own layers: an output produced by another layer (an Identity named "C3", a model
wrapping ResNet50) is judged by its values alone."""


def _check_outputs(model):
    names = [getattr(producer(tensor), "name", "?") for tensor in model.outputs]
    if sorted(names) == sorted(BACKBONE_OUTPUT_LAYERS) and names != list(BACKBONE_OUTPUT_LAYERS):
        fail(BACKBONE_OUTPUT_ORDER, found=", ".join(f"'{name}'" for name in names))
    for index, (name, expected) in enumerate(zip(names, BACKBONE_OUTPUT_LAYERS)):
        if name == expected or not RESNET_LAYER_NAME.match(str(name)):
            continue
        if beside(probe.output_feeds_layer, model, index, expected):
            fail(BACKBONE_LAYER_INPUT, index=index + 1, level=index + 3, expected=expected, found=name)
        fail(BACKBONE_WRONG_LAYER, index=index + 1, level=index + 3, expected=expected, found=name)


@check
def TEST_BACKBONE_MODEL(get_backbone):
    """``get_backbone()`` returns ResNet50 without its top, with outputs C3, C4, C5 of the right layers."""
    model = call_learner("get_backbone()", get_backbone)
    expect(isinstance(model, keras.Model), BACKBONE_NOT_A_MODEL, found=describe(model))
    found_inputs = [tuple(tensor.shape) for tensor in model.inputs]
    expected_input = (None, *DEFAULT_INPUT_SHAPE)
    expect(found_inputs == [expected_input], BACKBONE_INPUT_SHAPE, expected=expected_input, found=found_inputs)
    expect(len(model.outputs) == 3, BACKBONE_OUTPUT_COUNT, found=len(model.outputs))
    expect(model.count_params() == RESNET50_PARAMETERS, BACKBONE_PARAMETERS, expected=RESNET50_PARAMETERS,
           found=model.count_params())

    # Behaviour: the outputs are ResNet50's C3, C4, C5 of the images, with nothing before or after. Judged by
    # value, so any graph computing them passes (outputs renamed by an Identity layer, ResNet50 wrapped
    # behind a fresh keras.Input); the layer names only explain a difference.
    batch = images(*DEFAULT_INPUT_SHAPE[:2], batch=1)  # a Keras model takes any batch: one image is enough
    found = call_learner("Calling your backbone", model, batch, training=False)
    if isinstance(found, dict) or not isinstance(found, (list, tuple)) or len(found) != 3:
        fail(BACKBONE_OUTPUT_TYPE, found=describe(found) + (f" with keys {sorted(found)}" if isinstance(found, dict)
                                                              else ""))
    found = [as_array(value, f"C{index + 3}") for index, value in enumerate(found)]
    if beside(probe.reads_resnet_directly, model, RESNET50_FIRST_LAYER, list(BACKBONE_OUTPUT_LAYERS)):
        expected = found  # the images go straight into conv1_pad and C3–C5 are the named layers' own outputs
    else:
        expected = call_learner("Reading ResNet50's layers of your backbone", _resnet_outputs, model, batch)
    if expected is None:
        _check_outputs(model)
        fail(BACKBONE_NO_RESNET, first=RESNET50_FIRST_LAYER)
    same = [close(value, np.asarray(wanted), rtol=1e-3, atol=1e-4) for value, wanted in zip(found, expected)]
    if not all(same):
        _check_outputs(model)
        index = same.index(False)
        fail(BACKBONE_VALUES, level=index + 3, layer=BACKBONE_OUTPUT_LAYERS[index])
    passed("TEST_BACKBONE_MODEL passed: ResNet50 (no top) with outputs C3, C4, C5 from "
           + ", ".join(BACKBONE_OUTPUT_LAYERS) + ".")
