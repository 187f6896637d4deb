"""The checks of the RetinaNet course: one ``TEST_*`` function per exercise.

Every check feeds the same weights and inputs into your code and into the reference implementation (the
``retinanet`` package), compares what comes out, and inspects the structure that matters (layer names,
shapes, parameter counts, initialisation, wiring). On success it prints one line. On failure it raises
``AssertionError`` with a short message: what was expected, what was found, and the most likely cause.

    from tests import TEST_BACKBONE_MODEL, TEST_FPN, TEST_HEAD_MODEL, TEST_RESNET
    TEST_HEAD_MODEL(build_head)
"""

import functools
import math
import types
import warnings

import numpy as np

from retinanet._tf import keras, tf
from retinanet import anchors as ref_anchors
from retinanet import boxes as ref_boxes
from retinanet import losses as ref_losses
from retinanet import matching as ref_matching
from retinanet import postprocess as ref_postprocess
from retinanet.backbone import BACKBONE_OUTPUT_LAYERS, get_backbone as ref_get_backbone
from retinanet.fpn import FPN_CHANNELS, FeaturePyramidNetwork as RefFeaturePyramidNetwork
from retinanet.heads import HEAD_DEPTH, KERNEL_STDDEV, build_head as ref_build_head, prior_bias
from retinanet.model import RetinaNet as RefRetinaNet

__all__ = [
    "TEST_BACKBONE_MODEL", "TEST_FPN", "TEST_HEAD_MODEL", "TEST_RESNET", "TEST_FOCAL_LOSS", "TEST_ANCHORS",
    "TEST_IOU", "TEST_MATCHING", "TEST_BOX_CODING", "TEST_DETECTION_LOSS", "TEST_DECODE",
]

BACKBONE_INPUT_SHAPE = (128, 128, 3)
FPN_LAYER_NAMES = (
    "conv_c3_1x1", "conv_c4_1x1", "conv_c5_1x1",
    "conv_c3_3x3", "conv_c4_3x3", "conv_c5_3x3", "conv_c6_3x3", "conv_c7_3x3",
)
LEVEL_NAMES = ("P3", "P4", "P5", "P6", "P7")


# --------------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------------

def _check(function):
    """Run a check quietly (no warnings on stderr, which nbgrader would count as a failure)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        __tracebackhide__ = True  # noqa: F841  (IPython and pytest hide this frame)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            function(*args, **kwargs)
        return None

    return wrapper


def _expect(condition, message):
    __tracebackhide__ = True  # noqa: F841
    if not condition:
        raise AssertionError(message)


def _call(what, function, *args, **kwargs):
    """Call the learner's code; turn any crash into a one-sentence AssertionError."""
    __tracebackhide__ = True  # noqa: F841
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        raise AssertionError(
            f"{what} raised NotImplementedError: replace the `raise NotImplementedError()` line with your code."
        ) from None
    except AssertionError:
        raise
    except Exception as error:  # the learner's code crashed: report it briefly, without our frames
        raise AssertionError(f"{what} raised {type(error).__name__}: {_first_line(error)}") from None


def _first_line(error, limit=220):
    """The first informative line of an error message (Keras prefixes "Exception encountered when ...")."""
    lines = [line.strip() for line in str(error).splitlines()
             if line.strip() and not line.strip().startswith("Exception encountered")]
    text = lines[0] if lines else "(no message)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(value):
    if value is None:
        return "None"
    shape = getattr(value, "shape", None)
    return f"a {type(value).__name__}" + (f" of shape {tuple(shape)}" if shape is not None else "")


def _array(value, what, hint=""):
    """``value`` as a float64 numpy array, or a clear AssertionError."""
    __tracebackhide__ = True  # noqa: F841
    _expect(value is not None, f"{what} is None: did you leave a `None` placeholder or forget `return`?{hint}")
    try:
        return np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)
    except Exception:
        raise AssertionError(f"{what} should be a tensor or array, but it is {_describe(value)}.") from None


def _close(found, expected, rtol=1e-4, atol=1e-5):
    found, expected = np.asarray(found, np.float64), np.asarray(expected, np.float64)
    if found.shape != expected.shape or not np.all(np.isfinite(found)):
        return False
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    return bool(np.allclose(found, expected, rtol=rtol, atol=atol * scale))


def _shape(value):
    return tuple(np.shape(value))


def _producer(tensor):
    """Name of the layer that produced a symbolic Keras tensor."""
    history = getattr(tensor, "_keras_history", None)
    operation = getattr(history, "operation", None) or (history[0] if history else None)
    return getattr(operation, "name", "?")


def _passed(message):
    print(message)


@functools.lru_cache(maxsize=None)
def _reference_backbone():
    """ResNet50 at the course's input size, random weights (built once per process)."""
    return ref_get_backbone(input_shape=BACKBONE_INPUT_SHAPE, weights=None)


@functools.lru_cache(maxsize=None)
def _small_backbone():
    """A 3-convolution stand-in for ResNet50 with C3, C4, C5 at strides 8, 16, 32 (8, 16, 32 channels).

    The pyramid's wiring does not depend on the backbone, so the FPN check uses this to stay fast; its
    different channel counts also reveal which map each of your convolutions was applied to.
    """
    images = keras.Input(shape=(None, None, 3))
    features, x = [], images
    for index, (filters, strides) in enumerate([(8, 8), (16, 2), (32, 2)]):
        x = keras.layers.Conv2D(
            filters, 3, strides=strides, padding="same", activation="relu",
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=index),
            bias_initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=10 + index),
        )(x)
        features.append(x)
    return keras.Model(images, features, name="small_test_backbone")


def _images(height, width, seed=0, batch=1):
    return np.random.default_rng(seed).normal(0.0, 30.0, size=(batch, height, width, 3)).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Stage 1: architecture
# --------------------------------------------------------------------------------------------------

@_check
def TEST_BACKBONE_MODEL(get_backbone):
    """``get_backbone()`` returns ResNet50 without its top, outputs C3, C4, C5 of the right layers."""
    __tracebackhide__ = True  # noqa: F841
    model = _call("get_backbone()", get_backbone)
    _expect(isinstance(model, keras.Model),
            f"get_backbone() should return a keras.Model, but it returned {_describe(model)}; did you forget "
            "to `return keras.Model(inputs=..., outputs=...)`?")
    reference = _reference_backbone()
    _expect(len(model.inputs) == 1 and tuple(model.inputs[0].shape) == (None, *BACKBONE_INPUT_SHAPE),
            f"The backbone should take images of shape (batch, 128, 128, 3), found inputs "
            f"{[tuple(t.shape) for t in model.inputs]}; pass input_shape=(128, 128, 3) to ResNet50.")
    _expect(len(model.outputs) == 3,
            f"The backbone should have 3 outputs (C3, C4, C5), found {len(model.outputs)}; pass a list of three "
            "layer outputs as `outputs`.")
    for index, (tensor, expected_name) in enumerate(zip(model.outputs, BACKBONE_OUTPUT_LAYERS)):
        found_name = _producer(tensor)
        _expect(found_name == expected_name,
                f"Output {index + 1} (C{index + 3}) should come from layer '{expected_name}', the last block of "
                f"ResNet stage {index + 3}, but it comes from '{found_name}'; check the name passed to get_layer "
                "and that you took the layer's `.output`.")
    for index, (tensor, expected) in enumerate(zip(model.outputs, reference.outputs)):
        _expect(tuple(tensor.shape) == tuple(expected.shape),
                f"C{index + 3} should have shape {tuple(expected.shape)}, found {tuple(tensor.shape)}.")
    expected_params, found_params = reference.count_params(), model.count_params()
    _expect(found_params == expected_params,
            f"ResNet50 without its classifier has {expected_params:,} parameters, your backbone has "
            f"{found_params:,}; use keras.applications.ResNet50 with include_top=False.")

    # Behaviour: the reference backbone with your weights must compute the same C3, C4, C5.
    for target, source in zip(reference.weights, model.weights):
        target.assign(source)
    images = _images(*BACKBONE_INPUT_SHAPE[:2])
    found = _call("Calling your backbone", model, images, training=False)
    expected = reference(images, training=False)
    for index in range(3):
        _expect(_close(_array(found[index], f"C{index + 3}"), expected[index], rtol=1e-3, atol=1e-4),
                f"With identical weights, your C{index + 3} differs from ResNet50's '{BACKBONE_OUTPUT_LAYERS[index]}'"
                "; the model should return the layer outputs unchanged.")
    _passed("TEST_BACKBONE_MODEL passed: ResNet50 (no top) with outputs C3, C4, C5 from "
            + ", ".join(BACKBONE_OUTPUT_LAYERS) + ".")


