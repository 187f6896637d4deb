"""Training: the paper's recipe (Lin et al., Sec. 4.1, "Optimization"), scaled to the data and machine.

The paper trains with synchronous SGD, momentum 0.9, weight decay 0.0001, 16 images per batch, learning
rate 0.01 divided by 10 at 60k and again at 80k of 90k iterations; Detectron adds a linear warm-up over
the first 500 iterations. Here the learning rate, warm-up and total steps are arguments, the decays fall
at the same fractions (2/3 and 8/9) of training, and the gradient's global norm is clipped, which keeps
from-scratch training stable through the warm-up.

That recipe (``--optimizer sgd``) is the default on a GPU. The CPU default trains the light backbone from
scratch for minutes and uses AdamW instead (see :data:`ADAMW_LEARNING_RATE` for why and the measurement).

A run directory holds everything a run makes::

    run/config.json         model and data description (read back by evaluate and predict)
    run/checkpoints/        model + optimizer + step, every ``checkpoint_every`` steps and at the end
    run/model.weights.h5    the final weights
    run/logs/               TensorBoard scalars (loss parts, learning rate, images/s)
    run/history.csv         the same scalars as text;  run/loss_curves.png: their plot

On a GPU mixed precision (float16 compute, float32 variables, dynamic loss scaling) and XLA are on by
default; with several GPUs the step runs under ``tf.distribute.MirroredStrategy``, and with ``TF_CONFIG``
set under ``MultiWorkerMirroredStrategy`` (see the README for multi-machine training).
"""

import csv
import json
import os
import time
from dataclasses import asdict, dataclass, field

from retinanet._tf import keras, tf
from tensorflow.core.framework import summary_pb2
from retinanet.backbone import get_backbone
from retinanet.data import load_coco
from retinanet.data.pipeline import DEFAULT_JITTER, make_dataset
from retinanet.light_backbone import get_light_backbone
from retinanet.losses import detection_loss_terms
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
"""The CPU default's learning rate. Trained from scratch for ~1,600 steps, the paper's heads (σ = 0.01
weights, no normalisation) pass very little signal at first, and SGD's updates, proportional to the
gradients, leave the classifier undecided for most of such a short run; Adam's per-weight step sizes do
not depend on the gradients' scale. Measured on the demo (96 px, batch 8, 1,600 steps, same data and
seed): SGD at 0.03 reached mAP@0.5 0.554, AdamW at 0.001 reached 0.821."""

HISTORY_FIELDS = ("step", "loss", "classification", "box", "learning_rate", "images_per_second")


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored as ``config.json`` in the run directory)."""

    annotations: str
    images: str
    run_dir: str
    image_size: int = 96
    batch_size: int = 8
    steps: int = 1600
    learning_rate: float = None  # None: ADAMW_LEARNING_RATE or SGD_LEARNING_RATE
    warmup_steps: int = 100
    weight_decay: float = WEIGHT_DECAY
    clip_norm: float = 10.0
    optimizer: str = "auto"
    backbone: str = "auto"
    backbone_weights: str = "auto"
    mixed_precision: str = "auto"
    xla: str = "auto"
    checkpoint_every: int = 100
    log_every: int = 10
    jitter: tuple = DEFAULT_JITTER
    seed: int = 0
    # Filled in from the data when training starts:
    class_names: list = field(default_factory=list)
    category_ids: list = field(default_factory=list)


class WarmupStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from ``WARMUP_FACTOR · lr`` to ``lr``, then ×0.1 at each of ``decay_steps``."""

    def __init__(self, learning_rate, warmup_steps, decay_steps):
        self.learning_rate, self.warmup_steps, self.decay_steps = learning_rate, warmup_steps, tuple(decay_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        progress = tf.minimum(step / max(self.warmup_steps, 1), 1.0)
        warmup = WARMUP_FACTOR + (1.0 - WARMUP_FACTOR) * progress
        drops = tf.add_n([tf.cast(step >= boundary, tf.float32) for boundary in self.decay_steps]) if self.decay_steps else 0.0
        return self.learning_rate * warmup * tf.pow(0.1, drops)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps, "decay_steps": self.decay_steps}


_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
).SerializeToString()


def write_scalar(tag, value):
    """A TensorBoard scalar through TensorFlow's own ``tf.summary.write`` (what ``tf.summary.scalar`` does,
    without needing the ``tensorboard`` package at training time; TensorBoard reads the event files)."""
    tf.summary.write(tag, tf.constant(value, tf.float32), metadata=_SCALAR_METADATA)


