"""What every check shares: running the learner's code safely, comparing arrays, the table of causes, and the
inputs several checks use (random images, a small stand-in backbone).

A check compares the learner's code with the reference package on the same inputs. When they differ it
raises ``AssertionError`` with one message: what was expected, what was found, and the cause. A cause is
claimed only when it is what differs: each diagnosable mistake is a :class:`Cause`, a row of its check's
table, usually tried as a *variant* (the reference computation with that one mistake made) whose result
must equal the learner's. Every cause is registered in :data:`CAUSES`, and the test suite runs, for each
row, a mutant in ``test_suite/checks/mistakes/`` that must fail with exactly that cause.

Numbers of the paper appear in messages through :data:`PAPER` (the reference constants), never as literals.

A failing check's traceback leads to the learner's code, not into the checks: :func:`check` takes the frames of
this package out of it (:func:`learner_frames`), so no function of the checks needs a ``__tracebackhide__``.
"""

import functools
import re
import types
import warnings
from dataclasses import dataclass

import numpy as np

from retinanet._tf import keras
from retinanet.anchors import ANCHORS_PER_LOCATION, ASPECT_RATIOS
from retinanet.backbone import BACKBONE_OUTPUT_LAYERS
from retinanet.boxes import BOX_VARIANCES
from retinanet.fpn import FPN_CHANNELS
from retinanet.heads import HEAD_DEPTH, KERNEL_STDDEV, PRIOR_PROBABILITY, prior_bias
from retinanet.losses import FOCAL_ALPHA, FOCAL_GAMMA
from retinanet.matching import BACKGROUND, IGNORE, NEGATIVE_IOU, POSITIVE_IOU
from retinanet.postprocess import NMS_IOU_THRESHOLD, SCORE_THRESHOLD

from course_checks.remote import type_name


def _numbers(values):
    return ", ".join(f"{value:g}" for value in values)


PAPER = {
    "channels": FPN_CHANNELS,
    "depth": HEAD_DEPTH,
    "sigma": f"{KERNEL_STDDEV:g}",
    "pi": f"{PRIOR_PROBABILITY:g}",
    "prior": f"{prior_bias():.3f}",
    "anchors": ANCHORS_PER_LOCATION,
    "box_filters": ANCHORS_PER_LOCATION * 4,
    "ratios": _numbers(ASPECT_RATIOS),
    "variances": _numbers(BOX_VARIANCES),
    "variance_size": f"{BOX_VARIANCES[2]:g}",
    "alpha": f"{FOCAL_ALPHA:g}",
    "gamma": f"{FOCAL_GAMMA:g}",
    "positive_iou": f"{POSITIVE_IOU:g}",
    "negative_iou": f"{NEGATIVE_IOU:g}",
    "background": f"{BACKGROUND:g}",
    "ignore": f"{IGNORE:g}",
    "score_threshold": f"{SCORE_THRESHOLD:g}",
    "nms_iou": f"{NMS_IOU_THRESHOLD:g}",
    "c3_layer": BACKBONE_OUTPUT_LAYERS[0],
    "c4_layer": BACKBONE_OUTPUT_LAYERS[1],
    "c5_layer": BACKBONE_OUTPUT_LAYERS[2],
}
"""The paper's numbers, from the reference constants, by the names message templates use."""


CAUSES = {}
"""Every registered cause by key; the suite checks that a mutant triggers each one."""


@dataclass(frozen=True)
class Cause:
    """One failure message of a check: ``key`` (``"check.name"``) and a ``str.format`` template.

    The template may use the names of :data:`PAPER` and the details passed to :func:`fail`.
    """

    key: str
    message: str

    def __post_init__(self):
        if self.key in CAUSES:
            raise ValueError(f"cause {self.key!r} is defined twice")
        CAUSES[self.key] = self

    def text(self, **details):
        return self.message.format(**PAPER, **details)


def fail(cause, **details):
    """Raise the learner-facing ``AssertionError`` of ``cause``; ``error.cause`` holds its key."""
    error = AssertionError(cause.text(**details))
    error.cause = cause.key
    raise error


def expect(condition, cause, **details):
    if not condition:
        fail(cause, **details)


