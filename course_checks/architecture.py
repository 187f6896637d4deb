"""Stage 1, the architecture: ``get_backbone``, the FPN's ``call``, ``build_head`` and ``RetinaNet``.

Lin et al., Sec. 4: C3–C5 are the last blocks of ResNet stages 3–5 ("Feature Pyramid Network
Backbone"); the FPN turns them into P3–P7 (P6 from C5, P7 from ReLU(P6)); two subnets of four 3×3/256
ReLU convolutions and an output convolution, shared by every level, predict K·A class logits and 4·A box
deltas (Fig. 3), initialised with σ = 0.01 and the prior bias b = −log((1 − π)/π) (Sec. 4.1).

Wiring is compared through the reference's pure functions (:func:`retinanet.fpn.pyramid_from_features`,
:func:`retinanet.model.outputs_from_pyramid`) applied to the learner's own layers, so that a difference
is a difference of wiring, never of weights.
"""

import functools
import re
import types

import numpy as np

from retinanet._tf import keras
from retinanet.anchors import ANCHORS_PER_LOCATION, anchors_per_level
from retinanet.backbone import BACKBONE_OUTPUT_LAYERS, DEFAULT_INPUT_SHAPE
from retinanet.fpn import (FPN_CHANNELS, FPN_LAYERS, LATERAL_LAYERS, OUTPUT_LAYERS, PYRAMID_LEVELS,
                           FeaturePyramidNetwork as ReferenceFPN, pyramid_from_features)
from retinanet.heads import HEAD_DEPTH, KERNEL_STDDEV, PRIOR_PROBABILITY, build_head as reference_head, prior_bias
from retinanet.model import outputs_from_pyramid

from course_checks.harness import (Cause, Variant, as_array, call_learner, check, close, describe, diagnose, expect,
                                   fail, first_line, images, passed, random_generator)
from course_checks import probe
from course_checks.remote import beside, build_eagerly, missing_attributes, type_name, type_of

# --------------------------------------------------------------------------------------------------
# Exercise 1: the backbone
# --------------------------------------------------------------------------------------------------

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


def _check_outputs(model):
    __tracebackhide__ = True  # noqa: F841
    names = [getattr(producer(tensor), "name", "?") for tensor in model.outputs]
    if sorted(names) == sorted(BACKBONE_OUTPUT_LAYERS) and names != list(BACKBONE_OUTPUT_LAYERS):
        fail(BACKBONE_OUTPUT_ORDER, found=", ".join(f"'{name}'" for name in names))
    for index, (name, expected) in enumerate(zip(names, BACKBONE_OUTPUT_LAYERS)):
        if name == expected:
            continue
        if beside(probe.output_feeds_layer, model, index, expected):
            fail(BACKBONE_LAYER_INPUT, index=index + 1, level=index + 3, expected=expected, found=name)
        fail(BACKBONE_WRONG_LAYER, index=index + 1, level=index + 3, expected=expected, found=name)


@check
def TEST_BACKBONE_MODEL(get_backbone):
    """``get_backbone()`` returns ResNet50 without its top, with outputs C3, C4, C5 of the right layers."""
    __tracebackhide__ = True  # noqa: F841
    model = call_learner("get_backbone()", get_backbone)
    expect(isinstance(model, keras.Model), BACKBONE_NOT_A_MODEL, found=describe(model))
    found_inputs = [tuple(tensor.shape) for tensor in model.inputs]
    expected_input = (None, *DEFAULT_INPUT_SHAPE)
    expect(found_inputs == [expected_input], BACKBONE_INPUT_SHAPE, expected=expected_input, found=found_inputs)
    expect(len(model.outputs) == 3, BACKBONE_OUTPUT_COUNT, found=len(model.outputs))
    _check_outputs(model)
    expect(model.count_params() == RESNET50_PARAMETERS, BACKBONE_PARAMETERS, expected=RESNET50_PARAMETERS,
           found=model.count_params())

    # Behaviour: the outputs are ResNet50's C3, C4, C5 of the images, with nothing before or after.
    batch = images(*DEFAULT_INPUT_SHAPE[:2])
    found = call_learner("Calling your backbone", model, batch, training=False)
    expected = call_learner("Reading ResNet50's layers of your backbone", _resnet_outputs, model, batch)
    for index, layer in enumerate(BACKBONE_OUTPUT_LAYERS):
        same = close(as_array(found[index], f"C{index + 3}"), expected[index], rtol=1e-3, atol=1e-4)
        expect(same, BACKBONE_VALUES, level=index + 3, layer=layer)
    passed("TEST_BACKBONE_MODEL passed: ResNet50 (no top) with outputs C3, C4, C5 from "
           + ", ".join(BACKBONE_OUTPUT_LAYERS) + ".")


# --------------------------------------------------------------------------------------------------
# Exercise 2: the Feature Pyramid Network
# --------------------------------------------------------------------------------------------------

SMALL_BACKBONE_CHANNELS = (8, 16, 32)
"""Channels of the stand-in backbone's C3, C4, C5: different counts reveal which map a layer was given."""

FPN_IMAGE_SIZE = (64, 96)
"""A non-square image for TEST_FPN: P3–P7 are 8×12, 4×6, 2×3, 1×2 and 1×1."""


@functools.lru_cache(maxsize=None)
def small_backbone():
    """A 3-convolution stand-in for ResNet50 with C3, C4, C5 at strides 8, 16, 32 (8, 16, 32 channels).

    The pyramid's wiring does not depend on the backbone, so the FPN check uses this to stay fast; its
    different channel counts also reveal which map each convolution was applied to.
    """
    inputs = keras.Input(shape=(None, None, 3))
    features, x = [], inputs
    for index, (filters, strides) in enumerate(zip(SMALL_BACKBONE_CHANNELS, (8, 2, 2))):
        x = keras.layers.Conv2D(
            filters, 3, strides=strides, padding="same", activation="relu",
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=index),
            bias_initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=10 + index),
        )(x)
        features.append(x)
    return keras.Model(inputs, features, name="small_test_backbone")