def gpu_available():
    return bool(tf.config.list_physical_devices("GPU"))


def resolve_auto(config):
    """Fill ``"auto"`` fields: ResNet50, the paper's SGD, mixed precision and XLA on a GPU; the light
    backbone and AdamW on a CPU."""
    on_gpu = gpu_available()
    if config.backbone == "auto":
        config.backbone = "resnet50" if on_gpu else "light"
    if config.optimizer == "auto":
        config.optimizer = "sgd" if on_gpu else "adamw"
    if config.learning_rate is None:
        config.learning_rate = SGD_LEARNING_RATE if config.optimizer == "sgd" else ADAMW_LEARNING_RATE
    if config.backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES} or 'auto', got {config.backbone!r}")
    for name in ("mixed_precision", "xla"):
        value = getattr(config, name)
        if value == "auto":
            value = "on" if on_gpu else "off"
        if value not in ("on", "off"):
            raise ValueError(f"{name} must be 'auto', 'on' or 'off', got {value!r}")
        setattr(config, name, value)
    return config


def build_detector(num_classes, backbone="light", backbone_weights="auto"):
    """The RetinaNet of a run: FPN and heads as in the paper on the chosen backbone."""
    if backbone == "light":
        features = get_light_backbone(input_shape=(None, None, 3))
    elif backbone == "resnet50":
        features = get_backbone(input_shape=(None, None, 3), weights=None if backbone_weights == "none" else backbone_weights)
    else:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
    return RetinaNet(num_classes, backbone=features)


def distribution_strategy():
    """MultiWorkerMirroredStrategy when ``TF_CONFIG`` describes a cluster, MirroredStrategy for several
    GPUs, else the default (single-device) strategy."""
    if "TF_CONFIG" in os.environ:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy):
    """Whether this process writes the run's checkpoints, weights and logs: always, except on the non-chief
    workers of multi-worker training (they write to a scratch directory, as TensorFlow requires)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (not has_chief and resolver.task_type == "worker" and resolver.task_id == 0)


def make_optimizer(config):
    """``(optimizer, schedule)``: SGD with momentum, decoupled weight decay, clipping, warm-up and decays."""
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
    if config.mixed_precision == "on":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer, schedule


def make_train_step(model, optimizer, num_classes, global_batch, strategy, jit_compile, step_counter=None):
    """A ``tf.function`` running one synchronous SGD step on every replica; returns the batch's mean
    (classification, box) loss. The loss of each image is divided by the global batch size, so that
    summing the replicas' gradients gives the gradient of the batch mean."""

    def replica_step(images, targets):
        with tf.GradientTape() as tape:
            predictions = model(images, training=True)
            classification, box = detection_loss_terms(targets, predictions, num_classes)
            loss = tf.reduce_sum(classification + box) / global_batch
            scaled_loss = optimizer.scale_loss(loss)  # loss scaling under mixed precision, else identity
        gradients = tape.gradient(scaled_loss, model.trainable_variables)
        optimizer.apply(gradients, model.trainable_variables)
        return tf.stack([tf.reduce_sum(classification), tf.reduce_sum(box)]) / global_batch

    compiled_step = tf.function(replica_step, jit_compile=jit_compile)

    @tf.function
    def distributed_step(images, targets):
        parts = strategy.run(compiled_step, args=(images, targets))
        if step_counter is not None:
            step_counter.assign_add(1)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, parts, axis=None)

    return distributed_step


def save_config(config, path):
    with open(path, "w") as f:
        json.dump(asdict(config), f, indent=1)