@dataclass(frozen=True)
class Variant:
    """A table row: the reference computation with one mistake made (``compute``) and its cause."""

    cause: Cause
    compute: object


def first_match(found, variants, matches, *arguments):
    """The first row of ``variants`` whose ``compute(*arguments)`` ``matches`` what was found, or ``None``."""
    for variant in variants:
        with np.errstate(all="ignore"):
            expected = variant.compute(*arguments)
        if matches(found, expected):
            return variant
    return None


def diagnose(found, variants, matches, *arguments, **details):
    """Raise the cause of the first matching variant; return quietly if none matches."""
    variant = first_match(found, variants, matches, *arguments)
    if variant is not None:
        fail(variant.cause, **details)


def check(function):
    """A learner-facing check: quiet (no warnings on stderr, which nbgrader counts as a failure), returns None,
    and fails with a traceback that holds none of the checks' frames (:func:`learner_frames`)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        __tracebackhide__ = True  # the one frame of ours left: IPython and pytest read it from the frame's locals
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                function(*args, **kwargs)
        except AssertionError as failure:  # the check's message, behind it only the learner's frames
            raise failure.with_traceback(learner_frames(failure.__traceback__))
        except Exception as error:  # noqa: BLE001 (anything else the learner's answer made happen)
            if _passes_through(error):
                raise
            failure = AssertionError(
                f"{function.__name__} could not read your answer: using what your code returned raised "
                f"{type(error).__name__}: {first_line(error)}. Check the types and shapes it returns against "
                "the exercise's docstring.")
            failure.cause = "harness.unreadable"
            raise failure.with_traceback(learner_frames(error.__traceback__)) from None

    return wrapper


def _passes_through(error):
    """Errors that are not about the learner's answer: the grader's own (a kernel that timed out or sent
    nothing usable) keep their class, so that the grade says what happened."""
    from course_checks.remote import ProbeFailed  # noqa: PLC0415
    return isinstance(error, ProbeFailed) or type(error).__name__ == "ProbeTimeout"


_PACKAGE = __name__.partition(".")[0]


def learner_frames(traceback):
    """``traceback`` without the frames of the checks' own code (this package's modules).

    What a check raises is one message; its frames would only lead the learner into the checker. What is left
    are the frames of the learner's own code (and of the libraries it called) when that code raised the
    AssertionError itself. IPython reads ``__tracebackhide__`` from a frame's locals only, so hiding each
    frame would take a line in every function of the checks; cutting them out works for IPython and pytest
    alike. Other exceptions (a crash of the checks themselves) keep every frame.
    """
    kept = []
    while traceback is not None:
        if traceback.tb_frame.f_globals.get("__name__", "").partition(".")[0] != _PACKAGE:
            kept.append(traceback)
        traceback = traceback.tb_next
    pruned = None
    for entry in reversed(kept):
        pruned = types.TracebackType(pruned, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return pruned


def call_learner(what, function, *args, **kwargs):
    """Call the learner's code; turn any crash into a one-sentence AssertionError (no traceback into us)."""
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        raise AssertionError(
            f"{what} raised NotImplementedError: replace the `raise NotImplementedError()` line with your code."
        ) from None
    except AssertionError:
        raise
    except Exception as error:  # the learner's code crashed: report it briefly, without our frames
        raise AssertionError(f"{what} raised {type(error).__name__}: {first_line(error)}") from None


_NOISE = re.compile(r"\x1b\[[0-9;]*m|\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\].*$")
"""Terminal colours, TensorFlow's ``{{function_node …}}`` prefix and ``[Op:…] name: …`` suffix."""


def first_line(error, limit=220):
    """The first informative line of an error message, without Keras's "Exception encountered when ..."
    line and TensorFlow's decorations."""
    lines = [_NOISE.sub("", line).strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line and not line.startswith("Exception encountered")]
    text = lines[0] if lines else "(no message)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(value):
    """``a Tensor of shape (2, 3)``, ``a list``, ``None``: how a learner's return value is named in messages."""
    if value is None:
        return "None"
    shape = getattr(value, "shape", None)
    return f"a {type_name(value)}" + (f" of shape {tuple(shape)}" if shape is not None else "")