def _fpn_proxy(fpn, features):
    """An object with your FPN's layers whose backbone returns precomputed ``features``."""
    layers = {name: getattr(fpn, name) for name in FPN_LAYER_NAMES + ("upsample_2x",)}
    return types.SimpleNamespace(**layers, backbone=lambda images, training=False: features)


def _input_channels(layer):
    kernel = getattr(layer, "kernel", None)
    return None if kernel is None else int(kernel.shape[2])


def _reference_pyramid(fpn, features, images):
    """P3–P7 computed by the reference ``call`` with your FPN's layers and weights."""
    return [np.asarray(p) for p in RefFeaturePyramidNetwork.call(_fpn_proxy(fpn, features), images)]


def _check_fpn_layers(fpn, what):
    __tracebackhide__ = True  # noqa: F841
    reference = RefFeaturePyramidNetwork(backbone=_small_backbone())
    for name in FPN_LAYER_NAMES + ("upsample_2x",):
        _expect(hasattr(fpn, name),
                f"{what} has no attribute `{name}`; keep the layer names defined in __init__.")
    for name in FPN_LAYER_NAMES:
        layer, expected = getattr(fpn, name), getattr(reference, name)
        _expect(isinstance(layer, keras.layers.Conv2D),
                f"`{name}` should be a Conv2D layer, found {type(layer).__name__}.")
        for key in ("filters", "kernel_size", "strides", "padding"):
            found_value, expected_value = layer.get_config()[key], expected.get_config()[key]
            _expect(tuple(np.atleast_1d(found_value)) == tuple(np.atleast_1d(expected_value)),
                    f"`{name}` should have {key}={expected_value}, found {found_value}.")


def _diagnose_fpn_inputs(fpn, features):
    """Which map each convolution was applied to, read from its kernel's input channels (None if all fine)."""
    c3, c4, c5 = (np.asarray(c) for c in features)
    wanted = {"conv_c3_1x1": ("C3", c3.shape[-1]), "conv_c4_1x1": ("C4", c4.shape[-1]),
              "conv_c5_1x1": ("C5", c5.shape[-1]), "conv_c6_3x3": ("C5", c5.shape[-1])}
    for name, (source, channels) in wanted.items():
        seen = _input_channels(getattr(fpn, name))
        if seen is None:
            return f"`{name}` is never used in call; it should be applied to {source}."
        if seen != channels:
            extra = " RetinaNet computes P6 from C5, not from P5." if name == "conv_c6_3x3" else ""
            return (f"`{name}` was applied to a map with {seen} channels, but it should be applied to {source} "
                    f"(the backbone output).{extra}")
    for name in ("conv_c3_3x3", "conv_c4_3x3", "conv_c5_3x3", "conv_c7_3x3"):
        if _input_channels(getattr(fpn, name)) is None:
            return f"`{name}` is never used in call; every pyramid level goes through its own 3×3 convolution."
    return None


def _diagnose_fpn(fpn, features, found, expected):
    """The likely cause of a wrong pyramid level, from alternative wirings of your layers."""
    c3, c4, c5 = (np.asarray(c) for c in features)
    layers = types.SimpleNamespace(**{name: getattr(fpn, name) for name in FPN_LAYER_NAMES})
    upsample = fpn.upsample_2x
    lateral5 = layers.conv_c5_1x1(c5)
    lateral4 = layers.conv_c4_1x1(c4)
    lateral3 = layers.conv_c3_1x1(c3)
    merged4 = lateral4 + upsample(lateral5)
    p6 = layers.conv_c6_3x3(c5)
    alternatives = [
        (4, layers.conv_c7_3x3(p6), "P7 should be conv_c7_3x3 applied to ReLU(P6), found it applied to P6 without the ReLU."),
        (4, tf.nn.relu(layers.conv_c7_3x3(tf.nn.relu(p6))),
         "P7 has a ReLU on its output; the paper applies the ReLU to P6 before conv_c7_3x3 and leaves P7 linear."),
        (4, tf.nn.relu(layers.conv_c7_3x3(p6)),
         "P7 should be conv_c7_3x3(ReLU(P6)); you applied the ReLU after the convolution instead of before it."),
        (3, tf.nn.relu(p6), "P6 should be the plain output of conv_c6_3x3(C5), without a ReLU."),
        (2, lateral5, "P5 is missing its 3×3 convolution: P5 = conv_c5_3x3(conv_c5_1x1(C5))."),
        (1, merged4, "P4 is missing its 3×3 convolution: P4 = conv_c4_3x3(merged P4)."),
        (1, layers.conv_c4_3x3(lateral4),
         "P4 is missing the top-down path: add the upsampled P5 lateral map to conv_c4_1x1(C4) before the 3×3 convolution."),
        (0, lateral3 + upsample(merged4), "P3 is missing its 3×3 convolution: P3 = conv_c3_3x3(merged P3)."),
        (0, layers.conv_c3_3x3(lateral3 + upsample(lateral4)),
         "merged P3 must add the upsampled *merged* P4 (which already carries P5), not the plain conv_c4_1x1(C4)."),
        (0, layers.conv_c3_3x3(lateral3),
         "P3 is missing the top-down path: add the upsampled merged P4 to conv_c3_1x1(C3) before the 3×3 convolution."),
    ]
    for level, alternative, message in alternatives:
        if _close(found[level], alternative):
            return message
    level = next(i for i in range(5) if not _close(found[i], expected[i]))
    recipes = [
        "P3 = conv_c3_3x3(conv_c3_1x1(C3) + upsample_2x(merged P4))",
        "P4 = conv_c4_3x3(conv_c4_1x1(C4) + upsample_2x(conv_c5_1x1(C5)))",
        "P5 = conv_c5_3x3(conv_c5_1x1(C5))",
        "P6 = conv_c6_3x3(C5)",
        "P7 = conv_c7_3x3(ReLU(P6))",
    ]
    return f"{LEVEL_NAMES[level]} differs from the reference although the weights are the same; expected {recipes[level]}."


