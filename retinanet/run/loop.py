"""The training loop: one path for every Keras backend.

``Detector.fit()`` on :class:`retinanet.data.loader.TrainingBatches` (target assignment and the loss inside
the compiled step), or on TensorFlow a ``train_on_batch`` loop (:func:`run_steps`). On TensorFlow (the
course's backend, CPUs) the step is a ``tf.function``, XLA-compiled on a GPU; on JAX (accelerators) the
step is jitted and mixed precision is ``mixed_bfloat16`` (no loss scaling). Several devices or processes
train data-parallel (:mod:`retinanet.run.distribute`).

What the run trains comes from its recipe (:mod:`retinanet.run.recipes`); what it writes goes to its run
directory (:mod:`retinanet.run.run_dir`); what it shows while training, to :mod:`retinanet.run.progress`.
"""

import os

from retinanet._keras import BACKEND, keras, ops
from retinanet.data import DatasetError, load_coco
from retinanet.data.loader import ImageCache, TrainingBatches, max_objects
from retinanet.run.distribute import distribution_scope, join_processes
from retinanet.run.progress import TrainingLog, plot_loss_curves
from retinanet.run.recipes import build_detector, dtype_policy, make_optimizer, resolve_auto
from retinanet.run.run_dir import (
    RunError, latest_checkpoint, load_run_config, load_weights_of_run, read_history, save_checkpoint, save_config,
    save_weights, write_history,
)


def run_steps(detector, batches, first_step, log):
    """Train on every batch of ``batches`` (global steps ``first_step + 1`` on), reporting to ``log`` (a
    :class:`~retinanet.run.progress.TrainingLog`).

    JAX: ``fit()``, which dispatches each jitted step without waiting for the last one's numbers.
    TensorFlow: one ``train_on_batch`` per batch. ``fit()`` traces TensorFlow's step inside its loop over
    the input iterator, and on a CPU that graph runs slower than the same step traced on its own, which the
    loop avoids.
    """
    if BACKEND != "tensorflow":
        log.start_chunk(first_step, running_means=True)
        detector.fit(batches, epochs=1, verbose=0, callbacks=[log])
        return
    log.start_chunk(first_step, running_means=False)
    for index, (images, ground_truth) in enumerate(batches.prefetched()):
        log.on_train_batch_end(index, detector.train_on_batch(images, ground_truth, return_dict=True))
    log.on_train_end()


def train(config, resume=False, progress=True):
    """Train a RetinaNet as ``config`` says; returns the list of logged history rows (see
    :func:`train_detector`)."""
    return train_detector(config, resume, progress)[1]


def train_detector(config, resume=False, progress=True):
    """Train a RetinaNet as ``config`` says; returns ``(detector, history rows)``.

    With ``resume=True`` an existing run directory continues from its latest checkpoint (model, optimizer
    state and step counter, hence the learning-rate schedule and the data stream), so a killed run loses
    at most ``checkpoint_every`` steps. In a multi-process job every process returns its (identical)
    detector; only process 0 writes the run directory.
    """
    process_index, process_count = join_processes()
    chief = process_index == 0
    config = resolve_auto(config)
    if resume and os.path.isfile(os.path.join(config.run_dir, "config.json")):
        stored = load_run_config(config.run_dir)
        for name in ("image_size", "backbone", "head_channels", "annotations"):
            if getattr(stored, name) != getattr(config, name):
                flag = "--" + name.replace("_", "-")
                raise RunError(f"cannot resume {config.run_dir}: its config.json says {name}={getattr(stored, name)!r}, "
                               f"this command {getattr(config, name)!r}; resume with {flag} {getattr(stored, name)}, "
                               "or train into another --run-dir")
    elif latest_checkpoint(config.run_dir)[1]:
        raise FileExistsError(f"{config.run_dir} already holds a run: pass --resume to continue it, or choose "
                              "another --run-dir")
    dataset = load_coco(config.annotations, config.images)
    if not dataset.records:
        raise DatasetError(f"{config.annotations}: no images to train on")
    os.makedirs(os.path.join(config.run_dir, "checkpoints"), exist_ok=True)
    config.class_names, config.category_ids = dataset.class_names, dataset.category_ids
    config.max_boxes = max_objects(dataset.records)
    if chief:
        save_config(config, os.path.join(config.run_dir, "config.json"))

    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_dtype_policy(dtype_policy(config.mixed_precision))
    try:
        scope, replicas = distribution_scope(process_count)
        with scope:
            detector = build_detector(dataset.num_classes, config.image_size, config.backbone, config.backbone_weights,
                                      config.head_channels, config.head_init)
            optimizer, schedule = make_optimizer(config)
            detector.compile(optimizer=optimizer, jit_compile=config.xla == "on")
            optimizer.build(detector.trainable_variables)
        start_step, latest = latest_checkpoint(config.run_dir) if resume else (0, None)
        if latest:
            load_weights_of_run(detector, latest, config, config.run_dir)
            start_step = int(ops.convert_to_numpy(optimizer.iterations))
        history = read_history(os.path.join(config.run_dir, "history.csv"), start_step) if resume else []

        # One fit() per checkpoint interval: fit() hands the trained state back to the model when it
        # returns, so checkpoints are written between steps, never from inside a running step.
        local_batch = config.batch_size * replicas // process_count
        cache = ImageCache()
        log = TrainingLog(config, schedule, start_step, config.batch_size * replicas, history, chief, progress)
        step = start_step
        try:
            while step < config.steps:
                steps = min(config.checkpoint_every - step % config.checkpoint_every, config.steps - step)
                batches = TrainingBatches(
                    dataset.records, config.image_size, local_batch, steps=steps, first_step=step,
                    max_boxes=config.max_boxes, jitter=config.jitter, seed=config.seed,
                    process_index=process_index, process_count=process_count, workers=config.workers, cache=cache,
                )
                run_steps(detector, batches, step, log)
                step += steps
                save_checkpoint(detector, config.run_dir, step, chief)
                if chief:
                    write_history(os.path.join(config.run_dir, "history.csv"), history)
        finally:
            log.close()
        save_weights(detector.retinanet, os.path.join(config.run_dir, "model.weights.h5"), chief)
        if chief:
            write_history(os.path.join(config.run_dir, "history.csv"), history)
            if history:
                plot_loss_curves(history, os.path.join(config.run_dir, "loss_curves.png"))
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
        if BACKEND == "jax":
            keras.distribution.set_distribution(None)
    return detector, history