def as_array(value, what):
    """``value`` as a float64 NumPy array, or a clear AssertionError."""
    if value is None:
        raise AssertionError(f"{what} is None: did you leave a `None` placeholder or forget `return`?")
    try:
        return np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)
    except Exception:
        raise AssertionError(f"{what} should be a tensor or array, but it is {describe(value)}.") from None


def close(found, expected, rtol=1e-4, atol=1e-5):
    """Same shape, finite, and equal within ``rtol`` and ``atol`` × the expected values' magnitude (≥ 1)."""
    found, expected = np.asarray(found, np.float64), np.asarray(expected, np.float64)
    if found.shape != expected.shape or not np.all(np.isfinite(found)):
        return False
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    return bool(np.allclose(found, expected, rtol=rtol, atol=atol * scale))


def passed(message):
    """The one line a passing check prints."""
    print(message)


RUN_SEED = None
"""``None`` in a notebook: every check draws the same inputs every time, so a message can be reproduced.
While grading, the judge draws a fresh value per grading run (:func:`draw_inputs`), so that no answer can
be precomputed for the inputs a check will use."""


def draw_inputs(seed):
    """Make every check's random inputs depend on ``seed`` (the judge calls this once per grading run)."""
    global RUN_SEED
    RUN_SEED = seed


def random_generator(seed):
    """The NumPy generator for a check's inputs: ``seed`` alone in a notebook, with :data:`RUN_SEED` when grading."""
    return np.random.default_rng(seed if RUN_SEED is None else [seed, RUN_SEED])


def jittered(values, seed, scale):
    """``values`` in a notebook; while grading, each moved by a uniform draw in ±``scale`` (same dtype)."""
    if RUN_SEED is None:
        return values
    return (values + random_generator(seed).uniform(-scale, scale, size=np.shape(values))).astype(values.dtype)


def images(height, width, seed=0, batch=2):
    """A reproducible batch of random images; two by default, so that a batch size hard-coded to 1 shows."""
    return random_generator(seed).normal(0.0, 30.0, size=(batch, height, width, 3)).astype(np.float32)


SMALL_BACKBONE_CHANNELS = (8, 16, 32)
"""Channels of the stand-in backbone's C3, C4, C5: different counts reveal which map a layer was given."""


@functools.lru_cache(maxsize=None)
def small_backbone():
    """A 3-convolution stand-in for ResNet50 with C3, C4, C5 at strides 8, 16, 32 (8, 16, 32 channels).

    The pyramid's wiring does not depend on the backbone, so the FPN and whole-model checks use this to stay
    fast; its different channel counts also reveal which map each convolution was applied to. Each
    convolution is followed by BatchNormalization with moving statistics of its own (as ResNet50's are), so
    that a model run in training mode (the batch's statistics) shows: its output for an image changes with
    the other images of the batch.
    """
    inputs = keras.Input(shape=(None, None, 3))
    features, x = [], inputs
    # Per level: moving variances about those of each convolution's outputs on images(...) (so that inference
    # keeps its scale), and γ, β that give C3, C4, C5 activations of tens to hundreds, as ResNet's are.
    variances = ((1000.0, 4000.0), (5400.0, 22500.0), (43000.0, 180000.0))
    gammas, betas = ((30.0, 90.0), (60.0, 180.0), (120.0, 360.0)), (15.0, 30.0, 60.0)
    for index, (filters, strides) in enumerate(zip(SMALL_BACKBONE_CHANNELS, (8, 2, 2))):
        x = keras.layers.Conv2D(
            filters, 3, strides=strides, padding="same",
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=index),
            bias_initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=10 + index),
        )(x)
        x = keras.layers.BatchNormalization(
            beta_initializer=keras.initializers.RandomUniform(-betas[index], betas[index], seed=20 + index),
            gamma_initializer=keras.initializers.RandomUniform(*gammas[index], seed=30 + index),
            moving_mean_initializer=keras.initializers.RandomNormal(stddev=5.0, seed=40 + index),
            moving_variance_initializer=keras.initializers.RandomUniform(*variances[index], seed=50 + index),
        )(x)
        x = keras.layers.ReLU()(x)
        features.append(x)
    return keras.Model(inputs, features, name="small_test_backbone")