LEVEL_NAMES = tuple(f"P{level}" for level in PYRAMID_LEVELS)
RECIPES = (
    "P3 = conv_c3_3x3(conv_c3_1x1(C3) + upsample_2x(merged P4))",
    "P4 = conv_c4_3x3(conv_c4_1x1(C4) + upsample_2x(conv_c5_1x1(C5)))",
    "P5 = conv_c5_3x3(conv_c5_1x1(C5))",
    "P6 = conv_c6_3x3(C5)",
    "P7 = conv_c7_3x3(ReLU(P6))",
)
"""What each level is made of, for messages."""

LAYER_RECIPES = {
    **{name: f"{name} takes C{name[6]}" for name in LATERAL_LAYERS},
    **dict(zip(OUTPUT_LAYERS, RECIPES)),
}
"""What each FPN layer is applied to, for messages."""

FPN_MISSING_LAYER = Cause(
    "fpn.missing_layer",
    "{what} has no attribute `{name}`; keep the layers that __init__ defines, under their names.")
FPN_NOT_CONV = Cause("fpn.not_conv", "`{name}` should be a Conv2D layer, found {found}.")
FPN_LAYER_CONFIG = Cause("fpn.layer_config", "`{name}` should have {key}={expected}, found {found}.")
FPN_ADDS_UNEQUAL_SIZES = Cause(
    "fpn.adds_unequal_sizes",
    "FeaturePyramidNetwork.call adds maps of different sizes ({detail}); upsample the top-down map 2× "
    "(self.upsample_2x) before adding it to the next lateral map.")
FPN_LAYER_REUSED = Cause(
    "fpn.layer_reused",
    "`{name}` was applied to two different maps (with {first} and then {second} channels); each "
    "convolution has one input: {recipe}.")
FPN_OUTPUT_COUNT = Cause(
    "fpn.output_count", "call should return the five maps (P3, P4, P5, P6, P7), found {found}.")
FPN_LAYER_UNUSED = Cause("fpn.layer_unused", "`{name}` is never used in call; {role}")
FPN_P6_FROM_P5 = Cause(
    "fpn.p6_from_p5",
    "`conv_c6_3x3` was applied to a map with {seen} channels, a pyramid level: RetinaNet computes P6 from "
    "C5 (the backbone output), not from P5 as the original FPN does.")
FPN_P7_FROM_C5 = Cause(
    "fpn.p7_from_c5",
    "`conv_c7_3x3` was applied to a map with {seen} channels, C5's: P7 = conv_c7_3x3(ReLU(P6)) comes from "
    "P6, not from C5.")
FPN_CONCATENATED = Cause(
    "fpn.concatenated",
    "`{name}` was applied to a map with {seen} channels instead of {channels}: merge the top-down and the "
    "lateral map by adding them (+), not by concatenating them.")
FPN_WRONG_INPUT = Cause(
    "fpn.wrong_input",
    "`{name}` was applied to a map with {seen} channels, but it should be applied to {source} ({expected} "
    "channels).")
FPN_LEVELS_REVERSED = Cause(
    "fpn.levels_reversed", "call returns the levels in the wrong order; return (P3, P4, P5, P6, P7), finest first.")
FPN_LEVEL_SHAPE = Cause(
    "fpn.level_shape",
    "For a {height}×{width} image {level} should have shape {expected}, found {found}; {recipe}.")
FPN_LEVEL_DIFFERS = Cause(
    "fpn.level_differs",
    "{level} differs from the reference although the layers are yours; expected {recipe}.")

FPN_P7_WITHOUT_RELU = Cause(
    "fpn.p7_without_relu", "P7 should be conv_c7_3x3 applied to ReLU(P6); found it applied to P6 without the ReLU.")
FPN_P7_RELU_ON_OUTPUT = Cause(
    "fpn.p7_relu_on_output",
    "P7 has a ReLU on its output; the paper applies the ReLU to P6 before conv_c7_3x3 and leaves P7 linear.")
FPN_P7_RELU_AFTER_CONV = Cause(
    "fpn.p7_relu_after_conv",
    "P7 should be conv_c7_3x3(ReLU(P6)); you applied the ReLU after the convolution instead of before it.")
FPN_P6_RELU = Cause("fpn.p6_relu", "P6 should be the plain output of conv_c6_3x3(C5), without a ReLU.")
FPN_P5_NOT_SMOOTHED = Cause(
    "fpn.p5_not_smoothed", "P5 is missing its 3×3 convolution: P5 = conv_c5_3x3(conv_c5_1x1(C5)).")
FPN_P4_NOT_SMOOTHED = Cause(
    "fpn.p4_not_smoothed", "P4 is missing its 3×3 convolution: P4 = conv_c4_3x3(merged P4).")
FPN_P4_NO_TOP_DOWN = Cause(
    "fpn.p4_no_top_down",
    "P4 is missing the top-down path: add the upsampled P5 lateral map to conv_c4_1x1(C4) before the 3×3 "
    "convolution.")
FPN_TOP_DOWN_FROM_P5 = Cause(
    "fpn.top_down_from_p5",
    "merged P4 adds the upsampled P5 *output* (after conv_c5_3x3); the top-down path carries the lateral "
    "map conv_c5_1x1(C5), before its 3×3 convolution.")
FPN_BILINEAR = Cause(
    "fpn.bilinear",
    "the top-down maps are upsampled bilinearly; use self.upsample_2x, which repeats each value 2×2 "
    "(nearest neighbour, as in FPN).")
FPN_P3_NOT_SMOOTHED = Cause(
    "fpn.p3_not_smoothed", "P3 is missing its 3×3 convolution: P3 = conv_c3_3x3(merged P3).")
FPN_P3_FROM_LATERAL_P4 = Cause(
    "fpn.p3_from_lateral_p4",
    "merged P3 must add the upsampled *merged* P4 (which already carries P5), not the plain conv_c4_1x1(C4).")
FPN_P3_FROM_P4_OUTPUT = Cause(
    "fpn.p3_from_p4_output",
    "merged P3 adds the upsampled P4 *output* (after conv_c4_3x3); the top-down path carries merged P4, "
    "before its 3×3 convolution.")
