"""Keras 3 on the chosen backend, imported quietly: the one import of every backend-neutral module.

The reference core (anchors, boxes, matching, losses, FPN, heads, model, decoding, the training step)
speaks ``keras.ops`` only, so it runs on TensorFlow (the course's backend, and the default) and on JAX
(accelerators, where TensorFlow is absent). ``KERAS_BACKEND`` picks the backend before Keras loads; when
it is unset, TensorFlow if it is installed, else JAX. On TensorFlow the import goes through
:mod:`retinanet._tf`, which keeps TensorFlow's start-up lines off stderr.
"""

import importlib.util
import os
import sys

if "KERAS_BACKEND" not in os.environ:
    os.environ["KERAS_BACKEND"] = "tensorflow" if importlib.util.find_spec("tensorflow") else "jax"

if os.environ["KERAS_BACKEND"] == "tensorflow":
    from retinanet import _tf  # noqa: F401  (TensorFlow first, quietly; Keras then picks it up)

import keras  # noqa: E402
from keras import ops  # noqa: E402

BACKEND = keras.backend.backend()
"""The backend Keras runs on: ``"tensorflow"`` or ``"jax"`` (others are untested)."""


def concrete_value(tensor):
    """``tensor`` as a NumPy array when its values exist now, else ``None``.

    Values exist for NumPy data, eager TensorFlow tensors and JAX arrays; they do not inside a compiled
    function (a ``tf.function`` graph, a JAX trace) or for symbolic Keras tensors. Input checks that need
    values (a box with x2 < x1) run only when this returns an array.
    """
    if isinstance(tensor, keras.KerasTensor):
        return None
    if BACKEND == "tensorflow":
        tf = sys.modules["tensorflow"]
        if not tf.executing_eagerly() or tf.is_symbolic_tensor(tensor):
            return None
    elif BACKEND == "jax":
        import jax

        if isinstance(tensor, jax.core.Tracer):
            return None
    return ops.convert_to_numpy(tensor)


def accelerators():
    """Names of this process's GPUs (or TPUs) on the current backend; empty on a CPU-only machine."""
    if BACKEND == "tensorflow":
        return [device.name for device in sys.modules["tensorflow"].config.list_physical_devices("GPU")]
    if BACKEND == "jax":
        import jax

        return [str(device) for device in jax.local_devices() if device.platform != "cpu"]
    return []


__all__ = ["keras", "ops", "BACKEND", "concrete_value", "accelerators"]
