"""What the backend-neutral tests need that Keras does not offer in one form for every backend: compiling
a function the way a training step is compiled, and gradients."""

from retinanet._keras import BACKEND, ops


def compiled(function):
    """``function`` compiled as Keras compiles a step: ``tf.function`` on TensorFlow, ``jax.jit`` on JAX."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    import jax

    return jax.jit(function)


def gradient_of_sum(function, x):
    """``(function(x), d sum(function(x)) / dx)`` as NumPy arrays."""
    x = ops.convert_to_tensor(x, dtype="float32")
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            value = function(x)
        return ops.convert_to_numpy(value), ops.convert_to_numpy(tape.gradient(value, x))
    import jax

    value, pullback = jax.vjp(function, x)
    return ops.convert_to_numpy(value), ops.convert_to_numpy(pullback(ops.ones_like(value))[0])