def load_run_config(run_dir):
    """The :class:`TrainConfig` a run was trained with."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: is {run_dir} a run directory written by `train`?")
    with open(path) as f:
        values = json.load(f)
    values["jitter"] = tuple(values["jitter"])
    return TrainConfig(**values)


def load_trained_model(run_dir):
    """``(model, config)`` of a finished run (its ``model.weights.h5``), or of its latest checkpoint."""
    config = load_run_config(run_dir)
    model = build_detector(len(config.class_names), config.backbone, backbone_weights="none")
    model(tf.zeros([1, config.image_size, config.image_size, 3]))
    weights = os.path.join(run_dir, "model.weights.h5")
    if os.path.isfile(weights):
        model.load_weights(weights)
    else:
        latest = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
        if latest is None:
            raise FileNotFoundError(f"{run_dir} holds neither model.weights.h5 nor a checkpoint")
        tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    return model, config


def _read_history(path, up_to_step):
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        rows = [{key: int(value) if key == "step" else float(value) for key, value in row.items()}
                for row in csv.DictReader(f)]
    return [row for row in rows if row["step"] <= up_to_step]


def _write_history(path, rows):
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


def train(config, resume=False, progress=True):
    """Train a RetinaNet as ``config`` says; returns the list of logged history rows.

    With ``resume=True`` an existing run directory continues from its latest checkpoint (model,
    optimizer state and step counter), so a killed run loses at most ``checkpoint_every`` steps.
    """
    from tqdm import tqdm

    config = resolve_auto(config)
    checkpoint_dir = os.path.join(config.run_dir, "checkpoints")
    if resume and os.path.isfile(os.path.join(config.run_dir, "config.json")):
        stored = load_run_config(config.run_dir)
        for name in ("image_size", "backbone", "annotations"):
            if getattr(stored, name) != getattr(config, name):
                raise ValueError(f"cannot resume {config.run_dir}: it was trained with {name}="
                                 f"{getattr(stored, name)!r}, now {getattr(config, name)!r}")
    elif os.path.isdir(checkpoint_dir) and tf.train.latest_checkpoint(checkpoint_dir):
        raise FileExistsError(f"{config.run_dir} already holds a run: pass --resume to continue it, or choose "
                              "another --run-dir")
    os.makedirs(config.run_dir, exist_ok=True)

    dataset = load_coco(config.annotations, config.images)
    config.class_names, config.category_ids = dataset.class_names, dataset.category_ids
    save_config(config, os.path.join(config.run_dir, "config.json"))

    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_dtype_policy("mixed_float16" if config.mixed_precision == "on" else "float32")
    strategy = distribution_strategy()
    global_batch = config.batch_size * strategy.num_replicas_in_sync
    num_classes = dataset.num_classes
    with strategy.scope():
        model = build_detector(num_classes, config.backbone, config.backbone_weights)
        model(tf.zeros([1, config.image_size, config.image_size, 3]))
        optimizer, schedule = make_optimizer(config)
        optimizer.build(model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if resume and latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
    chief = is_chief(strategy)
    if not chief:  # every worker must save (collectively); only the chief's copy is kept
        import tempfile

        checkpoint_dir = tempfile.mkdtemp(prefix="retinanet-worker-")
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=3)
    start_step = int(step.numpy())
    history_path = os.path.join(config.run_dir, "history.csv")
    history = _read_history(history_path, start_step) if resume else []

    data = make_dataset(dataset.records, config.image_size, global_batch, training=True,
                        jitter=config.jitter, seed=config.seed + start_step)
    data = strategy.experimental_distribute_dataset(data)

    distributed_step = make_train_step(model, optimizer, num_classes, global_batch, strategy, config.xla == "on", step)

    writer = tf.summary.create_file_writer(os.path.join(config.run_dir, "logs"))
    iterator = iter(data)
    bar = tqdm(total=config.steps, initial=start_step, desc="train", unit="step", disable=not progress,
               dynamic_ncols=True)
    sums, window_start, window_steps = tf.zeros([2]), time.perf_counter(), 0
    current = start_step
    try:
        while current < config.steps:
            images, targets = next(iterator)
            sums = sums + distributed_step(images, targets)
            current += 1
            window_steps += 1
            bar.update(1)
            if window_steps == config.log_every or current == config.steps:
                classification, box = (sums / window_steps).numpy().tolist()
                elapsed = time.perf_counter() - window_start
                row = {"step": current, "loss": classification + box, "classification": classification, "box": box,
                       "learning_rate": float(schedule(current - 1)),
                       "images_per_second": window_steps * global_batch / elapsed}
                history.append(row)
                bar.set_postfix(loss=f"{row['loss']:.3f}", cls=f"{classification:.3f}", box=f"{box:.3f}",
                                lr=f"{row['learning_rate']:.4f}", img_s=f"{row['images_per_second']:.1f}")
                with writer.as_default(step=current):
                    for key in HISTORY_FIELDS[1:]:
                        write_scalar(key, row[key])
                sums, window_start, window_steps = tf.zeros([2]), time.perf_counter(), 0
            if current % config.checkpoint_every == 0 or current == config.steps:
                manager.save(checkpoint_number=current)
                if chief:
                    _write_history(history_path, history)
    finally:
        bar.close()
        writer.flush()
    if not chief:
        return history
    model.save_weights(os.path.join(config.run_dir, "model.weights.h5"))
    _write_history(history_path, history)
    if history:
        plot_loss_curves(history, os.path.join(config.run_dir, "loss_curves.png"))
    keras.mixed_precision.set_dtype_policy("float32")
    return history
