"""Stage 1, exercise 4, the whole model: ``RetinaNet`` (TEST_RETINANET, and TEST_RESNET, the design card's name).

Lin et al., Sec. 4: the two subnets are applied to every level P3–P7, whose outputs are concatenated, box
deltas first, then class logits; the classification subnet starts from the prior bias (Sec. 4.1). The output
is compared through the reference's pure function :func:`retinanet.model.outputs_from_pyramid` applied to the
learner's own FPN and subnets, so that a difference is a difference of wiring, never of weights. The FPN's
and the subnets' own checks are reused from :mod:`course_checks.fpn` and :mod:`course_checks.heads`.
"""

import numpy as np

from retinanet._tf import keras
from retinanet.anchors import ANCHORS_PER_LOCATION, anchors_per_level
from retinanet.fpn import FPN_LAYERS, pyramid_from_features
from retinanet.heads import PRIOR_PROBABILITY, prior_bias
from retinanet.model import outputs_from_pyramid

from course_checks.fpn import diagnose_fpn_inputs
from course_checks.harness import (Cause, Variant, as_array, call_learner, check, close, describe, diagnose, expect,
                                   fail, first_line, images, passed, small_backbone)
from course_checks.heads import bias_of, check_head_structure, conv_layers
from course_checks.remote import build_eagerly, missing_attributes, type_name, type_of


DEFAULT_MODEL_IMAGE = (64, 64)
"""Image size for a backbone that accepts any size (ResNet50 in the notebook is fixed at 128×128)."""

OTHER_CLASSES_IMAGE = (32, 64)
"""Images for the learner's class built for another number of classes, on the small stand-in backbone: only
the output's shape is read, and the smallest images that give every level (P7 1×1) keep the first call of a
new model cheap (building it is most of TEST_RETINANET's time after the model's own call)."""

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

MODEL_TRAINING_MODE = Cause(
    "model.training_mode",
    "Called for inference ({call}), your model's output for an image changes with the other images of the "
    "batch: it runs in training mode (BatchNormalization uses the batch's statistics and updates its moving "
    "averages on every call). Give call the default training=False and pass the flag along, "
    "`self.fpn(image, training=training)`, never training=True.")
MODEL_CLASSES_FROM_BOX_HEAD = Cause(
    "model.classes_from_box_head",
    "Your model's class logits come from box_head: with num_classes=4 they equal the box deltas; apply "
    "self.cls_head to each level for the class outputs and self.box_head for the box deltas.")
MODEL_FIXED_CLASSES = Cause(
    "model.fixed_classes",
    "Your model works for num_classes={num_classes}, but {build} {outcome}; some number in __init__ or call "
    "stays at {num_classes}: use num_classes (self.num_classes) for the class head's filters and the reshape.")

MODEL_VARIANTS = (
    Variant(MODEL_CLASSES_FIRST,
            lambda pyramid, box, cls, k: _classes_first(outputs_from_pyramid(pyramid, box, cls, k))),
    Variant(MODEL_LEVELS_REVERSED, lambda pyramid, box, cls, k: outputs_from_pyramid(pyramid[::-1], box, cls, k)),
    Variant(MODEL_CLASSES_FROM_BOX_HEAD, lambda *arguments: _classes_from_box_head(*arguments)),
    Variant(MODEL_SIGMOID,
            lambda pyramid, box, cls, k: outputs_from_pyramid(pyramid, box, lambda x: keras.ops.sigmoid(cls(x)), k)),
)


def _classes_from_box_head(pyramid, box, cls, num_classes):
    """The class columns computed by box_head: only shaped like the model's output when K = 4."""
    return outputs_from_pyramid(pyramid, box, box, num_classes) if num_classes == 4 else None


def _classes_first(outputs):
    return keras.ops.concatenate([outputs[..., 4:], outputs[..., :4]], axis=-1)


def _check_model_parts(model, check_name):
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
    prior = prior_bias()
    found = bias_of(conv_layers(model.cls_head)[-1])
    if np.allclose(found, prior, atol=1e-3):
        box_bias = bias_of(conv_layers(model.box_head)[-1])
        expect(np.allclose(box_bias, 0.0), MODEL_BOX_BIAS, found=float(box_bias.mean()))
        return
    mean = float(found.mean())
    for value, cause in ((0.0, MODEL_PRIOR_MISSING), (-prior, MODEL_PRIOR_SIGN),
                         (np.log(PRIOR_PROBABILITY), MODEL_PRIOR_LOG_PI), (PRIOR_PROBABILITY, MODEL_PRIOR_IS_PI)):
        if np.allclose(found, value, atol=1e-3):
            fail(cause, found=mean)
    fail(MODEL_PRIOR_WRONG, found=mean)


def _call_model(model, batch, default=False):
    """The learner's ``model(batch, training=False)``; with ``default``, ``model(batch)`` (no training argument)."""
    if isinstance(model.fpn, keras.layers.Layer):
        build_eagerly(model.fpn, batch.shape)
    try:
        return model(batch) if default else model(batch, training=False)
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
    if found.shape == expected_shape:
        return
    details = dict(batch=batch_size, expected=expected_shape, found=found.shape)
    rows, columns = expected_shape[1:]
    if found.shape == (1, batch_size * rows, columns):
        fail(MODEL_BATCH_HARD_CODED, **details)
    if found.shape == (batch_size * rows, columns):
        fail(MODEL_BATCH_DROPPED, **details)
    fail(MODEL_OUTPUT_SHAPE, height=height, width=width, num_classes=num_classes, **details)


