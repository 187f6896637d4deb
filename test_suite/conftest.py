"""Shared fixtures of the test suite (append new fixtures at the end; do not reorder).

Building ResNet50 costs seconds on a 2-core CPU, so the few tests that need it share session-scoped
models; everything else injects one of the tiny backbones below, which have ResNet's interface (a
``keras.Model`` from ``(batch, H, W, 3)`` images to ``[C3, C4, C5]`` at strides 8, 16, 32) and build in
milliseconds.

Two legs run the suite (``make test``): the TensorFlow leg and the JAX leg (``KERAS_BACKEND=jax``, an
environment without TensorFlow, which fails if anything imported TensorFlow). A test module says which
legs it runs on with a module-level ``pytestmark = pytest.mark.backends("tensorflow", "jax")``; without
one it runs on TensorFlow alone (the course, the checks, the notebooks, the grader, the browser).
``test_suite/project/test_layers.py`` fails when a module that needs nothing of TensorFlow lacks the mark.
"""

import ast
import os
import pathlib
import re
import sys

import numpy as np
import pytest

from retinanet._keras import BACKEND, keras

BACKENDS_MARK = re.compile(r"^pytestmark = pytest\.mark\.backends\((?P<names>[^)]*)\)", re.MULTILINE)


def module_backends(path):
    """The backends the test module at ``path`` runs on, read from its source: on the JAX leg a
    TensorFlow-only module cannot even be imported, so the choice is made before collecting it."""
    match = BACKENDS_MARK.search(pathlib.Path(path).read_text(encoding="utf-8"))
    return set(ast.literal_eval(f"({match['names']},)")) if match else {"tensorflow"}


def pytest_configure(config):
    config.addinivalue_line("markers", "backends(*names): the Keras backends a test module runs on "
                            "(default: tensorflow alone); see test_suite/conftest.py")


def pytest_ignore_collect(collection_path, config):
    """Collect each module on the legs its ``backends`` mark names."""
    name = collection_path.name
    if collection_path.name == "hub" and collection_path.parent.name == "test_suite":
        # The JupyterHub end-to-end test creates unix users: `make test-hub` runs it (COURSE_HUB_TEST=1), as a
        # step of its own in .ci/run; `make test` does not collect it at all.
        return os.environ.get("COURSE_HUB_TEST") != "1"
    if not (name.startswith("test_") and name.endswith(".py")):
        return None
    return BACKEND not in module_backends(collection_path)


def pytest_collection_modifyitems(config, items):
    """A test's own ``backends`` mark narrows its module's: on the other legs the test is deselected (not
    run, and not reported as a skip)."""
    keep, drop = [], []
    for item in items:
        closest = next(item.iter_markers("backends"), None)  # the test's own mark before its module's
        (keep if closest is None or BACKEND in closest.args else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config):
    return f"Keras backend: {BACKEND} (test modules marked backends(..., {BACKEND!r}, ...))"


def pytest_sessionfinish(session, exitstatus):
    """The JAX leg proves the backend-neutral path never imports TensorFlow."""
    if BACKEND != "tensorflow" and "tensorflow" in sys.modules:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nFAILED: TensorFlow was imported during the {BACKEND} leg", file=sys.stderr)


REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def make_probe_backbone(channels=(8, 16, 32), seed=0):
    """A fixed stand-in for ResNet50 whose C3, C4 and C5 each see ONE colour channel of the image.

    C3 (stride 8) is computed from the red channel only, C4 (stride 16) from green, C5 (stride 32) from
    blue: a test changes C3 and C4 while C5 stays fixed by editing the red and green channels.
    """
    images = keras.Input(shape=(None, None, 3))
    features = []
    for channel, (stride, filters) in enumerate(zip((8, 16, 32), channels)):
        x = keras.layers.Lambda(lambda t, c=channel: t[..., c : c + 1])(images)
        x = keras.layers.AveragePooling2D(stride)(x)
        x = keras.layers.Conv2D(
            filters,
            3,
            padding="same",
            kernel_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=seed + channel),
            bias_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=seed + 10 + channel),
        )(x)
        features.append(x)
    return keras.Model(images, features, name="probe_backbone")


def make_tiny_backbone(widths=(16, 32, 64)):
    """A small trainable convolutional backbone: C3, C4, C5 with ``widths`` channels at strides 8, 16, 32."""
    images = keras.Input(shape=(None, None, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(images)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    features = []
    for filters in widths:
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        features.append(x)
    return keras.Model(images, features, name="tiny_backbone")


def conv2d_same(x, kernel, bias, stride=1):
    """Independent NumPy oracle of a 'same'-padded 2-D convolution as TensorFlow defines it.

    ``x`` (H, W, Cin), ``kernel`` (k, k, Cin, Cout). TensorFlow pads ``max((out − 1)·s + k − in, 0)`` in
    total, the smaller half before and the larger half after.
    """
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    k = kernel.shape[0]
    padded_sides, outs = [], []
    for size in x.shape[:2]:
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        padded_sides.append((total // 2, total - total // 2))
        outs.append(out)
    xp = np.pad(x, (padded_sides[0], padded_sides[1], (0, 0)))
    result = np.zeros((outs[0], outs[1], kernel.shape[-1]))
    for dy in range(k):
        for dx in range(k):
            window = xp[dy : dy + stride * (outs[0] - 1) + 1 : stride, dx : dx + stride * (outs[1] - 1) + 1 : stride]
            result += window @ kernel[dy, dx]
    return result + np.asarray(bias, np.float64)


@pytest.fixture(scope="session")
def repo_root():
    """The repository's top-level directory."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def resnet_backbone_default():
    """``get_backbone()`` with its default 128×128×3 input, random weights (built once per session)."""
    from retinanet.backbone import get_backbone

    return get_backbone(weights=None)


@pytest.fixture(scope="session")
def resnet_backbone_any_size():
    """``get_backbone(input_shape=(None, None, 3))``, random weights (built once per session)."""
    from retinanet.backbone import get_backbone

    return get_backbone(input_shape=(None, None, 3), weights=None)


@pytest.fixture
def probe_backbone():
    """A fresh :func:`make_probe_backbone`."""
    return make_probe_backbone()


@pytest.fixture
def rng():
    """A seeded NumPy generator, so every test sees the same random inputs."""
    return np.random.default_rng(1234)

