"""Training: the paper's recipe (Lin et al., Sec. 4.1, "Optimization"), scaled to the data and machine.

The paper trains with synchronous SGD, momentum 0.9, weight decay 0.0001, 16 images per batch, learning
rate 0.01 divided by 10 at 60k and again at 80k of 90k iterations; Detectron adds a linear warm-up over
the first 500 iterations. Here the learning rate, warm-up and total steps are arguments, the decays fall
at the same fractions (2/3 and 8/9) of training, and the gradient's global norm is clipped, which keeps
from-scratch training stable through the warm-up.

That recipe (``--recipe paper``) is the default on an accelerator. The CPU recipe (``--recipe cpu``, the
default without one) trains a light backbone from scratch in minutes and changes what such a short run
needs: narrower pyramid and subnets, He-initialised subnets and AdamW (:data:`CPU_HEAD_CHANNELS`,
:data:`CPU_HEAD_INIT`, :data:`ADAMW_LEARNING_RATE` say why, with the measurements).

One training path for every Keras backend: ``Detector.fit()`` on :class:`retinanet.data.loader.TrainingBatches`
(target assignment and the loss inside the compiled step). On TensorFlow (the course's backend, CPUs)
the step is a ``tf.function``, XLA-compiled on a GPU, and several GPUs train under
``tf.distribute.MirroredStrategy``. On JAX (accelerators) the step is jitted, mixed precision is
``mixed_bfloat16`` (no loss scaling), several devices train data-parallel with
``keras.distribution.DataParallel``, and several processes or machines join with
``keras.distribution.initialize`` (see :func:`join_processes`).

A run directory holds everything a run makes::

    run/config.json                    model and data description (read back by evaluate and predict)
    run/checkpoints/step-NNNNNN.weights.h5   model + optimizer state, every ``checkpoint_every`` steps
    run/model.weights.h5               the final RetinaNet weights
    run/history.csv                    loss parts, learning rate, images/s; run/loss_curves.png: their plot
    run/logs/                          TensorBoard scalars (TensorFlow backend)
"""

import csv
import glob
import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field

from retinanet._keras import BACKEND, accelerators, keras, ops
from retinanet.backbone import get_backbone, resolve_weights
from retinanet.data import load_coco
from retinanet.data.loader import ImageCache, TrainingBatches, max_objects
from retinanet.detector import Detector
from retinanet.fpn import FPN_CHANNELS
from retinanet.light_backbone import get_light_backbone
from retinanet.model import RetinaNet

BACKBONES = ("light", "resnet50")

MOMENTUM = 0.9
"""SGD momentum (Sec. 4.1)."""

WEIGHT_DECAY = 1e-4
"""Weight decay 0.0001 (Sec. 4.1); not applied to biases and batch-norm parameters."""

DECAY_FRACTIONS = (2 / 3, 8 / 9)
"""The learning rate drops ×0.1 at 60k/90k and 80k/90k of training (Sec. 4.1)."""

WARMUP_FACTOR = 1 / 3
"""The warm-up starts at this fraction of the learning rate and rises linearly (Detectron's default)."""

SGD_LEARNING_RATE = 0.01
"""The paper's learning rate (Sec. 4.1, for 16 images per batch; scale it with the batch)."""

ADAMW_LEARNING_RATE = 0.001
"""The CPU recipe's learning rate. Trained from scratch for a few hundred steps, SGD's updates,
proportional to the gradients, leave the classifier undecided for most of such a short run; Adam's
per-weight step sizes do not depend on the gradients' scale. Measured on the demo's data (the CPU recipe
otherwise, 800 steps, seed 0): SGD with momentum 0.9 at 0.01 reached mAP@0.5 0.886 / mAP@[.5:.95] 0.577, at 0.02
0.894 / 0.591; AdamW at 0.001 0.922 / 0.635."""

RECIPES = ("auto", "paper", "cpu")
"""``paper``: ResNet50, 256-channel pyramid and subnets with the paper's initialisation, SGD (the default on
an accelerator); ``cpu``: what the CPU demo changes (the light backbone, :data:`CPU_HEAD_CHANNELS`,
:data:`CPU_HEAD_INIT`, AdamW); ``auto``: the first on an accelerator, the second on a CPU. Each choice can
still be overridden by its own flag."""