@_check
def TEST_FPN(FeaturePyramidNetwork):
    """The FPN's ``call`` wires C3–C5 into P3–P7 as in the paper (checked on a small stand-in backbone)."""
    __tracebackhide__ = True  # noqa: F841
    backbone = _small_backbone()
    fpn = _call("FeaturePyramidNetwork(backbone=...)", FeaturePyramidNetwork, backbone=backbone)
    _expect(isinstance(fpn, keras.layers.Layer),
            f"FeaturePyramidNetwork(...) should create a keras Layer, found {_describe(fpn)}.")
    _check_fpn_layers(fpn, "Your FeaturePyramidNetwork")
    images = _images(64, 96, seed=1)
    features = [np.asarray(c) for c in backbone(images)]
    try:
        outputs = fpn(images)
    except NotImplementedError:
        raise AssertionError("FeaturePyramidNetwork.call raised NotImplementedError: replace the "
                             "`raise NotImplementedError()` line with your code.") from None
    except Exception as error:
        cause = error.__cause__ or error.__context__ or error
        hint = ("; the usual cause is adding maps of different sizes: upsample the top-down map 2× "
                "(self.upsample_2x) before adding it to the next lateral map" if "shape" in str(cause).lower() else "")
        raise AssertionError(f"FeaturePyramidNetwork.call raised {type(cause).__name__}{hint}.") from None
    _expect(isinstance(outputs, (tuple, list)) and len(outputs) == 5,
            f"call should return the five maps (P3, P4, P5, P6, P7), found {_describe(outputs)}"
            + (f" with {len(outputs)} items." if isinstance(outputs, (tuple, list)) else "."))
    found = [_array(p, f"{LEVEL_NAMES[i]} (output {i + 1} of call)") for i, p in enumerate(outputs)]
    wrong_input = _diagnose_fpn_inputs(fpn, features)
    if wrong_input:
        raise AssertionError(wrong_input)
    expected = _reference_pyramid(fpn, features, images)
    for index, (level, wanted) in enumerate(zip(found, expected)):
        if level.shape != wanted.shape:
            shapes = [e.shape for e in expected]
            if level.shape in shapes and shapes.index(level.shape) != index:
                cause = "call returns the levels in the wrong order; return (P3, P4, P5, P6, P7)."
            else:
                cause = ("a top-down map must be upsampled 2× (self.upsample_2x) before it is added to the next "
                         "lateral map, and P6/P7 come from stride-2 convolutions.")
            raise AssertionError(f"For a 64×96 image {LEVEL_NAMES[index]} should have shape {wanted.shape}, found "
                                 f"{level.shape}; {cause}")
    if not all(_close(f, e) for f, e in zip(found, expected)):
        raise AssertionError(_diagnose_fpn(fpn, features, found, expected))
    _passed("TEST_FPN passed: P3–P7 have the right shapes and match the reference wiring with your weights.")


def _conv_layers(head):
    return [layer for layer in head.layers if isinstance(layer, keras.layers.Conv2D)]


def _activation(layer):
    return getattr(layer.activation, "__name__", str(layer.activation))


def _check_head_structure(head, output_filters, what, check_init=True):
    __tracebackhide__ = True  # noqa: F841
    _expect(isinstance(head, keras.Model),
            f"{what} should be a keras Sequential model, found {_describe(head)}; did you `return head`?")
    try:
        input_shape = tuple(head.inputs[0].shape)
    except Exception:
        input_shape = None
    _expect(input_shape == (None, None, None, FPN_CHANNELS),
            f"{what} should start with keras.Input(shape=[None, None, 256]), found input shape {input_shape}.")
    convs = _conv_layers(head)
    hidden, output = convs[:-1], (convs[-1] if convs else None)
    _expect(len(hidden) == HEAD_DEPTH,
            f"{what} should have {HEAD_DEPTH} hidden 3×3 convolutions (256 filters, ReLU) before the output layer, "
            f"found {len(hidden)}; the paper's subnets use four.")
    for index, layer in enumerate(hidden):
        config = layer.get_config()
        _expect(config["filters"] == FPN_CHANNELS and tuple(config["kernel_size"]) == (3, 3)
                and config["padding"] == "same" and _activation(layer) == "relu",
                f"Hidden convolution {index + 1} of {what} should be Conv2D(256, 3, padding='same', "
                f"activation='relu'), found filters={config['filters']}, kernel_size={config['kernel_size']}, "
                f"padding='{config['padding']}', activation='{_activation(layer)}'.")
    config = output.get_config()
    _expect(config["filters"] == output_filters,
            f"The last convolution of {what} should have {output_filters} filters, found {config['filters']}.")
    _expect(tuple(config["kernel_size"]) == (3, 3) and config["padding"] == "same",
            f"The last convolution of {what} should be 3×3 with padding='same', found kernel_size="
            f"{config['kernel_size']}, padding='{config['padding']}'.")
    _expect(_activation(output) == "linear",
            f"The last convolution of {what} should have no activation (the loss applies the sigmoid), found "
            f"activation='{_activation(output)}'.")
    if check_init:
        for index, layer in enumerate(convs):
            kernel = np.asarray(layer.kernel)
            std = float(kernel.std())
            _expect(abs(std - KERNEL_STDDEV) < 0.15 * KERNEL_STDDEV and abs(float(kernel.mean())) < 0.002,
                    f"Convolution {index + 1} of {what} should start from a Gaussian with σ = 0.01 "
                    f"(kernel_initializer=RandomNormal(stddev=0.01)), found weights with std {std:.4f}.")
        for index, layer in enumerate(hidden):
            _expect(np.allclose(np.asarray(layer.bias), 0.0),
                    f"Hidden convolution {index + 1} of {what} should start with zero biases.")


@functools.lru_cache(maxsize=None)
def _reference_head(output_filters):
    return ref_build_head(output_filters)


@_check
def TEST_HEAD_MODEL(build_head):
    """``build_head(output_filters)``: structure, initialisation, bias argument and outputs."""
    __tracebackhide__ = True  # noqa: F841
    output_filters = 18
    head = _call(f"build_head({output_filters})", build_head, output_filters)
    _check_head_structure(head, output_filters, f"build_head({output_filters})")
    output_bias = np.asarray(_conv_layers(head)[-1].bias)
    _expect(np.allclose(output_bias, 0.0),
            "By default the output convolution should start with zero biases (bias_initializer='zeros').")
    reference = _reference_head(output_filters)
    _expect(head.count_params() == reference.count_params(),
            f"The head should have {reference.count_params():,} parameters, found {head.count_params():,}.")

    prior = keras.initializers.Constant(prior_bias())
    biased = _call("build_head(18, bias_initializer=...)", build_head, output_filters, bias_initializer=prior)
    _check_head_structure(biased, output_filters, "build_head(18, bias_initializer=...)", check_init=False)
    convs = _conv_layers(biased)
    _expect(np.allclose(np.asarray(convs[-1].bias), prior_bias(), atol=1e-4),
            "build_head(..., bias_initializer=b) should use b for the output convolution's bias; found other "
            "values, so the argument is ignored (the classification subnet needs it for the prior bias).")
    _expect(all(np.allclose(np.asarray(layer.bias), 0.0) for layer in convs[:-1]),
            "bias_initializer is for the output convolution only; the hidden convolutions keep zero biases.")

    reference.set_weights(head.get_weights())
    features = np.random.default_rng(2).normal(size=(1, 6, 5, FPN_CHANNELS)).astype(np.float32)
    found = _array(_call("Calling your head", head, features), "The head's output")
    expected = np.asarray(reference(features))
    _expect(found.shape == expected.shape,
            f"On a (1, 6, 5, 256) feature map the head should output {expected.shape}, found {found.shape}.")
    _expect(_close(found, expected),
            "With identical weights your head computes different values than the reference; check the order of "
            "the layers and that every hidden convolution has a ReLU.")
    _passed(f"TEST_HEAD_MODEL passed: 4 × (3×3 conv, 256, ReLU) + 3×3 conv, σ = 0.01 init, "
            f"{head.count_params():,} parameters for {output_filters} outputs.")