def _in_training_mode(model, batch, found):
    """Whether the model, called with training=False, still normalises with the batch's statistics: its output
    for the first image changes when that image comes alone. Only the learner's own calls are made (the check
    never runs the backbone in training mode itself, so its moving averages are left as the learner's code
    leaves them)."""
    if len(batch) < 2:
        return False
    alone = as_array(_call_model(model, batch[:1]), "The model's output for one image")
    return alone.shape == found[:1].shape and not close(alone, found[:1])


def _diagnose_model_output(model, batch, found, expected, pyramid):
    """Why the learner's output differs from the reference wiring of the learner's own layers."""
    again = as_array(_call_model(model, batch), "The model's output")
    if not np.allclose(found, again, rtol=1e-6, atol=1e-7):
        fail(MODEL_HEADS_BUILT_IN_CALL)
    parts = model.fpn.count_params() + model.cls_head.count_params() + model.box_head.count_params()
    expect(model.count_params() == parts, MODEL_UNSHARED_HEADS, extra=model.count_params() - parts)
    expect(not _in_training_mode(model, batch, found), MODEL_TRAINING_MODE, call="with training=False")
    own = model.fpn(batch, training=False)
    expect(all(close(a, b) for a, b in zip(own, pyramid)), MODEL_FPN_DIFFERS)
    diagnose(found, MODEL_VARIANTS, close, pyramid, model.box_head, model.cls_head, model.num_classes)
    if not close(found[..., :4], expected[..., :4]):
        fail(MODEL_BOXES_DIFFER, difference=float(np.max(np.abs(found[..., :4] - expected[..., :4]))))
    fail(MODEL_CLASSES_DIFFER, difference=float(np.max(np.abs(found[..., 4:] - expected[..., 4:]))))


def _check_default_flag(model, batch, found):
    """``model(images)``, as inference code calls it (no training argument), computes what training=False does:
    call's default is not training mode (the flag is the only difference between the two calls)."""
    default = as_array(_call_model(model, batch, default=True), "The model's output (called without training=)")
    expect(close(default, found), MODEL_TRAINING_MODE, call="without a training argument")


def _diagnose_classes_from_box_head(model):
    """After a crash or a wrong shape: the learner's class built for 4 classes, whose class columns would then
    be shaped like box_head's output; if they equal the box deltas, the class outputs come from box_head."""
    if int(model.num_classes) == 4:
        return
    try:
        other = type_of(model)(num_classes=4, backbone=small_backbone())
        batch = images(*DEFAULT_MODEL_IMAGE)
        build_eagerly(other.fpn, batch.shape)
        output = as_array(other(batch, training=False), "output")
    except Exception:  # noqa: BLE001 (it cannot be built or called that way: not this diagnosis)
        return
    if output.ndim == 3 and output.shape[-1] == 8 and close(output[..., 4:], output[..., :4]) \
            and not close(output[..., :4], 0.0 * output[..., :4]):
        fail(MODEL_CLASSES_FROM_BOX_HEAD)


def _check_other_class_count(model):
    """The learner's class built for another number of classes: nothing may stay fixed at the first count."""
    num_classes = int(model.num_classes)
    other_classes = num_classes + 2
    build = f"{type_name(model)}(num_classes={other_classes}, backbone=...)"
    other = call_learner(build, type_of(model), num_classes=other_classes, backbone=small_backbone())
    batch = images(*OTHER_CLASSES_IMAGE)
    expected = (len(batch), sum(anchors_per_level(*OTHER_CLASSES_IMAGE)), 4 + other_classes)
    try:
        build_eagerly(other.fpn, batch.shape)
        shape = tuple(other(batch, training=False).shape)
    except Exception as error:
        fail(MODEL_FIXED_CLASSES, num_classes=num_classes, build=build,
             outcome=f"raises {type(error).__name__} when called")
    expect(shape == expected, MODEL_FIXED_CLASSES, num_classes=num_classes, build=build,
           outcome=f"outputs shape {shape} instead of {expected}")


def _check_retinanet(model, check_name):
    _check_model_parts(model, check_name)
    _check_prior_bias(model)
    num_classes = int(model.num_classes)
    backbone = model.fpn.backbone
    height, width = _model_image_size(backbone)
    batch = images(height, width, seed=3)
    try:
        found = as_array(_call_model(model, batch), "The model's output")
    except AssertionError:
        _diagnose_classes_from_box_head(model)
        raise
    num_anchors = sum(anchors_per_level(height, width))
    if found.shape != (len(batch), num_anchors, 4 + num_classes):
        _diagnose_classes_from_box_head(model)
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
    _check_default_flag(model, batch, found)
    _check_other_class_count(model)
    passed(f"{check_name} passed: RetinaNet with {num_classes} classes outputs (batch, {num_anchors}, "
           f"{4 + num_classes}) for {height}×{width} images and matches the reference wiring of your layers.")


@check
def TEST_RETINANET(model):
    """The whole RetinaNet: attributes, subnets, prior bias and the output of ``call``."""
    _check_retinanet(model, "TEST_RETINANET")


@check
def TEST_RESNET(model):
    """The name the course's design card gives :func:`TEST_RETINANET`; the same check."""
    _check_retinanet(model, "TEST_RESNET")
