"""Data parallelism: several devices of one process, and several processes or machines of one job.

On TensorFlow (the course's backend) several GPUs train under ``tf.distribute.MirroredStrategy``. On JAX
several devices train data-parallel with ``keras.distribution.DataParallel``, and several processes or
machines join with ``keras.distribution.initialize`` (see :func:`join_processes`).
"""

import os

from retinanet._keras import BACKEND, accelerators, keras


def join_processes():
    """Join a multi-process job when ``KERAS_DISTRIBUTION_NUM_PROCESSES`` says there is one (JAX backend).

    Each process runs the same ``train`` command with ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` (the
    coordinator's ``host:port``), ``KERAS_DISTRIBUTION_NUM_PROCESSES`` and ``KERAS_DISTRIBUTION_PROCESS_ID``
    set. Returns ``(process_index, process_count)``.
    """
    count = int(os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES", "1"))
    if count <= 1:
        return 0, 1
    if BACKEND != "jax":
        raise RuntimeError(
            "multi-process training needs the JAX backend (KERAS_BACKEND=jax): Keras 3's fit() does not run "
            "under TensorFlow's MultiWorkerMirroredStrategy"
        )
    import jax

    if not jax.distributed.is_initialized():
        keras.distribution.initialize()
    return jax.process_index(), jax.process_count()


def distribution_scope(process_count):
    """Set up data parallelism over every device of the job; returns the context to build the model in and
    the number of replicas that share a global batch."""
    import contextlib

    if BACKEND == "jax":
        devices = keras.distribution.list_devices()
        if len(devices) > 1 or process_count > 1:
            keras.distribution.set_distribution(keras.distribution.DataParallel(auto_shard_dataset=False))
        return contextlib.nullcontext(), len(devices)
    if BACKEND == "tensorflow" and len(accelerators()) > 1:
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
        return strategy.scope(), strategy.num_replicas_in_sync
    return contextlib.nullcontext(), 1