@_check
def TEST_RESNET(model):
    """The whole RetinaNet: attributes, heads, prior bias and the output of ``call``."""
    __tracebackhide__ = True  # noqa: F841
    _expect(isinstance(model, keras.Model),
            f"TEST_RESNET expects a RetinaNet instance (a keras.Model), found {_describe(model)}.")
    for name in ("num_classes", "fpn", "cls_head", "box_head"):
        _expect(hasattr(model, name),
                f"Your RetinaNet has no attribute `{name}`; set self.{name} in __init__.")
    num_classes = model.num_classes
    _expect(isinstance(num_classes, (int, np.integer)) and num_classes >= 1,
            f"model.num_classes should be the number of classes (an int), found {num_classes!r}.")
    anchors = ref_anchors.ANCHORS_PER_LOCATION
    _expect(hasattr(model.fpn, "backbone") and all(hasattr(model.fpn, n) for n in FPN_LAYER_NAMES),
            "model.fpn should be your FeaturePyramidNetwork (with its backbone and conv_* layers).")
    cls_filters = _conv_layers(model.cls_head)[-1].filters if _conv_layers(model.cls_head) else None
    box_filters = _conv_layers(model.box_head)[-1].filters if _conv_layers(model.box_head) else None
    if (cls_filters, box_filters) == (anchors * 4, anchors * num_classes) and num_classes != 4:
        raise AssertionError("cls_head and box_head are swapped: cls_head needs 9 · num_classes filters, box_head "
                             "9 · 4 = 36.")
    _check_head_structure(model.cls_head, anchors * num_classes, "model.cls_head (9 anchors × num_classes)")
    _check_head_structure(model.box_head, anchors * 4, "model.box_head (9 anchors × 4 deltas)")
    cls_bias = np.asarray(_conv_layers(model.cls_head)[-1].bias)
    _expect(np.allclose(cls_bias, prior_bias(), atol=1e-3),
            f"The classification head's last bias should start at the prior b = −log((1 − π)/π) = "
            f"{prior_bias():.3f} for π = 0.01, found values around {float(cls_bias.mean()):.3f}; pass "
            "bias_initializer=keras.initializers.Constant(prior_bias()) to build_head (missing prior bias).")
    _expect(np.allclose(np.asarray(_conv_layers(model.box_head)[-1].bias), 0.0),
            "The box head's last bias should start at zero; only the classification head gets the prior bias.")

    backbone = model.fpn.backbone
    side = getattr(backbone, "input_shape", (None, None, None))
    height, width = (side[1] or 64, side[2] or 64) if len(side) == 4 else (64, 64)
    images = _images(height, width, seed=3)
    num_anchors = sum(ref_anchors.anchors_per_level(height, width))
    try:
        found = model(images, training=False)
    except NotImplementedError:
        raise AssertionError("Calling the model raised NotImplementedError: complete RetinaNet.call.") from None
    except Exception as error:
        raise AssertionError(
            f"Calling the model raised {type(error).__name__} ({_first_line(error, 120)}); the usual cause is a "
            "reshape with the wrong last dimension: box outputs to (batch, -1, 4), class outputs to "
            "(batch, -1, num_classes).") from None
    found = _array(found, "The model's output")
    expected_shape = (1, num_anchors, 4 + num_classes)
    if found.shape != expected_shape:
        raise AssertionError(
            f"For a {height}×{width} image the output should have shape {expected_shape} (anchors × [4 box deltas "
            f"+ {num_classes} class logits]), found {found.shape}; reshape box outputs to (batch, -1, 4) and class "
            "outputs to (batch, -1, num_classes), concatenate the levels on axis 1 and the two on axis -1.")

    features = [np.asarray(c) for c in backbone(images, training=False)]
    wrong_input = _diagnose_fpn_inputs(model.fpn, features)
    if wrong_input:
        raise AssertionError(f"Your model's FPN is wired differently from the paper: {wrong_input} Run TEST_FPN.")
    pyramid = RefFeaturePyramidNetwork.call(_fpn_proxy(model.fpn, features), images)
    proxy = types.SimpleNamespace(fpn=lambda x, training=False: pyramid, box_head=model.box_head,
                                  cls_head=model.cls_head, num_classes=num_classes)
    expected = np.asarray(RefRetinaNet.call(proxy, tf.constant(images)))
    if _close(found, expected):
        _passed(f"TEST_RESNET passed: RetinaNet with {num_classes} classes outputs (batch, {num_anchors}, "
                f"{4 + num_classes}) for {height}×{width} images and matches the reference.")
        return
    swapped = np.concatenate([expected[..., 4:], expected[..., :4]], axis=-1)
    if num_classes == 4 and _close(found, swapped) or _close(found[..., :num_classes], expected[..., 4:]):
        raise AssertionError("The output has the class logits first; the order must be [box deltas, class logits]: "
                             "tf.concat([box_outputs, cls_outputs], axis=-1).")
    own_pyramid = model.fpn(images)
    if not all(_close(a, b) for a, b in zip(own_pyramid, pyramid)):
        raise AssertionError("Your model's FPN produces different P3–P7 than the reference wiring; run TEST_FPN "
                             "on your FeaturePyramidNetwork first.")
    if _close(found[..., :4], expected[..., :4]):
        cause = "the class logits differ: run cls_head on every level and reshape to (batch, -1, num_classes)."
    else:
        cause = "the box deltas differ: run box_head on every level and reshape to (batch, -1, 4)."
    raise AssertionError(f"With identical weights your model's output differs from the reference: {cause}")


# --------------------------------------------------------------------------------------------------
# Stage 2: focal loss
# --------------------------------------------------------------------------------------------------

def _focal_variants(labels, logits, alpha, gamma):
    """The reference focal loss and common mistakes, element-wise, in float64."""
    p = 1.0 / (1.0 + np.exp(-logits))
    ce = np.logaddexp(0.0, logits) - labels * logits  # −y log p − (1 − y) log(1 − p), stable
    p_t = np.where(labels == 1, p, 1 - p)
    alpha_t = np.where(labels == 1, alpha, 1 - alpha)
    swapped_alpha_t = np.where(labels == 1, 1 - alpha, alpha)
    return {
        "reference": alpha_t * (1 - p_t) ** gamma * ce,
        "alpha_swapped": swapped_alpha_t * (1 - p_t) ** gamma * ce,
        "no_alpha": (1 - p_t) ** gamma * ce,
        "gamma_on_p_t": alpha_t * p_t ** gamma * ce,
        "gamma_on_p": alpha_t * (1 - p) ** gamma * ce,
        "no_modulation": alpha_t * ce,
    }