CPU_HEAD_CHANNELS = 64
"""Width of the pyramid and both subnets in the CPU recipe (the paper's is 256, Sec. 4), where the subnets
would be most of the light network's compute. On the demo's four-class data, 800 steps at 128 px reached
mAP@0.5 0.922 / mAP@[.5:.95] 0.635 with 64 channels in 100 training CPU-seconds, and 0.933 / 0.656 with
128 channels in 161 (2-core AMD EPYC): 64 keeps the demo within its time budget on slower CPUs. With
ResNet50 (``--backbone resnet50``, from scratch, the same 800 steps) 64 channels reached 0.935 / 0.666 in
578 CPU-seconds and 256 channels 0.907 / 0.632 in 931; at 256 px the paper's 256-channel pyramid and
subnets cost more than ResNet50 itself (15.5 of 25.7 forward GFLOP per image), and the 64-channel network
trains 1.5× (from scratch) to 2.2× (fine-tuning) as fast as KerasHub's 256-channel one, where the
paper's network trains at KerasHub's speed (``benchmarks/kerashub_cpu.py``, 2-core AMD EPYC)."""

HEAD_INITS = ("auto", "paper", "he")
"""Initialisation of the subnets' four hidden convolutions: ``paper``, a Gaussian with σ = 0.01 (Sec. 4.1);
``he``, He et al.'s σ = √(2 / fan-in) (:data:`CPU_HEAD_INIT`); ``auto``: the recipe's."""

CPU_HEAD_INIT = "he"
"""The CPU recipe initialises the subnets' hidden convolutions as He et al. (2015) do for ReLU networks;
the output convolutions keep the paper's σ = 0.01 and the prior bias (π = 0.01, Sec. 4.1). With σ = 0.01
and no normalisation, each hidden ReLU convolution scales the signal by about σ·√(9·C/2) = 0.17 at
C = 64 channels (0.34 at the paper's 256), so the output convolution sees ~1/1000 of its input's scale and
a short run from scratch barely trains the subnets: 800 steps reached mAP@0.5 0.476 / mAP@[.5:.95] 0.313 with the paper's
σ and 0.922 / 0.635 with He's (same data, seed and everything else)."""

NO_JITTER = (1.0, 1.0)
"""Default: no scale jitter, horizontal flips only, the augmentation of the paper's ablations (Sec. 4.1);
its final models add scale jitter (Sec. 5.2; ``--jitter-min 0.75 --jitter-max 1.25``). On the demo's data,
with 800 steps, jitter in [0.75, 1.25] reached mAP@0.5 0.918 / mAP@[.5:.95] 0.601 where no jitter reached 0.922 / 0.635:
a short run learns the one scale the test images have faster."""

MIXED_PRECISION = ("auto", "off", "bfloat16", "float16")
"""``bfloat16``: ``mixed_bfloat16`` (float32 weights, bfloat16 compute; no loss scaling needed);
``float16``: ``mixed_float16`` with dynamic loss scaling (GPUs without bfloat16); ``auto``: bfloat16 on
an accelerator, off on a CPU."""

HISTORY_FIELDS = ("step", "loss", "classification", "box", "learning_rate", "images_per_second")

CHECKPOINTS_KEPT = 3
"""Older checkpoints are deleted; the newest few stay."""


class RunError(ValueError):
    """A run directory that cannot be used as asked: missing, unreadable, taken, or holding weights of another
    configuration. The message names the file and says how to fix it."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored as ``config.json`` in the run directory).

    The defaults are the demo's. ``image_size`` 128 enlarges the embedded 96-px images by 4/3, which
    brings their smallest objects (23 px) to the 32-px anchors of P3: 800 steps reached mAP@0.5 0.922 /
    mAP@[.5:.95] 0.635 at 128 px and 0.836 / 0.512 at 96 px, for 100 instead of 85 training CPU-seconds.
    """

    annotations: str
    images: str
    run_dir: str
    image_size: int = 128
    batch_size: int = 8
    steps: int = 800
    learning_rate: float = None  # None: ADAMW_LEARNING_RATE or SGD_LEARNING_RATE
    warmup_steps: int = 100
    weight_decay: float = WEIGHT_DECAY
    clip_norm: float = 10.0
    optimizer: str = "auto"
    recipe: str = "auto"
    backbone: str = "auto"
    backbone_weights: str = "auto"
    head_channels: int = None  # None: the recipe's (FPN_CHANNELS, or CPU_HEAD_CHANNELS); runs older than it: 256
    head_init: str = "auto"
    mixed_precision: str = "auto"
    xla: str = "auto"
    checkpoint_every: int = 100
    log_every: int = 10
    jitter: tuple = NO_JITTER
    seed: int = 0
    workers: int = 4
    # Filled in from the data and the machine when training starts:
    class_names: list = field(default_factory=list)
    category_ids: list = field(default_factory=list)
    max_boxes: int = 0
    backend: str = ""


class WarmupStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from ``WARMUP_FACTOR · lr`` to ``lr``, then ×0.1 at each of ``decay_steps``."""

    def __init__(self, learning_rate, warmup_steps, decay_steps):
        self.learning_rate, self.warmup_steps, self.decay_steps = learning_rate, warmup_steps, tuple(decay_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        progress = ops.minimum(step / max(self.warmup_steps, 1), 1.0)
        warmup = WARMUP_FACTOR + (1.0 - WARMUP_FACTOR) * progress
        drops = sum(ops.cast(step >= boundary, "float32") for boundary in self.decay_steps)
        return self.learning_rate * warmup * ops.power(0.1, drops)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps, "decay_steps": self.decay_steps}


def resolve_auto(config):
    """Fill ``"auto"`` fields from the recipe (:data:`RECIPES`: the paper's on an accelerator, the CPU
    recipe on a CPU) and the machine (bfloat16 and XLA on an accelerator)."""
    on_accelerator = bool(accelerators())
    for name, allowed in (("recipe", RECIPES), ("head_init", HEAD_INITS)):
        if getattr(config, name) not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {getattr(config, name)!r}")
    if config.recipe == "auto":
        config.recipe = "paper" if on_accelerator else "cpu"
    paper = config.recipe == "paper"
    if config.backbone == "auto":
        config.backbone = "resnet50" if paper else "light"
    if config.optimizer == "auto":
        config.optimizer = "sgd" if paper else "adamw"
    if config.head_channels is None:
        config.head_channels = FPN_CHANNELS if paper else CPU_HEAD_CHANNELS
    if config.head_init == "auto":
        config.head_init = "paper" if paper else CPU_HEAD_INIT
    if config.learning_rate is None:
        config.learning_rate = SGD_LEARNING_RATE if config.optimizer == "sgd" else ADAMW_LEARNING_RATE
    if config.backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES} or 'auto', got {config.backbone!r}")
    if config.mixed_precision not in MIXED_PRECISION:
        raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {config.mixed_precision!r}")
    if config.mixed_precision == "auto":
        config.mixed_precision = "bfloat16" if on_accelerator else "off"
    if config.xla not in ("auto", "on", "off"):
        raise ValueError(f"xla must be 'auto', 'on' or 'off', got {config.xla!r}")
    if config.xla == "auto":
        config.xla = "on" if on_accelerator or BACKEND == "jax" else "off"
    config.backend = BACKEND
    return config


def dtype_policy(mixed_precision):
    """The Keras dtype policy of a ``mixed_precision`` setting."""
    return {"off": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}[mixed_precision]


FROZEN_STAGES = ("conv1_", "conv2_")
"""Fine-tuning from ImageNet, the stem and stage 2 of ResNet50 do not train (Detectron's FREEZE_AT = 2)."""


def freeze_for_finetuning(resnet):
    """Fine-tune ResNet50 as the paper's codebase does (Detectron: ``FREEZE_AT = 2``, ``AffineChannel`` in
    place of batch norm): the stem and stage 2 keep their ImageNet weights, and every batch-norm layer is a
    fixed affine map with the ImageNet statistics, since 2-16 detection images per step are too few for
    batch statistics. Their backward pass goes away too: on the 2-core CPU the 256-px step trains 5.09
    instead of 4.15 images/s (``benchmarks/kerashub_cpu.py``)."""
    for layer in resnet.layers:
        if isinstance(layer, keras.layers.BatchNormalization) or layer.name.startswith(FROZEN_STAGES):
            layer.trainable = False


def build_detector(num_classes, image_size, backbone="light", backbone_weights="auto", head_channels=FPN_CHANNELS,
                   head_init="paper"):
    """The :class:`~retinanet.detector.Detector` of a run: the FPN and subnets (``head_channels`` wide,
    hidden convolutions initialised as ``head_init`` says) on the chosen backbone; a ResNet50 with ImageNet
    weights is frozen for fine-tuning (:func:`freeze_for_finetuning`)."""
    if backbone == "light":
        features = get_light_backbone(input_shape=(None, None, 3))
    elif backbone == "resnet50":
        weights = resolve_weights(None if backbone_weights == "none" else backbone_weights)
        features = get_backbone(input_shape=(None, None, 3), weights=weights)
        if weights is not None:
            freeze_for_finetuning(features)
    else:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
    hidden_initializer = keras.initializers.HeNormal() if head_init == "he" else None
    retinanet = RetinaNet(num_classes, backbone=features, channels=head_channels, hidden_initializer=hidden_initializer)
    detector = Detector(retinanet, image_size)
    detector.build_for_input()
    return detector


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


def make_optimizer(config):
    """``(optimizer, schedule)``: SGD with momentum or AdamW, decoupled weight decay, clipping, warm-up and decays."""
    schedule = WarmupStepDecay(
        config.learning_rate, config.warmup_steps, [round(config.steps * f) for f in DECAY_FRACTIONS]
    )
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(
            learning_rate=schedule, momentum=MOMENTUM, weight_decay=config.weight_decay,
            global_clipnorm=config.clip_norm or None,
        )
    elif config.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(
            learning_rate=schedule, weight_decay=config.weight_decay, global_clipnorm=config.clip_norm or None
        )
    else:
        raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {config.optimizer!r}")
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    if config.mixed_precision == "float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer, schedule


def save_config(config, path):
    with open(path, "w") as f:
        json.dump(asdict(config), f, indent=1)


def load_run_config(run_dir):
    """The :class:`TrainConfig` a run was trained with; :class:`RunError` if ``run_dir`` holds no readable one."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise RunError(f"{run_dir} is not a trained run (no {path}): train one there first, or pass the --run-dir "
                       "of a run that `train` or `demo` wrote")
    try:
        with open(path) as f:
            values = json.load(f)
        values["jitter"] = tuple(values["jitter"])
        known = TrainConfig.__dataclass_fields__
        config = TrainConfig(**{key: value for key, value in values.items() if key in known})
    except (ValueError, TypeError, KeyError) as error:  # malformed JSON, a missing or mistyped field
        raise RunError(f"{path} is not a run configuration that `train` wrote ({type(error).__name__}: {error}): "
                       "restore it from the run, or train again into a fresh --run-dir") from None
    if not config.class_names:
        raise RunError(f"{path} lists no classes: it was not written by a finished `train`; train again into "
                       "a fresh --run-dir")
    return config


def checkpoint_path(run_dir, step):
    return os.path.join(run_dir, "checkpoints", f"step-{step:06d}.weights.h5")


def latest_checkpoint(run_dir):
    """``(step, path)`` of the newest checkpoint of a run, or ``(0, None)``."""
    found = []
    for path in glob.glob(os.path.join(run_dir, "checkpoints", "step-*.weights.h5")):
        match = re.fullmatch(r"step-(\d+)\.weights\.h5", os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return max(found) if found else (0, None)


def load_trained_model(run_dir):
    """``(detector, config)`` of a finished run (its ``model.weights.h5``), or of its latest checkpoint."""
    config = load_run_config(run_dir)
    detector = build_detector(len(config.class_names), config.image_size, config.backbone, backbone_weights="none",
                              head_channels=config.head_channels or FPN_CHANNELS)
    weights = os.path.join(run_dir, "model.weights.h5")
    if os.path.isfile(weights):
        load_weights_of_run(detector.retinanet, weights, config, run_dir)
    else:
        _, latest = latest_checkpoint(run_dir)
        if latest is None:
            raise RunError(f"{run_dir} holds neither model.weights.h5 nor a checkpoint: its training has not "
                           f"saved anything yet; continue it with `train --resume --run-dir {run_dir}`")
        load_weights_of_run(detector, latest, config, run_dir)
    return detector, config


def load_weights_of_run(model, path, config, run_dir):
    """``model.load_weights(path)``, or :class:`RunError` naming the file when it holds weights of another
    configuration (a different backbone, class count or head) or is no weights file at all."""
    try:
        model.load_weights(path)
    except (ValueError, OSError) as error:
        summary = (f"{config.backbone} backbone, {config.head_channels or FPN_CHANNELS} channels, "
                   f"{len(config.class_names)} classes")
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RunError(f"{path} does not fit the model that {os.path.join(run_dir, 'config.json')} describes "
                       f"({summary}): it comes from another run or configuration ({reason[:160]}). Put the "
                       "run's own weights back, or train again into a fresh --run-dir") from None


def read_history(path, up_to_step):
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        rows = [{key: int(value) if key == "step" else float(value) for key, value in row.items()}
                for row in csv.DictReader(f)]
    return [row for row in rows if row["step"] <= up_to_step]


def write_history(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def plot_loss_curves(history, path):
    """Total, classification and box loss against the step, as a PNG."""
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
    figure.savefig(path, dpi=100)
    plt.close(figure)


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


ESTIMATE_AFTER_STEPS = 10
"""The time left is estimated once from this many steps after the first (which includes tracing the step)."""


def format_duration(seconds):
    """``"45 s"``, ``"3.2 min"`` or ``"1.5 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


class TrainingLog(keras.callbacks.Callback):
    """Progress bar (with the estimated time left), a history row every ``log_every`` steps and TensorBoard
    scalars, across the ``fit()`` calls of a run (one per checkpoint interval, see :func:`train`). Once
    :data:`ESTIMATE_AFTER_STEPS` steps have run after the first, it prints one line with the time per step
    and the training time left, so that the estimate shows without the bar (logs, ``--no-progress``).

    ``fit()`` reports running means of the loss parts since its start (``running_means=True``), a loop of
    ``train_on_batch`` each batch's own values; either way the callback logs the mean of each window. It
    never touches the model, so ``fit()`` may call it from a helper thread (``async_safe``) and dispatch the
    next step without waiting for this one's numbers; calls are serialised by a lock and processed in step
    order.
    """

    async_safe = True

    def __init__(self, config, schedule, first_step, images_per_step, history, chief, progress):
        super().__init__()
        from tqdm import tqdm

        self.config, self.schedule, self.images_per_step, self.history = config, schedule, images_per_step, history
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
        self.bar.set_postfix(loss=f"{row['loss']:.3f}", cls=f"{classification:.3f}", box=f"{box:.3f}",
                             lr=f"{row['learning_rate']:.2e}", img_s=f"{row['images_per_second']:.1f}")
        if self.tensorboard:
            self.tensorboard.write(step, row)
        self._window = (self._done, *self._sums, now)

    def close(self):
        self.bar.close()


def run_steps(detector, batches, first_step, log):
    """Train on every batch of ``batches`` (global steps ``first_step + 1`` on), reporting to ``log`` (a
    :class:`TrainingLog`).

    JAX: ``fit()``, which dispatches each jitted step without waiting for the last one's numbers.
    TensorFlow: one ``train_on_batch`` per batch. ``fit()`` traces TensorFlow's step inside its loop over
    the input iterator, and on the 2-core CPU that graph ran 35-40 % slower than the same step traced on
    its own (demo configuration: 0.47-0.51 against 0.36 CPU-s per step, measured with both kinds of
    input dataset), which the loop avoids.
    """
    if BACKEND != "tensorflow":
        log.start_chunk(first_step, running_means=True)
        detector.fit(batches, epochs=1, verbose=0, callbacks=[log])
        return
    log.start_chunk(first_step, running_means=False)
    for index, (images, ground_truth) in enumerate(batches.prefetched()):
        log.on_train_batch_end(index, detector.train_on_batch(images, ground_truth, return_dict=True))
    log.on_train_end()


def save_weights(model, path, chief):
    """``model.save_weights(path)`` on the chief. Every process of a multi-process job must take part (Keras
    creates distributed variables while saving, a collective step), so the others write a scratch file."""
    if chief:
        model.save_weights(path)
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="retinanet-worker-") as scratch:
        model.save_weights(os.path.join(scratch, os.path.basename(path)))


def save_checkpoint(detector, run_dir, step, chief=True):
    """Model and optimizer state at ``step``; only the newest :data:`CHECKPOINTS_KEPT` stay."""
    save_weights(detector, checkpoint_path(run_dir, step), chief)
    if chief:
        for old in sorted(glob.glob(os.path.join(run_dir, "checkpoints", "step-*.weights.h5")))[:-CHECKPOINTS_KEPT]:
            os.remove(old)


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
