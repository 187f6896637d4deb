"""Stage 1, exercise 2, the Feature Pyramid Network: ``FeaturePyramidNetwork.call`` (TEST_FPN).

Lin et al., Sec. 4: the FPN turns C3–C5 into P3–P7 (P6 from C5, P7 from ReLU(P6)) ("Feature Pyramid Network
Backbone"). Wiring is compared through the reference's pure function
:func:`retinanet.fpn.pyramid_from_features` applied to the learner's own layers, so that a difference is a
difference of wiring, never of weights; the check runs on the harness's small stand-in backbone.
:func:`diagnose_fpn_inputs` also serves the whole model's check (:mod:`course_checks.model`).
"""

import re

import numpy as np

from retinanet._tf import keras
from retinanet.fpn import (FPN_CHANNELS, FPN_LAYERS, LATERAL_LAYERS, OUTPUT_LAYERS, PYRAMID_LEVELS,
                           FeaturePyramidNetwork as ReferenceFPN, pyramid_from_features)

from course_checks.harness import (Cause, as_array, call_learner, check, close, describe, expect, fail, first_line,
                                   images, passed, small_backbone)
from course_checks.remote import build_eagerly, missing_attributes


FPN_IMAGE_SIZE = (64, 96)
"""A non-square image for TEST_FPN: P3–P7 are 8×12, 4×6, 2×3, 1×2 and 1×1."""

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

FPN_TRAINING_MODE = Cause(
    "fpn.training_mode",
    "Called for inference ({call}), your FeaturePyramidNetwork's output for an image changes with the other "
    "images of the batch: the backbone runs in training mode (BatchNormalization uses the batch's statistics "
    "and updates its moving averages). Give call the default training=False and pass the flag along, "
    "`self.backbone(images, training=training)`, never training=True.")
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
    """(cause, (level index, P_level with that mistake made)): each is one wrong wiring of the learner's layers;
    bilinear upsampling is tried on P4 (both top-down steps or the first), then on P3 alone."""

    def wiring(fpn, c3, c4, c5):
        relu = keras.ops.relu
        lateral5, lateral4, lateral3 = fpn.conv_c5_1x1(c5), fpn.conv_c4_1x1(c4), fpn.conv_c3_1x1(c3)
        merged4 = lateral4 + fpn.upsample_2x(lateral5)
        p6 = fpn.conv_c6_3x3(c5)
        return [
            (FPN_P7_WITHOUT_RELU, (4, fpn.conv_c7_3x3(p6))),
            (FPN_P7_RELU_ON_OUTPUT, (4, relu(fpn.conv_c7_3x3(relu(p6))))),
            (FPN_P7_RELU_AFTER_CONV, (4, relu(fpn.conv_c7_3x3(p6)))),
            (FPN_P6_RELU, (3, relu(p6))),
            (FPN_P5_NOT_SMOOTHED, (2, lateral5)),
            (FPN_P4_NOT_SMOOTHED, (1, merged4)),
            (FPN_P4_NO_TOP_DOWN, (1, fpn.conv_c4_3x3(lateral4))),
            (FPN_TOP_DOWN_FROM_P5, (1, fpn.conv_c4_3x3(lateral4 + fpn.upsample_2x(fpn.conv_c5_3x3(lateral5))))),
            (FPN_BILINEAR, (1, fpn.conv_c4_3x3(lateral4 + _bilinear_2x(lateral5)))),
            (FPN_P3_NOT_SMOOTHED, (0, lateral3 + fpn.upsample_2x(merged4))),
            (FPN_P3_FROM_LATERAL_P4, (0, fpn.conv_c3_3x3(lateral3 + fpn.upsample_2x(lateral4)))),
            (FPN_P3_FROM_P4_OUTPUT, (0, fpn.conv_c3_3x3(lateral3 + fpn.upsample_2x(fpn.conv_c4_3x3(merged4))))),
            (FPN_P3_NO_TOP_DOWN, (0, fpn.conv_c3_3x3(lateral3))),
            (FPN_BILINEAR, (0, fpn.conv_c3_3x3(lateral3 + _bilinear_2x(merged4)))),
            (FPN_BILINEAR, (0, fpn.conv_c3_3x3(lateral3 + _bilinear_2x(lateral4 + _bilinear_2x(lateral5))))),
        ]

    return wiring


def _check_fpn_layers(fpn, what):
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


def _levels(outputs, what):
    if not (isinstance(outputs, (tuple, list)) and len(outputs) == len(LEVEL_NAMES)):
        return None
    return [as_array(level, f"{name} ({what})") for name, level in zip(LEVEL_NAMES, outputs)]


def _same_levels(found, expected):
    return found is not None and all(close(f, e) for f, e in zip(found, expected))


def _diagnose_training_mode(fpn, batch, found):
    """Whether the learner's FPN, called for inference, runs in training mode: the output changes with the
    training=False flag, or an image's output changes when it comes alone (the batch's statistics). Only the
    learner's own calls are made: the check never runs the backbone in training mode itself."""
    alone = _levels(_call_fpn(fpn, batch[:1]), "for one image")
    if not _same_levels(alone, [level[:1] for level in found]):
        fail(FPN_TRAINING_MODE, call="without a training argument")
    inference = _levels(_call_fpn(fpn, batch, training=False), "with training=False")
    if not _same_levels(inference, found):
        fail(FPN_TRAINING_MODE, call="without a training argument")
    alone = _levels(_call_fpn(fpn, batch[:1], training=False), "for one image")
    if not _same_levels(alone, [level[:1] for level in inference]):
        fail(FPN_TRAINING_MODE, call="with training=False")


def _call_fpn(fpn, batch, **training):
    """The learner's ``fpn(batch)``; a crash becomes a message naming the layer or the sum that failed."""
    build_eagerly(fpn, batch.shape)
    try:
        return fpn(batch, **training)
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
    _diagnose_training_mode(fpn, batch, found)
    for cause, (index, alternative) in _fpn_variants()(fpn, *features):
        if not close(found[index], expected[index]) and close(found[index], alternative):
            fail(cause)
    index = next(i for i in range(len(LEVEL_NAMES)) if not close(found[i], expected[i]))
    fail(FPN_LEVEL_DIFFERS, level=LEVEL_NAMES[index], recipe=RECIPES[index])