_FOCAL_MESSAGES = {
    "alpha_swapped": "α is applied to the wrong class: α_t = α for positives (label 1) and 1 − α for negatives.",
    "no_alpha": "the α-balancing factor α_t (α for positives, 1 − α for negatives) is missing.",
    "gamma_on_p_t": "the modulating factor should be (1 − p_t)^γ, found p_t^γ, which weights easy examples up.",
    "gamma_on_p": "the modulating factor uses p instead of p_t: it should be (1 − p_t)^γ with p_t = p for "
                  "positives and 1 − p for negatives (γ applied to 1 − p_t).",
    "no_modulation": "the modulating factor (1 − p_t)^γ is missing (or γ is ignored).",
}


@_check
def TEST_FOCAL_LOSS(sigmoid_focal_loss):
    """Element-wise α-balanced sigmoid focal loss (Lin et al., Eq. 5) from logits."""
    __tracebackhide__ = True  # noqa: F841
    logits = np.tile(np.linspace(-8.0, 8.0, 33), 2).reshape(2, 33).astype(np.float32)
    labels = np.stack([np.ones(33), np.zeros(33)]).astype(np.float32)
    for alpha, gamma in ((0.25, 2.0), (0.5, 0.0), (0.75, 5.0), (0.25, 0.5)):
        what = f"sigmoid_focal_loss(labels, logits, alpha={alpha}, gamma={gamma})"
        found = _array(_call(what, sigmoid_focal_loss, labels, logits, alpha=alpha, gamma=gamma), f"{what}'s result")
        _expect(found.shape == labels.shape,
                f"{what} should return one loss per element, shape {labels.shape}, found shape {found.shape}; "
                "do not reduce (sum or mean) here, the detection loss normalises later.")
        variants = _focal_variants(labels.astype(np.float64), logits.astype(np.float64), alpha, gamma)
        if _close(found, variants["reference"], rtol=1e-3, atol=1e-5):
            continue
        if np.all(found <= 1e-7) and np.any(found < -1e-6):
            raise AssertionError(f"{what} returned negative losses; FL = −α_t (1 − p_t)^γ log(p_t) is positive "
                                 "(check the sign).")
        for name, message in _FOCAL_MESSAGES.items():
            if _close(found, variants[name], rtol=1e-3, atol=1e-5):
                raise AssertionError(f"{what} differs from the paper's Eq. 5: {message}")
        raise AssertionError(f"{what} differs from FL(p_t) = −α_t (1 − p_t)^γ log(p_t) (Eq. 5); check p_t, α_t "
                             "and the modulating factor for both classes.")
    extreme = np.array([[100.0, 100.0], [-100.0, -100.0]], np.float32)  # two easy, two hopeless
    found = _array(_call("sigmoid_focal_loss on logits ±100", sigmoid_focal_loss, np.eye(2, dtype=np.float32),
                         extreme), "sigmoid_focal_loss's result")
    _expect(np.all(np.isfinite(found)),
            "sigmoid_focal_loss is not finite for logits of ±100 (log of a probability that rounded to 0); compute "
            "the cross-entropy from logits, e.g. tf.nn.sigmoid_cross_entropy_with_logits, as the paper advises.")
    _passed("TEST_FOCAL_LOSS passed: α-balanced focal loss matches Eq. 5 for 4 (α, γ) pairs and is stable.")


# --------------------------------------------------------------------------------------------------
# Stage 3: anchors and targets
# --------------------------------------------------------------------------------------------------

def _sorted_rows(boxes):
    boxes = np.round(np.asarray(boxes, np.float64), 3)
    return boxes[np.lexsort(boxes.T[::-1])]


@_check
def TEST_ANCHORS(generate_anchors):
    """``generate_anchors(image_height, image_width)``: count, order, centres, sizes and aspect ratios."""
    __tracebackhide__ = True  # noqa: F841
    for height, width in ((64, 96), (128, 128)):
        what = f"generate_anchors({height}, {width})"
        found = _array(_call(what, generate_anchors, height, width), f"{what}'s result")
        expected = ref_anchors.generate_anchors(height, width).astype(np.float64)
        per_level = ref_anchors.anchors_per_level(height, width)
        if found.shape != expected.shape:
            if found.ndim == 2 and found.shape[1] == 4 and found.shape[0] * 9 == expected.shape[0]:
                cause = "only one anchor per location: use 3 scales × 3 aspect ratios = 9."
            elif found.ndim == 2 and found.shape[1] == 4 and found.shape[0] * 3 == expected.shape[0]:
                cause = "3 anchors per location: combine every one of the 3 scales with every one of the 3 ratios (9)."
            else:
                cause = f"levels P3–P7 with strides 8 … 128 and 9 anchors per location give {per_level} per level."
            raise AssertionError(f"{what} should return shape {expected.shape} ([x1, y1, x2, y2] per anchor), "
                                 f"found {found.shape}; {cause}")
        if _close(found, expected, atol=1e-4):
            continue
        if _close(_sorted_rows(found), _sorted_rows(expected), atol=1e-3):
            raise AssertionError(f"{what} has the right anchors in the wrong order; the order is level (P3 first), "
                                 "row, column, then the 9 anchors of a location (aspect ratio major, scale minor).")
        if _close(_sorted_rows(found), _sorted_rows(expected[:, [1, 0, 3, 2]]), atol=1e-3):
            raise AssertionError(f"{what} has x and y swapped: boxes are [x1, y1, x2, y2] with x along the width "
                                 "(columns) and y along the height (rows).")
        offsets = np.repeat([2 ** level / 2 for level in ref_anchors.PYRAMID_LEVELS], per_level)[:, None]
        if _close(found, expected - offsets, atol=1e-3):
            raise AssertionError(f"{what} puts anchor centres at the top-left corner of each cell; centre them at "
                                 "((column + 0.5) · stride, (row + 0.5) · stride).")
        if _close(found, ref_boxes.to_centre_size(expected).numpy(), atol=1e-3):
            raise AssertionError(f"{what} returns [cx, cy, w, h]; convert to corners [x1, y1, x2, y2].")
        start = 0
        for level, count, base in zip(ref_anchors.PYRAMID_LEVELS, per_level, ref_anchors.ANCHOR_SIZES):
            chunk = slice(start, start + count)
            if not _close(found[chunk], expected[chunk], atol=1e-3):
                sides = np.sqrt(np.maximum(ref_boxes.box_areas(found[chunk]), 0.0))
                ratios = np.round(np.unique(np.round((found[chunk, 3] - found[chunk, 1])
                                                     / np.maximum(found[chunk, 2] - found[chunk, 0], 1e-9), 3)), 2)
                raise AssertionError(
                    f"{what}: the anchors of P{level} (stride {2 ** level}) differ; they should have sides "
                    f"{base:g} · (2^0, 2^(1/3), 2^(2/3)) (found {sides.min():.1f} … {sides.max():.1f}) and height/width "
                    f"ratios 0.5, 1, 2 (found {', '.join(f'{r:g}' for r in ratios[:6])}), centred in their cells.")
            start += count
    _passed("TEST_ANCHORS passed: 9 anchors per location on P3–P7, reference order, sizes, ratios and centres.")