FPN_P3_NO_TOP_DOWN = Cause(
    "fpn.p3_no_top_down",
    "P3 is missing the top-down path: add the upsampled merged P4 to conv_c3_1x1(C3) before the 3×3 "
    "convolution.")


def _bilinear_2x(x):
    height, width = x.shape[1:3]
    return keras.ops.image.resize(x, (2 * height, 2 * width), interpolation="bilinear")


def _fpn_variants():
    """(level index, cause, P_level with that mistake made): each is one wrong wiring of the learner's layers."""

    def wiring(fpn, c3, c4, c5):
        relu = keras.ops.relu
        lateral5, lateral4, lateral3 = fpn.conv_c5_1x1(c5), fpn.conv_c4_1x1(c4), fpn.conv_c3_1x1(c3)
        merged4 = lateral4 + fpn.upsample_2x(lateral5)
        p6 = fpn.conv_c6_3x3(c5)
        return {
            FPN_P7_WITHOUT_RELU: (4, fpn.conv_c7_3x3(p6)),
            FPN_P7_RELU_ON_OUTPUT: (4, relu(fpn.conv_c7_3x3(relu(p6)))),
            FPN_P7_RELU_AFTER_CONV: (4, relu(fpn.conv_c7_3x3(p6))),
            FPN_P6_RELU: (3, relu(p6)),
            FPN_P5_NOT_SMOOTHED: (2, lateral5),
            FPN_P4_NOT_SMOOTHED: (1, merged4),
            FPN_P4_NO_TOP_DOWN: (1, fpn.conv_c4_3x3(lateral4)),
            FPN_TOP_DOWN_FROM_P5: (1, fpn.conv_c4_3x3(lateral4 + fpn.upsample_2x(fpn.conv_c5_3x3(lateral5)))),
            FPN_BILINEAR: (1, fpn.conv_c4_3x3(lateral4 + _bilinear_2x(lateral5))),
            FPN_P3_NOT_SMOOTHED: (0, lateral3 + fpn.upsample_2x(merged4)),
            FPN_P3_FROM_LATERAL_P4: (0, fpn.conv_c3_3x3(lateral3 + fpn.upsample_2x(lateral4))),
            FPN_P3_FROM_P4_OUTPUT: (0, fpn.conv_c3_3x3(lateral3 + fpn.upsample_2x(fpn.conv_c4_3x3(merged4)))),
            FPN_P3_NO_TOP_DOWN: (0, fpn.conv_c3_3x3(lateral3)),
        }

    return wiring


def _check_fpn_layers(fpn, what):
    __tracebackhide__ = True  # noqa: F841
    reference = ReferenceFPN(backbone=small_backbone())
    missing = missing_attributes(fpn, FPN_LAYERS + ("upsample_2x",))
    if missing:
        fail(FPN_MISSING_LAYER, what=what, name=missing[0])
    for name in FPN_LAYERS:
        layer, expected = getattr(fpn, name), getattr(reference, name)
        expect(isinstance(layer, keras.layers.Conv2D), FPN_NOT_CONV, name=name, found=type(layer).__name__)
        for key in ("filters", "kernel_size", "strides", "padding"):
            found_value, expected_value = layer.get_config()[key], expected.get_config()[key]
            expect(tuple(np.atleast_1d(found_value)) == tuple(np.atleast_1d(expected_value)), FPN_LAYER_CONFIG,
                   name=name, key=key, expected=expected_value, found=found_value)


def _input_channels(layer):
    kernel = getattr(layer, "kernel", None) if getattr(layer, "built", False) else None
    return None if kernel is None else int(kernel.shape[2])


def diagnose_fpn_inputs(fpn, features):
    """Which map each convolution was applied to, read from its kernel's input channels; fails on a wrong one."""
    __tracebackhide__ = True  # noqa: F841
    channels = [int(c.shape[-1]) for c in features]
    sources = {
        "conv_c3_1x1": ("C3", channels[0]), "conv_c4_1x1": ("C4", channels[1]), "conv_c5_1x1": ("C5", channels[2]),
        "conv_c3_3x3": ("merged P3", FPN_CHANNELS), "conv_c4_3x3": ("merged P4", FPN_CHANNELS),
        "conv_c5_3x3": ("conv_c5_1x1(C5)", FPN_CHANNELS), "conv_c6_3x3": ("C5", channels[2]),
        "conv_c7_3x3": ("ReLU(P6)", FPN_CHANNELS),
    }
    for name in FPN_LAYERS:
        source, expected = sources[name]
        seen = _input_channels(getattr(fpn, name))
        if seen is None:
            role = (f"it should be applied to {source}." if name in LATERAL_LAYERS else
                    "every pyramid level goes through its own 3×3 convolution.")
            fail(FPN_LAYER_UNUSED, name=name, role=role)
        if seen == expected:
            continue
        if name == "conv_c6_3x3" and seen == FPN_CHANNELS:
            fail(FPN_P6_FROM_P5, seen=seen)
        if name == "conv_c7_3x3" and seen == channels[2]:
            fail(FPN_P7_FROM_C5, seen=seen)
        if expected == FPN_CHANNELS and seen > FPN_CHANNELS:
            fail(FPN_CONCATENATED, name=name, seen=seen)
        fail(FPN_WRONG_INPUT, name=name, seen=seen, source=source, expected=expected)


def _call_fpn(fpn, batch):
    """The learner's ``fpn(batch)``; a crash becomes a message naming the layer or the sum that failed."""
    __tracebackhide__ = True  # noqa: F841
    build_eagerly(fpn, batch.shape)
    try:
        return fpn(batch)
    except NotImplementedError:
        raise AssertionError("FeaturePyramidNetwork.call raised NotImplementedError: replace the "
                             "`raise NotImplementedError()` line with your code.") from None
    except Exception as error:
        text = str(error)
        sizes = re.search(r"Incompatible shapes: (\[[^\]]*\] vs\. \[[^\]]*\])", text)
        if sizes:
            fail(FPN_ADDS_UNEQUAL_SIZES, detail=sizes.group(1))
        reused = re.search(r"layer '([^']+)' is incompatible.*?value (\d+).*?shape \(([^)]*)\)", text, re.S)
        if reused:
            names = {getattr(fpn, name).name: name for name in FPN_LAYERS}
            if reused.group(1) in names:
                name = names[reused.group(1)]
                fail(FPN_LAYER_REUSED, name=name, first=reused.group(2),
                     second=reused.group(3).split(",")[-1].strip(), recipe=LAYER_RECIPES[name])
        raise AssertionError(f"FeaturePyramidNetwork.call raised {type(error).__name__}: {first_line(error)}") from None


