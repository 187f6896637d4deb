"""Import TensorFlow quietly: what ``tests.py``'s checks, the package's TensorFlow-only edges and, through
:mod:`course` (``from course import keras, tf``), learners import.

TensorFlow 2.21 prints several INFO lines (CUDA stubs, oneDNN) to the process's stderr *before* its
logging is configured, so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence them. Those lines alarm learners and
make nbgrader score a test cell as failed, so TensorFlow is imported from here (also by
:mod:`retinanet._keras` on the TensorFlow backend): the first import runs with file descriptor 2 pointed
at ``/dev/null``. Errors still surface as Python exceptions. The backend-neutral core never imports this
module on another backend.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _import_tensorflow_quietly():
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    try:
        sys.stderr.flush()
        saved_fd = os.dup(2)
    except (OSError, ValueError):  # no usable stderr (some embedded interpreters)
        import tensorflow

        return tensorflow
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow
    finally:
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        os.close(devnull)
    tensorflow.get_logger().setLevel("ERROR")
    return tensorflow


tf = _import_tensorflow_quietly()

import keras  # noqa: E402  (after TensorFlow, so Keras picks the quiet, already-loaded backend)

__all__ = ["tf", "keras"]
