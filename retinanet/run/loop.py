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
import signal
import threading

from retinanet._keras import BACKEND, keras, ops
from retinanet.data import DatasetError, load_coco
from retinanet.data.loader import ImageCache, TrainingBatches, max_objects
from retinanet.run.distribute import distribution_scope, join_processes
from retinanet.run.progress import TrainingLog, plot_loss_curves
from retinanet.run.recipes import build_detector, dtype_policy, make_optimizer, resolve_auto
from retinanet.run.run_dir import (
    CheckpointWriter, HistoryFile, RunError, TrainingInterrupted, checkpoint_path, checkpoint_steps, find_resumable,
    load_run_config, read_history, remove_temporary_files, save_config, save_weights, say,
)

BACKGROUND_CHECKPOINTS = True
"""Write checkpoints in a background thread while the next steps train
(:class:`~retinanet.run.run_dir.CheckpointWriter`): a step waits only for the state to be serialised."""


class StopRequest:
    """SIGINT (Ctrl-C) and SIGTERM while training: the first asks the loop to stop after the current step
    and write a checkpoint; a second aborts at once (``KeyboardInterrupt``; the checkpoint being written, if
    any, is discarded and the previous one stays). Used as a context manager that installs the handlers and
    restores the previous ones; it installs nothing outside the main thread or when ``enabled`` is false
    (a multi-process job, whose processes must stop at the same step)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled=True):
        self.enabled, self.signal_number, self._previous = enabled, None, {}

    @property
    def requested(self):
        return self.signal_number is not None

    def __enter__(self):
        if self.enabled and threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exception):
        self._restore()
        return False

    def _restore(self):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def _handle(self, number, frame):
        if self.requested:
            self._restore()
            raise KeyboardInterrupt
        self.signal_number = number


class StopWhenAsked(keras.callbacks.Callback):
    """Ends ``fit()`` after the step during which a :class:`StopRequest` was made."""

    async_safe = True

    def __init__(self, stop):
        super().__init__()
        self.stop = stop

    def on_train_batch_end(self, batch, logs=None):
        if self.stop.requested:
            self.model.stop_training = True


INTERRUPTED_EXIT = 130
"""Exit status of a run stopped by Ctrl-C or SIGTERM after saving (the shell's 128 + SIGINT, for both, so a
script or scheduler tells "stopped, resumable" from a failure the same way for either signal)."""

def run_steps(detector, batches, first_step, log, stop=None):
    """Train on every batch of ``batches`` (global steps ``first_step + 1`` on), reporting to ``log`` (a
    :class:`~retinanet.run.progress.TrainingLog`), and end early once ``stop`` (a :class:`StopRequest`) is
    requested; the optimizer's step counter says how many steps ran.

    JAX: ``fit()``, which dispatches each jitted step without waiting for the last one's numbers; with
    ``shuffle=False``, since ``fit()`` would otherwise shuffle the batches of each call with Python's
    ``random`` (not part of a checkpoint), and a resumed run would not continue the stream exactly.
    TensorFlow: one ``train_on_batch`` per batch. ``fit()`` traces TensorFlow's step inside its loop over
    the input iterator, and on a CPU that graph runs slower than the same step traced on its own, which the
    loop avoids.
    """
    if BACKEND != "tensorflow":
        log.start_chunk(first_step, running_means=True)
        detector.fit(batches, epochs=1, verbose=0, shuffle=False,
                     callbacks=[log] + ([StopWhenAsked(stop)] if stop else []))
        return
    log.start_chunk(first_step, running_means=False)
    prefetched = batches.prefetched()
    try:
        for index, (images, ground_truth) in enumerate(prefetched):
            log.on_train_batch_end(index, detector.train_on_batch(images, ground_truth, return_dict=True))
            if stop is not None and stop.requested:
                break
    finally:
        prefetched.close()
    log.on_train_end()


def train(config, resume=False, progress=True, weights_only=False):
    """Train a RetinaNet as ``config`` says; returns the list of logged history rows (see
    :func:`train_detector`)."""
    return train_detector(config, resume, progress, weights_only)[1]


OPTIMIZER_STATE = {"adamw": "AdamW's moment estimates", "sgd": "SGD's momentum"}


def train_detector(config, resume=False, progress=True, weights_only=False):
    """Train a RetinaNet as ``config`` says; returns ``(detector, history rows)``.

    With ``resume=True`` an existing run directory continues from its newest checkpoint that verifies
    (model, optimizer state and step counter, hence the learning-rate schedule and the data stream, which
    continues where it stopped: each batch is a function of the seed and the global step), so a killed run
    loses at most ``checkpoint_every`` steps; damaged or cut-off checkpoints are skipped with one line each
    (:func:`~retinanet.run.run_dir.find_resumable`). ``weights_only=True`` (which implies ``resume``) takes
    the newest checkpoint whose model weights load and starts the optimizer's state afresh at its step.

    SIGINT or SIGTERM (single-process runs) finishes the current step, writes a checkpoint and raises
    :class:`~retinanet.run.run_dir.TrainingInterrupted`; a second signal aborts at once. A full disk raises
    :class:`~retinanet.run.run_dir.StorageError` and leaves the last checkpoint intact. In a multi-process
    job every process returns its (identical) detector; only process 0 writes the run directory.
    """
    process_index, process_count = join_processes()
    chief = process_index == 0
    config = resolve_auto(config)
    resume = resume or weights_only
    if resume:
        if os.path.isfile(os.path.join(config.run_dir, "config.json")):
            stored = load_run_config(config.run_dir)
            for name in ("image_size", "backbone", "head_channels", "annotations"):
                if getattr(stored, name) != getattr(config, name):
                    flag = "--" + name.replace("_", "-")
                    raise RunError(f"cannot resume {config.run_dir}: its config.json says {name}="
                                   f"{getattr(stored, name)!r}, this command {getattr(config, name)!r}; resume with "
                                   f"{flag} {getattr(stored, name)}, or train into another --run-dir")
    elif checkpoint_steps(config.run_dir):
        raise FileExistsError(f"{config.run_dir} already holds a run: pass --resume to continue it, or choose "
                              "another --run-dir")
    dataset = load_coco(config.annotations, config.images)
    if not dataset.records:
        raise DatasetError(f"{config.annotations}: no images to train on")
    os.makedirs(os.path.join(config.run_dir, "checkpoints"), exist_ok=True)
    config.class_names, config.category_ids = dataset.class_names, dataset.category_ids
    config.max_boxes = max_objects(dataset.records)
    if chief:
        removed = remove_temporary_files(os.path.join(config.run_dir, "checkpoints"))
        removed += remove_temporary_files(config.run_dir)
        if removed:
            say(f"removed what an interrupted write left in {config.run_dir}: {', '.join(removed)}")

    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_dtype_policy(dtype_policy(config.mixed_precision))
    history_file, log, writer = None, None, None
    try:
        scope, replicas = distribution_scope(process_count)
        with scope:
            detector = build_detector(dataset.num_classes, config.image_size, config.backbone, config.backbone_weights,
                                      config.head_channels, config.head_init)
            optimizer, schedule = make_optimizer(config)
            detector.compile(optimizer=optimizer, jit_compile=config.xla == "on")
            optimizer.build(detector.trainable_variables)
        start_step, notes = 0, []
        if resume:
            start_step, latest, notes = find_resumable(detector, config, weights_only)
            if latest is None:
                notes.append(f"{config.run_dir} holds no checkpoint yet: training starts at step 0")
            elif weights_only:
                notes.append(f"resuming from the model weights of {latest} alone (--resume-weights-only): the "
                             f"optimizer's state ({OPTIMIZER_STATE[config.optimizer]}) starts from zero; the step "
                             f"counter, learning-rate schedule and data stream continue from step {start_step}")
        history_path = os.path.join(config.run_dir, "history.csv")
        history, history_notes = read_history(history_path, start_step) if resume else ([], [])
        if chief:
            for note in notes + history_notes:
                say(note)
            save_config(config, os.path.join(config.run_dir, "config.json"))
            history_file = HistoryFile(history_path, history)

        # One fit() per checkpoint interval: fit() hands the trained state back to the model when it
        # returns, so checkpoints are written between steps, never from inside a running step.
        local_batch = config.batch_size * replicas // process_count
        cache = ImageCache()
        log = TrainingLog(config, schedule, start_step, config.batch_size * replicas, history, chief, progress,
                          history_file)
        step = start_step
        writer = CheckpointWriter(config.run_dir, config, chief, background=BACKGROUND_CHECKPOINTS)
        with StopRequest(enabled=process_count == 1) as stop:
            while step < config.steps and not stop.requested:
                steps = min(config.checkpoint_every - step % config.checkpoint_every, config.steps - step)
                batches = TrainingBatches(
                    dataset.records, config.image_size, local_batch, steps=steps, first_step=step,
                    max_boxes=config.max_boxes, jitter=config.jitter, seed=config.seed,
                    process_index=process_index, process_count=process_count, workers=config.workers, cache=cache,
                )
                run_steps(detector, batches, step, log, stop)
                step = int(ops.convert_to_numpy(optimizer.iterations))
                if chief:
                    history_file.sync()  # the rows up to a checkpoint are durable before it is
                writer.save(detector, step)
            writer.wait()
            if stop.requested and step < config.steps:
                name = signal.Signals(stop.signal_number).name
                where = f"saved in {checkpoint_path(config.run_dir, step)}" if step > 0 else "nothing trained yet"
                raise TrainingInterrupted(f"stopped by {name} after step {step} of {config.steps}, {where}: continue "
                                          "with --resume", exit_status=INTERRUPTED_EXIT)
        log.close()
        save_weights(detector.retinanet, os.path.join(config.run_dir, "model.weights.h5"), chief)
        if chief:
            history_file.sync()
            if history:
                plot_loss_curves(history, os.path.join(config.run_dir, "loss_curves.png"))
    finally:
        if writer is not None:
            try:  # an error is on its way already: let the write in flight end, quietly
                writer.wait()
            except BaseException:  # noqa: BLE001
                pass
        if log is not None:
            log.close()
        if history_file is not None:
            history_file.close()
        keras.mixed_precision.set_dtype_policy("float32")
        if BACKEND == "jax":
            keras.distribution.set_distribution(None)
    return detector, history