def _iou_variants(a, b):
    def areas(x, plus):
        return (x[:, 2] - x[:, 0] + plus) * (x[:, 3] - x[:, 1] + plus)

    def compute(plus=0.0, clamp=True, subtract=True):
        lt = np.maximum(a[:, None, :2], b[None, :, :2])
        rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
        wh = rb - lt + plus
        if clamp:
            wh = np.maximum(wh, 0.0)
        inter = wh[..., 0] * wh[..., 1]
        union = areas(a, plus)[:, None] + areas(b, plus)[None, :] - (inter if subtract else 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(union != 0, inter / union, 0.0)

    return {
        "plus_one": (compute(plus=1.0), "it uses the '+1' pixel convention (width = x2 − x1 + 1); the course's "
                                        "boxes are continuous, width = x2 − x1."),
        "no_clamp": (compute(clamp=False), "disjoint boxes get a nonzero overlap: clamp the intersection's width "
                                           "and height at 0 (tf.maximum(..., 0))."),
        "no_subtract": (compute(subtract=False), "the union must subtract the intersection: "
                                                 "union = area_a + area_b − intersection."),
    }


@_check
def TEST_IOU(iou):
    """``iou(boxes_a, boxes_b)`` → pairwise (N, M) IoU, continuous coordinates."""
    __tracebackhide__ = True  # noqa: F841
    rng = np.random.default_rng(4)
    corners = rng.uniform(0, 80, size=(7, 2, 2))
    random_a = np.concatenate([corners.min(1), corners.max(1)], axis=1)
    boxes_a = np.concatenate([[[0, 0, 10, 10], [20, 20, 30, 40], [5, 5, 5, 5]], random_a]).astype(np.float32)
    boxes_b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [10, 10, 20, 20], [40, 0, 50, 30], [22, 25, 28, 35],
                        [0, 0, 100, 100]], np.float32)
    what = "iou(boxes_a, boxes_b)"
    found = _array(_call(what, iou, boxes_a, boxes_b), f"{what}'s result")
    expected = np.asarray(ref_boxes.iou(boxes_a, boxes_b), np.float64)
    if found.shape == expected.shape[::-1] and found.shape != expected.shape:
        raise AssertionError(f"{what} should have shape (N, M) = {expected.shape}, found {found.shape}: rows index "
                             "boxes_a and columns boxes_b.")
    _expect(found.shape == expected.shape,
            f"{what} should return the pairwise matrix of shape (N, M) = {expected.shape}, found {found.shape}.")
    if not np.all(np.isfinite(found)):
        raise AssertionError(f"{what} returned NaN or inf; two empty boxes have union 0: return 0 there "
                             "(tf.math.divide_no_nan).")
    if not _close(found, expected, atol=1e-5):
        for alternative, message in _iou_variants(boxes_a.astype(np.float64), boxes_b.astype(np.float64)).values():
            if _close(found, alternative, atol=1e-4):
                raise AssertionError(f"{what} differs from the reference: {message}")
        raise AssertionError(f"{what} differs from the reference, e.g. IoU([0,0,10,10], [5,0,15,10]) should be "
                             f"{expected[0, 1]:.3f}, found {found[0, 1]:.3f}; IoU = intersection / union.")
    _passed("TEST_IOU passed: pairwise IoU matches the reference, including disjoint and empty boxes.")


def _matching_case():
    """Anchors whose IoU with the ground truth sits exactly on and around the 0.4 / 0.5 thresholds."""
    gt_boxes = np.array([[0, 0, 10, 10], [100, 100, 104, 104]], np.float32)
    anchors = np.array([
        [0, 0, 10, 10],     # IoU 1.0            → positive, box 0
        [0, 0, 10, 5],      # IoU 0.5 exactly    → positive
        [0, 0, 10, 4.5],    # IoU 0.45           → ignored
        [0, 0, 10, 4],      # IoU 0.4 exactly    → ignored
        [0, 0, 10, 3.9],    # IoU 0.39           → background
        [50, 50, 60, 60],   # IoU 0              → background
        [100, 100, 110, 110],  # IoU 0.16 with box 1, its best anchor → positive (low-quality match)
        [98, 98, 110, 110],    # IoU 0.11 with box 1 → background
        [0, 0, 10, 6],      # IoU 0.6            → positive
    ], np.float32)
    return anchors, gt_boxes


@_check
def TEST_MATCHING(match_anchors):
    """``match_anchors(anchors, gt_boxes)`` → (matched_index, positive, ignored) with the 0.5 / 0.4 rule."""
    __tracebackhide__ = True  # noqa: F841
    anchors, gt_boxes = _matching_case()
    what = "match_anchors(anchors, gt_boxes)"
    result = _call(what, match_anchors, anchors, gt_boxes)
    _expect(isinstance(result, (tuple, list)) and len(result) == 3,
            f"{what} should return three things (matched_index, positive, ignored), found {_describe(result)}.")
    matched = _array(result[0], "matched_index")
    positive = _array(result[1], "positive").astype(bool)
    ignored = _array(result[2], "ignored").astype(bool)
    ref_matched, ref_positive, ref_ignored = (np.asarray(x) for x in ref_matching.match_anchors(anchors, gt_boxes))
    _expect(positive.shape == ref_positive.shape and ignored.shape == ref_ignored.shape
            and matched.shape == ref_matched.shape,
            f"{what} should return three vectors with one entry per anchor, shape {ref_positive.shape}, found "
            f"{matched.shape}, {positive.shape}, {ignored.shape}.")
    ious = np.asarray(ref_boxes.iou(anchors, gt_boxes)).max(axis=1)
    labels = ["positive" if p else "ignored" if i else "background" for p, i in zip(ref_positive, ref_ignored)]
    for index in range(len(anchors)):
        found_label = "positive" if positive[index] else "ignored" if ignored[index] else "background"
        if positive[index] and ignored[index]:
            raise AssertionError(f"Anchor {index} is both positive and ignored; an ignored anchor is one that is "
                                 "neither positive nor background.")
        if found_label == labels[index]:
            continue
        iou_text = f"an IoU of {ious[index]:.2f}"
        if index == 6:
            raise AssertionError(
                f"Anchor {index} is the best anchor of a small ground-truth box but has only {iou_text}; it should "
                f"be positive, found {found_label}: every ground-truth box claims its best-overlapping anchor "
                "(low-quality match), so no object is left without an anchor.")
        raise AssertionError(
            f"An anchor with {iou_text} should be {labels[index]}, found {found_label}; the rule is IoU ≥ 0.5 → "
            "positive, IoU < 0.4 → background, and anchors in [0.4, 0.5) are ignored (check the thresholds and "
            "≥ vs >).")
    _expect(np.array_equal(matched[ref_positive], ref_matched[ref_positive]),
            "Positive anchors are matched to the wrong ground-truth box; matched_index[i] is the box with the "
            "highest IoU for anchor i (argmax over the boxes, axis 1).")
    empty = _call(f"{what} with no ground-truth boxes", match_anchors, anchors, np.zeros((0, 4), np.float32))
    _expect(isinstance(empty, (tuple, list)) and len(empty) == 3
            and not np.any(_array(empty[1], "positive")) and not np.any(_array(empty[2], "ignored")),
            "With no ground-truth boxes every anchor should be background (no positives, no ignored).")
    _passed("TEST_MATCHING passed: IoU ≥ 0.5 positive, < 0.4 background, ignored between, best anchor per box.")