@check
def TEST_FPN(FeaturePyramidNetwork):
    """The FPN's ``call`` wires C3–C5 into P3–P7 as in the paper (checked on a small stand-in backbone)."""
    __tracebackhide__ = True  # noqa: F841
    backbone = small_backbone()
    fpn = call_learner("FeaturePyramidNetwork(backbone=...)", FeaturePyramidNetwork, backbone=backbone)
    _check_fpn_layers(fpn, "Your FeaturePyramidNetwork")
    height, width = FPN_IMAGE_SIZE
    batch = images(height, width, seed=1)
    outputs = _call_fpn(fpn, batch)
    expect(isinstance(outputs, (tuple, list)) and len(outputs) == len(LEVEL_NAMES), FPN_OUTPUT_COUNT,
           found=describe(outputs) + (f" with {len(outputs)} items" if isinstance(outputs, (tuple, list)) else ""))
    found = [as_array(p, f"{LEVEL_NAMES[i]} (output {i + 1} of call)") for i, p in enumerate(outputs)]
    features = backbone(batch)
    diagnose_fpn_inputs(fpn, features)
    expected = [np.asarray(p) for p in pyramid_from_features(fpn, *features)]
    shapes = [e.shape for e in expected]
    if [f.shape for f in found] == shapes[::-1]:
        fail(FPN_LEVELS_REVERSED)
    for index, (level, wanted) in enumerate(zip(found, expected)):
        expect(level.shape == wanted.shape, FPN_LEVEL_SHAPE, height=height, width=width, level=LEVEL_NAMES[index],
               expected=wanted.shape, found=level.shape, recipe=RECIPES[index])
    if all(close(f, e) for f, e in zip(found, expected)):
        passed("TEST_FPN passed: P3–P7 have the right shapes and match the reference wiring with your layers.")
        return
    for cause, (index, alternative) in _fpn_variants()(fpn, *features).items():
        if not close(found[index], expected[index]) and close(found[index], alternative):
            fail(cause)
    index = next(i for i in range(len(LEVEL_NAMES)) if not close(found[i], expected[i]))
    fail(FPN_LEVEL_DIFFERS, level=LEVEL_NAMES[index], recipe=RECIPES[index])


# --------------------------------------------------------------------------------------------------
# Exercise 3: the subnets
# --------------------------------------------------------------------------------------------------

HEAD_TEST_CLASSES = 2
"""TEST_HEAD_MODEL builds a classification subnet for 2 classes: A · 2 output filters."""

HEAD_NOT_A_MODEL = Cause(
    "head.not_a_model", "{what} should be a keras Sequential model, found {found}; did you `return head`?")
HEAD_INPUT = Cause(
    "head.input", "{what} should start with keras.Input(shape=[None, None, {channels}]), found input shape {found}.")
HEAD_DEPTH_WRONG = Cause(
    "head.depth",
    "{what} should have {depth} hidden 3×3 convolutions ({channels} filters, ReLU) before the output "
    "convolution, found {found}; the paper's subnets use {depth}.")
HEAD_HIDDEN_CONFIG = Cause(
    "head.hidden_config",
    "Hidden convolution {index} of {what} should be Conv2D({channels}, 3, padding='same'), found "
    "filters={filters}, kernel_size={kernel_size}, strides={strides}, padding='{padding}'.")
HEAD_OUTPUT_FILTERS = Cause(
    "head.output_filters", "The last convolution of {what} should have {expected} filters, found {found}.")
HEAD_OUTPUT_CONFIG = Cause(
    "head.output_config",
    "The last convolution of {what} should be 3×3 with stride 1 and padding='same', found "
    "kernel_size={kernel_size}, strides={strides}, padding='{padding}'.")
HEAD_KERNEL_INIT = Cause(
    "head.kernel_init",
    "Convolution {index} of {what} should start from a Gaussian with σ = {sigma} "
    "(kernel_initializer=`keras.initializers.RandomNormal(stddev={sigma})`), found weights with mean "
    "{mean:.4f} and std {std:.4f}.")
HEAD_HIDDEN_BIAS = Cause(
    "head.hidden_bias",
    "Hidden convolution {index} of {what} should start with zero biases (bias_initializer='zeros'), found "
    "values around {found:.3f}.")
HEAD_OUTPUT_BIAS = Cause(
    "head.output_bias",
    "By default the output convolution should start with zero biases (bias_initializer='zeros'), found "
    "values around {found:.3f}.")
HEAD_IGNORES_BIAS_INITIALIZER = Cause(
    "head.ignores_bias_initializer",
    "build_head(..., bias_initializer=b) should use b for the output convolution's bias: b = Constant({expected:.3f}) "
    "gave biases around {found:.3f}, so the argument is ignored (the classification subnet needs it for the "
    "prior bias).")
HEAD_BIAS_INITIALIZER_ON_HIDDEN = Cause(
    "head.bias_initializer_on_hidden",
    "bias_initializer is for the output convolution only; hidden convolution {index} got it too (the hidden "
    "convolutions keep zero biases).")
HEAD_PARAMETERS = Cause(
    "head.parameters",
    "The head should have {expected:,} parameters, found {found:,}; the subnet is only the {depth} hidden "
    "convolutions and the output convolution (with biases), nothing else.")
HEAD_NO_RELU = Cause(
    "head.no_relu",
    "The hidden convolutions of {what} have no ReLU: give each activation='relu' or put a "
    "`keras.layers.ReLU()` after it.")
HEAD_RELU_MISSING = Cause(
    "head.relu_missing",
    "Hidden convolution {index} of {what} has no ReLU after it (the others have one); give it "
    "activation='relu' or put a `keras.layers.ReLU()` after it.")
