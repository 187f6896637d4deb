"""Stage 1, exercise 3, the subnets: ``build_head(output_filters, bias_initializer=...)`` (TEST_HEAD_MODEL).

Lin et al., Sec. 4 and Fig. 3: two subnets of four 3×3/256 ReLU convolutions and an output convolution,
shared by every level, predict K·A class logits and 4·A box deltas, initialised with σ = 0.01 and, for the
classification subnet's output, the prior bias b = −log((1 − π)/π) (Sec. 4.1). The structure checks
(:func:`check_head_structure`, :func:`conv_layers`, :func:`bias_of`) also serve the whole model's check
(:mod:`course_checks.model`).
"""

import functools

import numpy as np

from retinanet._tf import keras
from retinanet.anchors import ANCHORS_PER_LOCATION
from retinanet.fpn import FPN_CHANNELS
from retinanet.heads import HEAD_DEPTH, KERNEL_STDDEV, build_head as reference_head, prior_bias

from course_checks.harness import (Cause, as_array, call_learner, check, close, describe, expect, fail, passed,
                                   random_generator)


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
HEAD_CONV_REUSED = Cause(
    "head.conv_reused",
    "{what} applies one Conv2D layer several times ({found:,} parameters instead of {expected:,}): the {depth} "
    "hidden convolutions share their weights; create a new keras.layers.Conv2D for each of them.")
HEAD_CAPPED_RELU = Cause(
    "head.capped_relu",
    "The hidden activations of {what} are capped at {cap:g} (ReLU(max_value={cap:g}) or relu6); the paper's "
    "subnets use the plain ReLU, unbounded above: keras.layers.ReLU() or activation='relu'.")
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


def _reuses_a_layer(head, convs):
    """Whether one convolution layer is applied several times: listed more than once (a Sequential), or called
    at several places of a functional graph (its config's inbound nodes)."""
    if sum(int(layer.count_params()) for layer in convs) > int(head.count_params()):
        return True
    try:
        config = head.get_config()
        entries = config.get("layers", []) if isinstance(config, dict) else []
        return any(isinstance(entry, dict) and len(entry.get("inbound_nodes") or []) > 1 for entry in entries)
    except Exception:  # noqa: BLE001 (a model without a config: nothing to read)
        return False


def check_head_structure(head, output_filters, what):
    """The layers of a subnet: its input, four 3×3/256 hidden convolutions and a 3×3 output convolution."""
    expect(isinstance(head, keras.Model), HEAD_NOT_A_MODEL, what=what, found=describe(head))
    expect(_input_shape(head) == (None, None, None, FPN_CHANNELS), HEAD_INPUT, what=what, found=_input_shape(head))
    convs = conv_layers(head)
    if _reuses_a_layer(head, convs):
        expected = HEAD_DEPTH * (9 * FPN_CHANNELS * FPN_CHANNELS + FPN_CHANNELS) + \
            9 * FPN_CHANNELS * output_filters + output_filters
        fail(HEAD_CONV_REUSED, what=what, found=int(head.count_params()), expected=expected)
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
    convs = conv_layers(head)
    for index, layer in enumerate(convs):
        kernel = np.asarray(layer.kernel)
        mean, std = float(kernel.mean()), float(kernel.std())
        expect(abs(std - KERNEL_STDDEV) < 0.15 * KERNEL_STDDEV and abs(mean) < 0.2 * KERNEL_STDDEV, HEAD_KERNEL_INIT,
               index=index + 1, what=what, mean=mean, std=std)
    for index, layer in enumerate(convs[:-1]):
        bias = bias_of(layer)
        expect(np.allclose(bias, 0.0), HEAD_HIDDEN_BIAS, index=index + 1, what=what, found=float(bias.mean()))


def bias_of(layer):
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


def _head_forward(weights, features, relu_after, output_activation=None, cap=None):
    """The subnet computed from its conv weights: ReLU after the hidden convs flagged in ``relu_after``
    (capped at ``cap`` if given)."""
    x = keras.ops.convert_to_tensor(features)
    for index in range(0, len(weights), 2):
        x = keras.ops.conv(x, weights[index], padding="same") + weights[index + 1]
        hidden = index // 2 < len(relu_after)
        if hidden and relu_after[index // 2]:
            x = keras.ops.relu(x) if cap is None else keras.ops.clip(x, 0.0, cap)
    return np.asarray(output_activation(x) if output_activation else x)


FEATURE_SCALE = 20.0
"""The spread of the check's input features: with He-scaled weights the hidden activations reach well past 6
(≈ 100), so a capped activation (ReLU6) shows; at σ = 1 they stayed below 5."""

CAPS = (6.0, 1.0)
"""Caps tried when the head's output differs: ReLU6 (MobileNet's) and hard-sigmoid-like clipping at 1."""


def _head_variants():
    """The subnet with one mistake made, as (cause, details, forward(weights, features))."""
    all_relu = (True,) * HEAD_DEPTH
    rows = [(HEAD_NO_RELU, {}, lambda w, f: _head_forward(w, f, (False,) * HEAD_DEPTH))]
    for index in range(HEAD_DEPTH):
        mask = tuple(i != index for i in range(HEAD_DEPTH))
        rows.append((HEAD_RELU_MISSING, {"index": index + 1}, lambda w, f, m=mask: _head_forward(w, f, m)))
    rows.append((HEAD_RELU_ON_OUTPUT, {}, lambda w, f: _head_forward(w, f, all_relu, keras.ops.relu)))
    rows.append((HEAD_SIGMOID_ON_OUTPUT, {}, lambda w, f: _head_forward(w, f, all_relu, keras.ops.sigmoid)))
    for cap in CAPS:
        rows.append((HEAD_CAPPED_RELU, {"cap": cap}, lambda w, f, c=cap: _head_forward(w, f, all_relu, cap=c)))
    return rows


def _check_head_behaviour(head, output_filters, what):
    """With the same spread-out weights, the learner's subnet and the reference compute the same map."""
    reference = _reference_head(output_filters)
    weights = _spread_weights(reference)
    reference.set_weights(weights)
    for layer, kernel, bias in zip(conv_layers(head), weights[::2], weights[1::2]):
        layer.kernel.assign(kernel)
        if layer.use_bias:
            layer.bias.assign(bias)
    features = random_generator(2).normal(0.0, FEATURE_SCALE, size=(2, 6, 5, FPN_CHANNELS)).astype(np.float32)
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
    output_filters = ANCHORS_PER_LOCATION * HEAD_TEST_CLASSES
    what = f"build_head({output_filters})"
    head = call_learner(what, build_head, output_filters)
    check_head_structure(head, output_filters, what)
    _check_head_initialisation(head, what)
    output_bias = bias_of(conv_layers(head)[-1])
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
    found_bias = bias_of(convs[-1])
    expect(np.allclose(found_bias, prior, atol=1e-4), HEAD_IGNORES_BIAS_INITIALIZER, expected=prior,
           found=float(found_bias.mean()))
    for index, layer in enumerate(convs[:-1]):
        expect(np.allclose(bias_of(layer), 0.0), HEAD_BIAS_INITIALIZER_ON_HIDDEN, index=index + 1)

    _check_head_behaviour(head, output_filters, what)
    passed(f"TEST_HEAD_MODEL passed: {HEAD_DEPTH} × (3×3 conv, {FPN_CHANNELS}, ReLU) + 3×3 conv, "
           f"σ = {KERNEL_STDDEV:g} init, {head.count_params():,} parameters for {output_filters} outputs.")