@_check
def TEST_BOX_CODING(encode, decode):
    """``encode(anchors, boxes)`` and ``decode(anchors, deltas)`` against the reference, and their round trip."""
    __tracebackhide__ = True  # noqa: F841
    rng = np.random.default_rng(5)
    centres = rng.uniform(20, 100, size=(12, 2))
    sizes = rng.uniform(8, 60, size=(12, 2))
    anchors = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1).astype(np.float32)
    shifts = rng.normal(0, 4, size=(12, 2))
    scales = np.exp(rng.normal(0, 0.3, size=(12, 2)))
    boxes = np.concatenate([centres + shifts - sizes * scales / 2, centres + shifts + sizes * scales / 2],
                           axis=1).astype(np.float32)
    found = _array(_call("encode(anchors, boxes)", encode, anchors, boxes), "encode's result")
    expected = np.asarray(ref_boxes.encode(anchors, boxes), np.float64)
    _expect(found.shape == expected.shape,
            f"encode(anchors, boxes) should return shape {expected.shape}, found {found.shape}.")
    if not _close(found, expected, atol=1e-4):
        variances = np.array(ref_boxes.BOX_VARIANCES)
        if _close(found, expected * variances, atol=1e-4):
            raise AssertionError("encode forgets the variances: divide [dx, dy, dw, dh] by BOX_VARIANCES "
                                 "(0.1, 0.1, 0.2, 0.2).")
        if _close(found, expected[:, [1, 0, 3, 2]], atol=1e-4):
            raise AssertionError("encode has x and y swapped: the order is [dx, dy, dw, dh] with x along the width.")
        if _close(found[:, :2], expected[:, :2], atol=1e-4):
            raise AssertionError("encode's size deltas differ: dw = log(w / w_a) / 0.2 and dh = log(h / h_a) / 0.2.")
        raise AssertionError("encode differs from the reference: work on centres and sizes, dx = (x − x_a) / w_a / "
                             "0.1, dy = (y − y_a) / h_a / 0.1, dw = log(w / w_a) / 0.2, dh = log(h / h_a) / 0.2.")
    deltas = rng.normal(0, 1.0, size=(12, 4)).astype(np.float32)
    found = _array(_call("decode(anchors, deltas)", decode, anchors, deltas), "decode's result")
    expected = np.asarray(ref_boxes.decode(anchors, deltas), np.float64)
    _expect(found.shape == expected.shape,
            f"decode(anchors, deltas) should return shape {expected.shape}, found {found.shape}.")
    if not _close(found, expected, atol=1e-3):
        wrong = ref_boxes.decode(anchors, deltas / np.array(ref_boxes.BOX_VARIANCES, np.float32)).numpy()
        if _close(found, wrong, atol=1e-3):
            raise AssertionError("decode forgets the variances: multiply the deltas by BOX_VARIANCES before using them.")
        raise AssertionError("decode differs from the reference; it must invert encode: x = x_a + 0.1 · dx · w_a, "
                             "w = w_a · exp(0.2 · dw), then convert centres and sizes back to corners.")
    round_trip = _array(_call("decode(anchors, encode(anchors, boxes))", lambda: decode(anchors, encode(anchors, boxes))),
                        "the round trip")
    _expect(_close(round_trip, boxes, atol=1e-3), "decode(anchors, encode(anchors, boxes)) should give the boxes back.")
    _passed("TEST_BOX_CODING passed: encode and decode match the reference (variances 0.1, 0.1, 0.2, 0.2) and "
            "invert each other.")


# --------------------------------------------------------------------------------------------------
# Stage 4: training and inference
# --------------------------------------------------------------------------------------------------

def _loss_case():
    """Two images × 40 anchors, 3 classes: positives, background and ignored anchors; image 2 has no positive."""
    rng = np.random.default_rng(6)
    num_anchors, num_classes = 40, 3
    labels = np.full((2, num_anchors), ref_matching.BACKGROUND, np.float32)
    labels[0, [1, 5, 9, 20]] = [0, 2, 1, 2]
    labels[0, [2, 3, 30]] = ref_matching.IGNORE
    labels[1, [4, 7]] = ref_matching.IGNORE
    box_targets = rng.normal(0, 1, size=(2, num_anchors, 4)).astype(np.float32)
    box_targets[labels < 0] = 0.0
    targets = np.concatenate([box_targets, labels[..., None]], axis=-1)
    predictions = rng.normal(0, 2, size=(2, num_anchors, 4 + num_classes)).astype(np.float32)
    return targets, predictions, num_classes


def _loss_variants(targets, predictions, num_classes):
    labels = targets[..., 4]
    positive, ignored = labels >= 0, labels == ref_matching.IGNORE
    one_hot = np.asarray(tf.one_hot(np.where(positive, labels, -1).astype(np.int32), num_classes))
    focal = np.asarray(ref_losses.sigmoid_focal_loss(one_hot, predictions[..., 4:]))
    smooth = np.asarray(ref_losses.smooth_l1_loss(targets[..., :4], predictions[..., :4])).sum(-1)
    num_positive = np.maximum(positive.sum(-1), 1)
    counted_focal = np.where(ignored[..., None], 0.0, focal).sum((-2, -1))
    box = np.where(positive, smooth, 0.0).sum(-1)
    num_anchors = labels.shape[1]
    return {
        "reference": (counted_focal / num_positive, box / num_positive),
        "mean": ((counted_focal / num_anchors, box / num_anchors),
                 "the losses are divided by the number of anchors; the paper divides the sums by the number of "
                 "positive anchors (at least 1)."),
        "ignored": ((focal.sum((-2, -1)) / num_positive, box / num_positive),
                    "ignored anchors (label −2) contribute to the classification loss; leave them out."),
        "box_all": ((counted_focal / num_positive, np.where(ignored, 0, smooth).sum(-1) / num_positive),
                    "the box loss covers non-positive anchors; only positive anchors have box targets."),
        "box_all_anchors": ((counted_focal / num_positive, smooth.sum(-1) / num_positive),
                            "the box loss covers every anchor; only positive anchors have box targets."),
        "unnormalised": ((counted_focal, box),
                         "the sums are not normalised; divide each image's sums by its number of positive anchors."),
    }


@_check
def TEST_DETECTION_LOSS(detection_loss):
    """``detection_loss(targets, predictions, num_classes)`` → per-image (classification, box) losses."""
    __tracebackhide__ = True  # noqa: F841
    targets, predictions, num_classes = _loss_case()
    what = "detection_loss(targets, predictions, num_classes=3)"
    result = _call(what, detection_loss, targets, predictions, num_classes)
    _expect(isinstance(result, (tuple, list)) and len(result) == 2,
            f"{what} should return (classification_loss, box_loss), found {_describe(result)}.")
    classification = _array(result[0], "the classification loss")
    box = _array(result[1], "the box loss")
    _expect(classification.shape == (2,) and box.shape == (2,),
            f"{what} should return one value per image, shapes (2,) and (2,), found {classification.shape} and "
            f"{box.shape}; sum over anchors (and classes), not over the batch.")
    _expect(np.all(np.isfinite(classification)) and np.all(np.isfinite(box)),
            f"{what} is not finite for an image without positive anchors; divide by max(number of positives, 1).")
    variants = _loss_variants(targets, predictions, num_classes)
    expected_cls, expected_box = variants.pop("reference")
    if _close(classification, expected_cls, rtol=1e-3) and _close(box, expected_box, rtol=1e-3):
        _passed("TEST_DETECTION_LOSS passed: focal loss over non-ignored anchors + smooth L1 over positives, "
                "each divided by the number of positive anchors.")
        return
    for (alt_cls, alt_box), message in variants.values():
        if _close(classification, alt_cls, rtol=1e-3) and _close(box, alt_box, rtol=1e-3):
            raise AssertionError(f"{what} differs from the reference: {message}")
    if not _close(classification, expected_cls, rtol=1e-3):
        raise AssertionError(f"{what}: the classification loss is {np.round(classification, 3).tolist()}, expected "
                             f"{np.round(expected_cls, 3).tolist()}; sum the focal loss of non-ignored anchors over "
                             "the one-hot labels (background = all zeros) using logits predictions[..., 4:].")
    raise AssertionError(f"{what}: the box loss is {np.round(box, 3).tolist()}, expected "
                         f"{np.round(expected_box, 3).tolist()}; sum smooth L1 of predictions[..., :4] against "
                         "targets[..., :4] over positive anchors.")