HEAD_RELU_ON_OUTPUT = Cause(
    "head.relu_on_output",
    "The last convolution of {what} should have no activation (logits and deltas can be negative; the loss "
    "applies the sigmoid), found a ReLU after it.")
HEAD_SIGMOID_ON_OUTPUT = Cause(
    "head.sigmoid_on_output",
    "The last convolution of {what} should have no activation, found a sigmoid after it: the subnet outputs "
    "logits, and the loss and the decoding apply the sigmoid.")
HEAD_BEHAVIOUR = Cause(
    "head.behaviour",
    "With identical weights your head's output differs from {depth} × (3×3 conv, {channels}, ReLU) followed "
    "by the 3×3 output convolution (largest difference {difference:.3g}); apply the layers in this order, each "
    "to the previous one's output, with nothing in between but the ReLUs.")


def conv_layers(head):
    return [layer for layer in head.layers if isinstance(layer, keras.layers.Conv2D)]


def _input_shape(model):
    try:
        return tuple(model.inputs[0].shape)
    except Exception:
        return None


def check_head_structure(head, output_filters, what):
    """The layers of a subnet: its input, four 3×3/256 hidden convolutions and a 3×3 output convolution."""
    __tracebackhide__ = True  # noqa: F841
    expect(isinstance(head, keras.Model), HEAD_NOT_A_MODEL, what=what, found=describe(head))
    expect(_input_shape(head) == (None, None, None, FPN_CHANNELS), HEAD_INPUT, what=what, found=_input_shape(head))
    convs = conv_layers(head)
    expect(len(convs) == HEAD_DEPTH + 1, HEAD_DEPTH_WRONG, what=what, found=max(len(convs) - 1, 0))
    for index, layer in enumerate(convs[:-1]):
        config = layer.get_config()
        expect(config["filters"] == FPN_CHANNELS and tuple(config["kernel_size"]) == (3, 3)
               and tuple(config["strides"]) == (1, 1) and config["padding"] == "same", HEAD_HIDDEN_CONFIG,
               index=index + 1, what=what, filters=config["filters"], kernel_size=config["kernel_size"],
               strides=config["strides"], padding=config["padding"])
    config = convs[-1].get_config()
    expect(config["filters"] == output_filters, HEAD_OUTPUT_FILTERS, what=what, expected=output_filters,
           found=config["filters"])
    expect(tuple(config["kernel_size"]) == (3, 3) and tuple(config["strides"]) == (1, 1)
           and config["padding"] == "same", HEAD_OUTPUT_CONFIG, what=what, kernel_size=config["kernel_size"],
           strides=config["strides"], padding=config["padding"])


def _check_head_initialisation(head, what):
    __tracebackhide__ = True  # noqa: F841
    convs = conv_layers(head)
    for index, layer in enumerate(convs):
        kernel = np.asarray(layer.kernel)
        mean, std = float(kernel.mean()), float(kernel.std())
        expect(abs(std - KERNEL_STDDEV) < 0.15 * KERNEL_STDDEV and abs(mean) < 0.2 * KERNEL_STDDEV, HEAD_KERNEL_INIT,
               index=index + 1, what=what, mean=mean, std=std)
    for index, layer in enumerate(convs[:-1]):
        bias = _bias(layer)
        expect(np.allclose(bias, 0.0), HEAD_HIDDEN_BIAS, index=index + 1, what=what, found=float(bias.mean()))


def _bias(layer):
    return np.asarray(layer.bias) if layer.use_bias else np.zeros(layer.filters)


@functools.lru_cache(maxsize=None)
def _reference_head(output_filters):
    return reference_head(output_filters)


def _spread_weights(head, seed=7):
    """He-scaled kernels and small random biases for every convolution, so that each layer's effect shows."""
    rng = random_generator(seed)
    weights = []
    for layer in conv_layers(head):
        kernel_shape = tuple(layer.kernel.shape)
        fan_in = int(np.prod(kernel_shape[:3]))
        weights.append(rng.normal(0.0, np.sqrt(2.0 / fan_in), kernel_shape).astype(np.float32))
        weights.append(rng.normal(0.0, 0.1, kernel_shape[-1:]).astype(np.float32))
    return weights


