"""What a run shows while it trains: the progress bar with the time left, the history rows of the loss
parts, learning rate and speed (``history.csv``, appended as they are logged), TensorBoard scalars, and the
loss curves' plot."""

import io
import os
import threading
import time

from retinanet._keras import BACKEND, keras
from retinanet.run.run_dir import HISTORY_FIELDS, write_atomically

ESTIMATE_AFTER_STEPS = 10
"""The time left is estimated once from this many steps after the first (which includes tracing the step)."""


def format_duration(seconds):
    """``"45 s"``, ``"3.2 min"`` or ``"1.5 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def plot_loss_curves(history, path):
    """Total, classification and box loss against the step, as a PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [int(row["step"]) for row in history]
    figure, axis = plt.subplots(figsize=(7, 4))
    for key, label in (("loss", "total"), ("classification", "classification (focal)"), ("box", "box (smooth L1)")):
        axis.plot(steps, [float(row[key]) for row in history], label=label)
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.set_yscale("log")
    axis.grid(True, alpha=0.3)
    axis.legend()
    figure.tight_layout()
    picture = io.BytesIO()
    figure.savefig(picture, format="png", dpi=100)
    plt.close(figure)
    write_atomically(path, picture.getbuffer())


class TensorBoardScalars:
    """TensorBoard scalars through TensorFlow's own summary writer (TensorFlow backend only: the event files
    need no ``tensorboard`` package to be written, and TensorBoard reads them)."""

    def __init__(self, log_dir):
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        self._tf, self._writer = tf, tf.summary.create_file_writer(log_dir)
        self._metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
        ).SerializeToString()

    def write(self, step, row):
        with self._writer.as_default(step=step):
            for key in HISTORY_FIELDS[1:]:
                self._tf.summary.write(key, self._tf.constant(row[key], self._tf.float32), metadata=self._metadata)
        self._writer.flush()


class TrainingLog(keras.callbacks.Callback):
    """Progress bar (with the estimated time left), a history row every ``log_every`` steps and TensorBoard
    scalars, across the ``fit()`` calls of a run (one per checkpoint interval, see
    :func:`retinanet.run.loop.train_detector`). Once :data:`ESTIMATE_AFTER_STEPS` steps have run after the
    first, it prints one line with the time per step and the training time left, so that the estimate shows
    without the bar (logs, ``--no-progress``).

    ``fit()`` reports running means of the loss parts since its start (``running_means=True``), a loop of
    ``train_on_batch`` each batch's own values; either way the callback logs the mean of each window. It
    never touches the model, so ``fit()`` may call it from a helper thread (``async_safe``) and dispatch the
    next step without waiting for this one's numbers; calls are serialised by a lock and processed in step
    order. Each logged row is appended to ``history`` (a list) and, on the chief, to ``history_file`` (a
    :class:`~retinanet.run.run_dir.HistoryFile`).
    """

    async_safe = True

    def __init__(self, config, schedule, first_step, images_per_step, history, chief, progress, history_file=None):
        super().__init__()
        from tqdm import tqdm

        self.config, self.schedule, self.images_per_step, self.history = config, schedule, images_per_step, history
        self.history_file = history_file
        self.tensorboard = TensorBoardScalars(os.path.join(config.run_dir, "logs")) if chief and BACKEND == "tensorflow" else None
        self.bar = tqdm(total=config.steps, initial=first_step, desc="train", unit="step",
                        disable=not (progress and chief), dynamic_ncols=True)
        self.chief, self._estimate_from = chief, None  # (step, time) once the first step is done
        self._lock = threading.Lock()
        self.start_chunk(first_step, running_means=True)

    def start_chunk(self, first_step, running_means):
        """Get ready for the batches of global steps ``first_step + 1`` on, reported as running means
        (``fit()``) or one by one."""
        self.first_step, self.running_means = first_step, running_means
        self._pending, self._done, self._sums = {}, 0, (0.0, 0.0)
        self._window = (0, 0.0, 0.0, time.perf_counter())  # batches done, loss sums, time at its start

    def on_train_batch_end(self, batch, logs=None):
        with self._lock:
            self._pending[batch] = (float(logs["classification"]), float(logs["box"]))
            while self._done in self._pending:
                classification, box = self._pending.pop(self._done)
                self._done += 1
                if self.running_means:  # means over the first self._done batches
                    self._sums = (classification * self._done, box * self._done)
                else:
                    self._sums = (self._sums[0] + classification, self._sums[1] + box)
                self.bar.update(1)
                self._estimate_time_left(self.first_step + self._done)
                if (self.first_step + self._done) % self.config.log_every == 0:
                    self._log_window()

    def _estimate_time_left(self, step):
        if self._estimate_from is None:
            self._estimate_from = (step, time.perf_counter())
            return
        first, started = self._estimate_from
        if step - first != ESTIMATE_AFTER_STEPS or not self.chief or self.config.steps - step <= 0:
            return
        per_step = (time.perf_counter() - started) / ESTIMATE_AFTER_STEPS
        left = per_step * (self.config.steps - step)
        finish = time.strftime("%H:%M", time.localtime(time.time() + left))
        self.bar.write(f"train: {per_step:.2f} s/step over steps {first + 1}-{step}; about {format_duration(left)} "
                       f"of training left (until about {finish})")

    def on_train_end(self, logs=None):
        with self._lock:
            if self._done > self._window[0]:
                self._log_window()

    def _log_window(self):
        done, start_classification, start_box, started = self._window
        steps, now = self._done - done, time.perf_counter()
        classification = (self._sums[0] - start_classification) / steps
        box = (self._sums[1] - start_box) / steps
        step = self.first_step + self._done
        row = {"step": step, "loss": classification + box, "classification": classification, "box": box,
               "learning_rate": float(self.schedule(step - 1)),
               "images_per_second": steps * self.images_per_step / (now - started)}
        self.history.append(row)
        if self.history_file is not None:
            self.history_file.append(row)
        self.bar.set_postfix(loss=f"{row['loss']:.3f}", cls=f"{classification:.3f}", box=f"{box:.3f}",
                             lr=f"{row['learning_rate']:.2e}", img_s=f"{row['images_per_second']:.1f}")
        if self.tensorboard:
            self.tensorboard.write(step, row)
        self._window = (self._done, *self._sums, now)

    def close(self):
        self.bar.close()