def _logit(p):
    return float(np.log(p / (1 - p)))


def _decode_case():
    """Predictions for one 64×64 image, 3 classes, built so that each rule of the inference matters."""
    height = width = 64
    anchors = ref_anchors.generate_anchors(height, width)
    counts = ref_anchors.anchors_per_level(height, width)
    predictions = np.zeros((1, len(anchors), 7), np.float32)
    predictions[..., 4:] = -12.0

    def at(level, row, col, anchor):
        columns = int(math.ceil(width / 2 ** (level + 3)))
        return sum(counts[:level]) + (row * columns + col) * 9 + anchor

    first, second = at(0, 3, 3, 4), at(0, 3, 3, 5)  # same place, scales 2^(1/3) and 2^(2/3): IoU ≈ 0.63
    predictions[0, first, 4 + 0] = _logit(0.95)
    predictions[0, second, 4 + 0] = _logit(0.80)  # same class, overlapping: suppressed by NMS
    predictions[0, second, 4 + 1] = _logit(0.70)  # other class, same box: kept (NMS is per class)
    predictions[0, at(0, 0, 7, 4), 4 + 2] = _logit(0.04)  # below the 0.05 threshold
    far = at(1, 0, 0, 4)
    predictions[0, far, :4] = [1.0, -1.0, 0.5, -0.5]  # decoded box differs from its anchor
    predictions[0, far, 4 + 2] = _logit(0.60)
    # Top-k per level: four separated class-2 candidates on P3 and one on P4.
    top_k_case = np.copy(predictions[..., :])
    top_k_case[..., 4:] = -12.0
    for score, (row, col) in zip((0.9, 0.85, 0.8, 0.75), ((0, 0), (0, 7), (7, 0), (7, 7))):
        top_k_case[0, at(0, row, col, 4), 4 + 2] = _logit(score)
    top_k_case[0, at(1, 2, 2, 4), 4 + 2] = _logit(0.5)
    return height, width, predictions, top_k_case


def _detections(result, what):
    """``(boxes, scores, classes, num_detections)`` as numpy arrays from a Detections-like result."""
    __tracebackhide__ = True  # noqa: F841
    if all(hasattr(result, name) for name in ("boxes", "scores", "classes", "num_detections")):
        parts = (result.boxes, result.scores, result.classes, result.num_detections)
    elif isinstance(result, (tuple, list)) and len(result) == 4:
        parts = tuple(result)
    else:
        raise AssertionError(f"{what} should return Detections(boxes, scores, classes, num_detections), found "
                             f"{_describe(result)}.")
    names = ("boxes", "scores", "classes", "num_detections")
    return [_array(part, f"Detections.{name}") for part, name in zip(parts, names)]


def _detection_list(parts, image=0):
    boxes, scores, classes, counts = parts
    n = int(counts[image])
    order = np.argsort(-scores[image, :n], kind="stable")
    return boxes[image, :n][order], scores[image, :n][order], classes[image, :n][order].astype(int)


@_check
def TEST_DECODE(decode_detections):
    """Inference: sigmoid scores, 0.05 threshold, top-k per level, decoding and class-wise NMS."""
    __tracebackhide__ = True  # noqa: F841
    height, width, predictions, top_k_case = _decode_case()
    what = "decode_detections(predictions, 64, 64)"
    found = _detection_list(_detections(_call(what, decode_detections, predictions, height, width), what))
    expected = _detection_list([np.asarray(x) for x in ref_postprocess.decode_detections(predictions, height, width)])
    found_boxes, found_scores, found_classes = found
    boxes, scores, classes = expected
    if len(found_scores) != len(scores) or not np.array_equal(found_classes, classes):
        if np.any((found_scores < ref_postprocess.SCORE_THRESHOLD) & (found_scores > 0)):
            raise AssertionError(f"{what} keeps a detection scoring below 0.05; drop scores under score_threshold.")
        if len(found_scores) > len(scores) and np.sum(found_classes == 0) > 1:
            raise AssertionError(f"{what} keeps two heavily overlapping boxes of the same class; apply non-maximum "
                                 "suppression with IoU 0.5.")
        if len(found_scores) < len(scores) and 1 not in found_classes:
            raise AssertionError(f"{what} suppressed a class-1 box because it overlaps a class-0 box; NMS must run "
                                 "per class (class-wise NMS), not across classes.")
        raise AssertionError(f"{what} should give {len(scores)} detections with classes {classes.tolist()}, found "
                             f"{len(found_scores)} with classes {found_classes.tolist()}.")
    if not _close(found_scores, scores, atol=1e-4):
        raise AssertionError(f"{what}: the scores should be sigmoid(logit) ({np.round(scores, 2).tolist()}), found "
                             f"{np.round(found_scores, 2).tolist()}.")
    if not _close(found_boxes, boxes, atol=1e-2):
        raise AssertionError(f"{what}: the boxes differ; decode the predicted deltas relative to their anchors "
                             "(retinanet.boxes.decode) and clip them to the image.")
    what = "decode_detections(predictions, 64, 64, top_k_per_level=2)"
    found = _detection_list(_detections(_call(what, decode_detections, top_k_case, height, width, top_k_per_level=2),
                                        what))
    expected = _detection_list([np.asarray(x) for x in ref_postprocess.decode_detections(
        top_k_case, height, width, top_k_per_level=2)])
    if len(found[1]) != len(expected[1]):
        cause = ("you kept the top k over all levels together; keep the top k candidates of each level separately"
                 if len(found[1]) == 2 else "top_k_per_level is not applied per pyramid level")
        raise AssertionError(f"{what} should keep the 2 best of P3's four candidates plus P4's one (3 detections), "
                             f"found {len(found[1])}: {cause}.")
    what = "decode_detections(predictions, 64, 64, max_detections=2)"
    found = _detections(_call(what, decode_detections, predictions, height, width, max_detections=2), what)
    _expect(int(found[3][0]) == 2 and found[0].shape[1] == 2,
            f"{what} should return at most 2 detections per image (boxes of shape (1, 2, 4)), found "
            f"num_detections {int(found[3][0])} and boxes of shape {found[0].shape}.")
    _passed("TEST_DECODE passed: sigmoid scores, 0.05 threshold, top-k per level, decoding and class-wise NMS.")