def _head_forward(weights, features, relu_after, output_activation=None):
    """The subnet computed from its conv weights: ReLU after the hidden convs flagged in ``relu_after``."""
    x = keras.ops.convert_to_tensor(features)
    for index in range(0, len(weights), 2):
        x = keras.ops.conv(x, weights[index], padding="same") + weights[index + 1]
        hidden = index // 2 < len(relu_after)
        if hidden and relu_after[index // 2]:
            x = keras.ops.relu(x)
    return np.asarray(output_activation(x) if output_activation else x)


def _head_variants():
    """The subnet with one mistake made, as (cause, details, forward(weights, features))."""
    all_relu = (True,) * HEAD_DEPTH
    rows = [(HEAD_NO_RELU, {}, lambda w, f: _head_forward(w, f, (False,) * HEAD_DEPTH))]
    for index in range(HEAD_DEPTH):
        mask = tuple(i != index for i in range(HEAD_DEPTH))
        rows.append((HEAD_RELU_MISSING, {"index": index + 1}, lambda w, f, m=mask: _head_forward(w, f, m)))
    rows.append((HEAD_RELU_ON_OUTPUT, {}, lambda w, f: _head_forward(w, f, all_relu, keras.ops.relu)))
    rows.append((HEAD_SIGMOID_ON_OUTPUT, {}, lambda w, f: _head_forward(w, f, all_relu, keras.ops.sigmoid)))
    return rows


def _check_head_behaviour(head, output_filters, what):
    """With the same spread-out weights, the learner's subnet and the reference compute the same map."""
    __tracebackhide__ = True  # noqa: F841
    reference = _reference_head(output_filters)
    weights = _spread_weights(reference)
    reference.set_weights(weights)
    for layer, kernel, bias in zip(conv_layers(head), weights[::2], weights[1::2]):
        layer.kernel.assign(kernel)
        if layer.use_bias:
            layer.bias.assign(bias)
    features = random_generator(2).normal(size=(2, 6, 5, FPN_CHANNELS)).astype(np.float32)
    found = as_array(call_learner(f"Calling {what}", head, features), f"The output of {what}")
    expected = np.asarray(reference(features))
    if close(found, expected):
        return
    for cause, details, forward in _head_variants():
        if close(found, forward(weights, features)):
            fail(cause, what=what, **details)
    difference = float(np.max(np.abs(found - expected))) if found.shape == expected.shape else float("inf")
    fail(HEAD_BEHAVIOUR, difference=difference)


@check
def TEST_HEAD_MODEL(build_head):
    """``build_head(output_filters)``: layers, initialisation, the bias argument and what it computes."""
    __tracebackhide__ = True  # noqa: F841
    output_filters = ANCHORS_PER_LOCATION * HEAD_TEST_CLASSES
    what = f"build_head({output_filters})"
    head = call_learner(what, build_head, output_filters)
    check_head_structure(head, output_filters, what)
    _check_head_initialisation(head, what)
    output_bias = _bias(conv_layers(head)[-1])
    expect(np.allclose(output_bias, 0.0), HEAD_OUTPUT_BIAS, found=float(output_bias.mean()))
    reference = _reference_head(output_filters)
    expect(head.count_params() == reference.count_params(), HEAD_PARAMETERS, expected=reference.count_params(),
           found=head.count_params())

    prior = prior_bias()
    biased_what = f"build_head({output_filters}, bias_initializer=...)"
    biased = call_learner(biased_what, build_head, output_filters,
                          bias_initializer=keras.initializers.Constant(prior))
    check_head_structure(biased, output_filters, biased_what)
    convs = conv_layers(biased)
    found_bias = _bias(convs[-1])
    expect(np.allclose(found_bias, prior, atol=1e-4), HEAD_IGNORES_BIAS_INITIALIZER, expected=prior,
           found=float(found_bias.mean()))
    for index, layer in enumerate(convs[:-1]):
        expect(np.allclose(_bias(layer), 0.0), HEAD_BIAS_INITIALIZER_ON_HIDDEN, index=index + 1)

    _check_head_behaviour(head, output_filters, what)
    passed(f"TEST_HEAD_MODEL passed: {HEAD_DEPTH} × (3×3 conv, {FPN_CHANNELS}, ReLU) + 3×3 conv, "
           f"σ = {KERNEL_STDDEV:g} init, {head.count_params():,} parameters for {output_filters} outputs.")


# --------------------------------------------------------------------------------------------------
# Exercise 4: the whole model
# --------------------------------------------------------------------------------------------------

DEFAULT_MODEL_IMAGE = (64, 64)
"""Image size for a backbone that accepts any size (ResNet50 in the notebook is fixed at 128×128)."""

MODEL_NOT_A_MODEL = Cause(
    "model.not_a_model", "{check} expects a RetinaNet instance (a keras.Model), found {found}.")
MODEL_MISSING_ATTRIBUTE = Cause(
    "model.missing_attribute", "Your RetinaNet has no attribute `{name}`; set self.{name} in __init__.")
MODEL_NUM_CLASSES = Cause(
    "model.num_classes", "model.num_classes should be the number of classes (an int ≥ 1), found {found}.")
MODEL_FPN_TYPE = Cause(
    "model.fpn_type",
    "model.fpn should be your FeaturePyramidNetwork (with its backbone and conv_* layers), found {found}.")
MODEL_HEADS_SWAPPED = Cause(
    "model.heads_swapped",
    "cls_head and box_head are swapped: cls_head needs {anchors} · num_classes = {cls_filters} filters, "
    "box_head {anchors} · 4 = {box_filters}.")
PRIOR_HINT = ("in __init__ write `prior_bias = -np.log((1 - {pi}) / {pi})` and `self.cls_head = build_head({anchors} * "
              "num_classes, bias_initializer=keras.initializers.Constant(prior_bias))`.")
"""The prior-bias hint, as code that runs in the notebook's RetinaNet.__init__ (where prior_bias is a float)."""

MODEL_PRIOR_MISSING = Cause(
    "model.prior_missing",
    "The classification head's last bias should start at the prior b = −log((1 − π)/π) = {prior} for π = {pi}, "
    "found zeros (missing prior bias); " + PRIOR_HINT)
MODEL_PRIOR_SIGN = Cause(
    "model.prior_sign",
    "The classification head's last bias is {found:.3f}, the prior bias with its sign flipped (every anchor "
    "would start at probability 1 − π); b = −log((1 − π)/π) = {prior}: " + PRIOR_HINT)
MODEL_PRIOR_LOG_PI = Cause(
    "model.prior_log_pi",
    "The classification head's last bias is {found:.3f} = log(π); the prior bias is b = −log((1 − π)/π) = "
    "{prior}, so that sigmoid(b) = π: " + PRIOR_HINT)
MODEL_PRIOR_IS_PI = Cause(
    "model.prior_is_pi",
    "The classification head's last bias is π = {pi} itself; the bias is the logit of π, b = −log((1 − π)/π) "
    "= {prior}: " + PRIOR_HINT)
MODEL_PRIOR_WRONG = Cause(
    "model.prior_wrong",
    "The classification head's last bias should start at the prior b = −log((1 − π)/π) = {prior} for "
    "π = {pi}, found values around {found:.3f}; " + PRIOR_HINT)
MODEL_BOX_BIAS = Cause(
    "model.box_bias",
    "The box head's last bias should start at zero, found values around {found:.3f}: only the "
    "classification head gets the prior bias.")
MODEL_RESHAPE_CRASH = Cause(
    "model.reshape_crash",
    "Calling the model failed in a reshape ({detail}): reshape the box outputs to (batch_size, -1, 4) and the "
    "class outputs to (batch_size, -1, self.num_classes).")
MODEL_CONCAT_CRASH = Cause(
    "model.concat_crash",
    "Calling the model failed in a concatenation ({detail}): the box and class outputs must each be "
    "(batch_size, anchors, ·) — reshape box outputs to (batch_size, -1, 4) and class outputs to "
    "(batch_size, -1, self.num_classes), concatenate the levels on axis 1 and the two parts on axis -1.")
MODEL_BATCH_HARD_CODED = Cause(
    "model.batch_hard_coded",
    "For a batch of {batch} images the output should have shape {expected}, found {found}: the batch size is "
    "hard-coded to 1; reshape with `batch_size = tf.shape(image)[0]`.")
MODEL_BATCH_DROPPED = Cause(
    "model.batch_dropped",
    "For a batch of {batch} images the output should have shape {expected}, found {found}, without a batch "
    "axis; reshape to (batch_size, -1, 4) and (batch_size, -1, self.num_classes).")
MODEL_OUTPUT_SHAPE = Cause(
    "model.output_shape",
    "For {batch} images of {height}×{width} the output should have shape {expected} (anchors × [4 box deltas + "
    "{num_classes} class logits]), found {found}; reshape box outputs to (batch_size, -1, 4) and class outputs "
    "to (batch_size, -1, num_classes), concatenate the levels on axis 1 and the two parts on axis -1.")
MODEL_FPN_WIRING = Cause(
    "model.fpn_wiring", "Your model's FPN is wired differently from the paper: {detail} Run TEST_FPN.")
MODEL_HEADS_BUILT_IN_CALL = Cause(
    "model.heads_built_in_call",
    "Your model's output changes from one call to the next on the same images: call creates new subnets; "
    "create cls_head and box_head once in __init__ and apply those two to every level.")
MODEL_UNSHARED_HEADS = Cause(
    "model.unshared_heads",
    "Your model has {extra:,} parameters besides fpn, cls_head and box_head: the two subnets are shared by "
    "all levels (Sec. 4), so apply self.cls_head and self.box_head to every level instead of separate heads.")
MODEL_FPN_DIFFERS = Cause(
    "model.fpn_differs",
    "Your model's FPN produces different P3–P7 than the reference wiring; run TEST_FPN on your "
    "FeaturePyramidNetwork first.")
MODEL_CLASSES_FIRST = Cause(
    "model.classes_first",
    "The output has the class logits first; the order is [box deltas, class logits]: "
    "`tf.concat([box_outputs, cls_outputs], axis=-1)`.")
MODEL_LEVELS_REVERSED = Cause(
    "model.levels_reversed",
    "The levels are concatenated in reverse order (P7 first); concatenate P3, P4, …, P7, the order in which "
    "the anchors are generated.")
MODEL_SIGMOID = Cause(
    "model.sigmoid",
    "The class outputs went through a sigmoid; the model returns logits (the loss and the decoding apply the "
    "sigmoid), so leave cls_head's output as it is.")
MODEL_BOXES_DIFFER = Cause(
    "model.boxes_differ",
    "With identical weights the box deltas (columns 0–3) differ from box_head applied to P3, …, P7, each "
    "reshaped to (batch_size, -1, 4) and concatenated on axis 1 (largest difference {difference:.3g}).")
MODEL_CLASSES_DIFFER = Cause(
    "model.classes_differ",
    "With identical weights the class logits (columns 4 on) differ from cls_head applied to P3, …, P7, each "
    "reshaped to (batch_size, -1, num_classes) and concatenated on axis 1 (largest difference {difference:.3g}).")

MODEL_FIXED_CLASSES = Cause(
    "model.fixed_classes",
    "Your model works for num_classes={num_classes}, but {build} {outcome}; some number in __init__ or call "
    "stays at {num_classes}: use num_classes (self.num_classes) for the class head's filters and the reshape.")

MODEL_VARIANTS = (
    Variant(MODEL_CLASSES_FIRST,
            lambda pyramid, box, cls, k: _classes_first(outputs_from_pyramid(pyramid, box, cls, k))),
    Variant(MODEL_LEVELS_REVERSED, lambda pyramid, box, cls, k: outputs_from_pyramid(pyramid[::-1], box, cls, k)),
    Variant(MODEL_SIGMOID,
            lambda pyramid, box, cls, k: outputs_from_pyramid(pyramid, box, lambda x: keras.ops.sigmoid(cls(x)), k)),
)


def _classes_first(outputs):
    return keras.ops.concatenate([outputs[..., 4:], outputs[..., :4]], axis=-1)


def _check_model_parts(model, check_name):
    __tracebackhide__ = True  # noqa: F841
    expect(isinstance(model, keras.Model), MODEL_NOT_A_MODEL, check=check_name, found=describe(model))
    missing = missing_attributes(model, ("num_classes", "fpn", "cls_head", "box_head"))
    if missing:
        fail(MODEL_MISSING_ATTRIBUTE, name=missing[0])
    num_classes = model.num_classes
    expect(isinstance(num_classes, (int, np.integer)) and not isinstance(num_classes, bool) and num_classes >= 1,
           MODEL_NUM_CLASSES, found=repr(num_classes))
    fpn = model.fpn
    expect(not missing_attributes(fpn, ("backbone",) + FPN_LAYERS), MODEL_FPN_TYPE, found=describe(fpn))
    cls_filters, box_filters = ANCHORS_PER_LOCATION * num_classes, ANCHORS_PER_LOCATION * 4
    cls_convs, box_convs = conv_layers(model.cls_head), conv_layers(model.box_head)
    if cls_convs and box_convs and num_classes != 4 and \
            (cls_convs[-1].filters, box_convs[-1].filters) == (box_filters, cls_filters):
        fail(MODEL_HEADS_SWAPPED, cls_filters=cls_filters)
    check_head_structure(model.cls_head, cls_filters, f"model.cls_head ({ANCHORS_PER_LOCATION} anchors × num_classes)")
    check_head_structure(model.box_head, box_filters, f"model.box_head ({ANCHORS_PER_LOCATION} anchors × 4 deltas)")


def _check_prior_bias(model):
    __tracebackhide__ = True  # noqa: F841
    prior = prior_bias()
    found = _bias(conv_layers(model.cls_head)[-1])
    if np.allclose(found, prior, atol=1e-3):
        box_bias = _bias(conv_layers(model.box_head)[-1])
        expect(np.allclose(box_bias, 0.0), MODEL_BOX_BIAS, found=float(box_bias.mean()))
        return
    mean = float(found.mean())
    for value, cause in ((0.0, MODEL_PRIOR_MISSING), (-prior, MODEL_PRIOR_SIGN),
                         (np.log(PRIOR_PROBABILITY), MODEL_PRIOR_LOG_PI), (PRIOR_PROBABILITY, MODEL_PRIOR_IS_PI)):
        if np.allclose(found, value, atol=1e-3):
            fail(cause, found=mean)
    fail(MODEL_PRIOR_WRONG, found=mean)


def _call_model(model, batch):
    __tracebackhide__ = True  # noqa: F841
    if isinstance(model.fpn, keras.layers.Layer):
        build_eagerly(model.fpn, batch.shape)
    try:
        return model(batch, training=False)
    except NotImplementedError:
        raise AssertionError("Calling the model raised NotImplementedError: complete RetinaNet.call.") from None
    except Exception as error:
        text = first_line(error, 160)
        if "reshape" in str(error).lower():
            fail(MODEL_RESHAPE_CRASH, detail=text)
        if "concat" in str(error).lower():
            fail(MODEL_CONCAT_CRASH, detail=text)
        raise AssertionError(f"Calling the model raised {type(error).__name__}: {text}") from None


def _model_image_size(backbone):
    shape = tuple(getattr(backbone, "input_shape", None) or ())
    if len(shape) == 4 and shape[1] and shape[2]:
        return shape[1], shape[2]
    return DEFAULT_MODEL_IMAGE


def _check_output_shape(found, expected_shape, batch_size, height, width, num_classes):
    __tracebackhide__ = True  # noqa: F841
    if found.shape == expected_shape:
        return
    details = dict(batch=batch_size, expected=expected_shape, found=found.shape)
    rows, columns = expected_shape[1:]
    if found.shape == (1, batch_size * rows, columns):
        fail(MODEL_BATCH_HARD_CODED, **details)
    if found.shape == (batch_size * rows, columns):
        fail(MODEL_BATCH_DROPPED, **details)
    fail(MODEL_OUTPUT_SHAPE, height=height, width=width, num_classes=num_classes, **details)


def _diagnose_model_output(model, batch, found, expected, pyramid):
    """Why the learner's output differs from the reference wiring of the learner's own layers."""
    __tracebackhide__ = True  # noqa: F841
    again = as_array(_call_model(model, batch), "The model's output")
    if not np.allclose(found, again, rtol=1e-6, atol=1e-7):
        fail(MODEL_HEADS_BUILT_IN_CALL)
    parts = model.fpn.count_params() + model.cls_head.count_params() + model.box_head.count_params()
    expect(model.count_params() == parts, MODEL_UNSHARED_HEADS, extra=model.count_params() - parts)
    own = model.fpn(batch, training=False)
    expect(all(close(a, b) for a, b in zip(own, pyramid)), MODEL_FPN_DIFFERS)
    diagnose(found, MODEL_VARIANTS, close, pyramid, model.box_head, model.cls_head, model.num_classes)
    if not close(found[..., :4], expected[..., :4]):
        fail(MODEL_BOXES_DIFFER, difference=float(np.max(np.abs(found[..., :4] - expected[..., :4]))))
    fail(MODEL_CLASSES_DIFFER, difference=float(np.max(np.abs(found[..., 4:] - expected[..., 4:]))))


def _check_other_class_count(model):
    """The learner's class built for another number of classes: nothing may stay fixed at the first count."""
    __tracebackhide__ = True  # noqa: F841
    num_classes = int(model.num_classes)
    other_classes = num_classes + 2
    build = f"{type_name(model)}(num_classes={other_classes}, backbone=...)"
    other = call_learner(build, type_of(model), num_classes=other_classes, backbone=small_backbone())
    batch = images(*DEFAULT_MODEL_IMAGE)
    expected = (len(batch), sum(anchors_per_level(*DEFAULT_MODEL_IMAGE)), 4 + other_classes)
    try:
        build_eagerly(other.fpn, batch.shape)
        shape = tuple(other(batch, training=False).shape)
    except Exception as error:
        fail(MODEL_FIXED_CLASSES, num_classes=num_classes, build=build,
             outcome=f"raises {type(error).__name__} when called")
    expect(shape == expected, MODEL_FIXED_CLASSES, num_classes=num_classes, build=build,
           outcome=f"outputs shape {shape} instead of {expected}")


def _check_retinanet(model, check_name):
    __tracebackhide__ = True  # noqa: F841
    _check_model_parts(model, check_name)
    _check_prior_bias(model)
    num_classes = int(model.num_classes)
    backbone = model.fpn.backbone
    height, width = _model_image_size(backbone)
    batch = images(height, width, seed=3)
    found = as_array(_call_model(model, batch), "The model's output")
    num_anchors = sum(anchors_per_level(height, width))
    _check_output_shape(found, (len(batch), num_anchors, 4 + num_classes), len(batch), height, width, num_classes)

    features = backbone(batch, training=False)
    try:
        diagnose_fpn_inputs(model.fpn, features)
    except AssertionError as wrong:
        fail(MODEL_FPN_WIRING, detail=str(wrong))
    pyramid = pyramid_from_features(model.fpn, *features)
    expected = np.asarray(outputs_from_pyramid(pyramid, model.box_head, model.cls_head, num_classes))
    if not close(found, expected):
        _diagnose_model_output(model, batch, found, expected, pyramid)
    _check_other_class_count(model)
    passed(f"{check_name} passed: RetinaNet with {num_classes} classes outputs (batch, {num_anchors}, "
           f"{4 + num_classes}) for {height}×{width} images and matches the reference wiring of your layers.")


@check
def TEST_RETINANET(model):
    """The whole RetinaNet: attributes, subnets, prior bias and the output of ``call``."""
    __tracebackhide__ = True  # noqa: F841
    _check_retinanet(model, "TEST_RETINANET")


@check
def TEST_RESNET(model):
    """The name the course's design card gives :func:`TEST_RETINANET`; the same check."""
    __tracebackhide__ = True  # noqa: F841
    _check_retinanet(model, "TEST_RESNET")
