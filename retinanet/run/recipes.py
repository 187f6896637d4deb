"""Recipes: what a training run trains and with which optimizer (Lin et al., Sec. 4.1, "Optimization"),
scaled to the data and machine.

The paper trains with synchronous SGD, momentum 0.9, weight decay 0.0001, 16 images per batch, learning
rate 0.01 divided by 10 at 60k and again at 80k of 90k iterations; Detectron adds a linear warm-up over
the first 500 iterations. Here the learning rate, warm-up and total steps are arguments, the decays fall
at the same fractions (2/3 and 8/9) of training, and the gradient's global norm is clipped, which keeps
from-scratch training stable through the warm-up.

That recipe (``--recipe paper``) is the default on an accelerator. The CPU recipe (``--recipe cpu``, the
default without one) trains a light backbone from scratch in minutes and changes what such a short run
needs: narrower pyramid and subnets, He-initialised subnets and AdamW (:data:`CPU_HEAD_CHANNELS`,
:data:`CPU_HEAD_INIT`, :data:`ADAMW_LEARNING_RATE` say why).

A run is described by a :class:`TrainConfig`; :func:`resolve_auto` fills in what it leaves to the recipe
and the machine, :func:`build_detector` and :func:`make_optimizer` build what it says.
"""

from dataclasses import dataclass, field

from retinanet._keras import BACKEND, accelerators, keras, ops
from retinanet.backbone import get_backbone, resolve_weights
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
per-weight step sizes do not depend on the gradients' scale."""

RECIPES = ("auto", "paper", "cpu")
"""``paper``: ResNet50, 256-channel pyramid and subnets with the paper's initialisation, SGD (the default on
an accelerator); ``cpu``: what the CPU demo changes (the light backbone, :data:`CPU_HEAD_CHANNELS`,
:data:`CPU_HEAD_INIT`, AdamW); ``auto``: the first on an accelerator, the second on a CPU. Each choice can
still be overridden by its own flag."""

CPU_HEAD_CHANNELS = 64
"""Width of the pyramid and both subnets in the CPU recipe (the paper's is 256, Sec. 4), where the subnets
would be most of the light network's compute: 64 keeps the demo within its time budget on slower CPUs.
At 256 px the paper's 256-channel pyramid and subnets cost more than ResNet50 itself. The training speeds
of both widths are in ``benchmarks/cpu-2core.json`` (64) and ``benchmarks/cpu-2core-paper.json`` (256);
forward GFLOP per image and the speed against KerasHub's 256-channel network, with ResNet50, in
``benchmarks/kerashub-cpu.json`` (``benchmarks/kerashub_cpu.py``)."""

HEAD_INITS = ("auto", "paper", "he")
"""Initialisation of the subnets' four hidden convolutions: ``paper``, a Gaussian with σ = 0.01 (Sec. 4.1);
``he``, He et al.'s σ = √(2 / fan-in) (:data:`CPU_HEAD_INIT`); ``auto``: the recipe's."""

CPU_HEAD_INIT = "he"
"""The CPU recipe initialises the subnets' hidden convolutions as He et al. (2015) do for ReLU networks;
the output convolutions keep the paper's σ = 0.01 and the prior bias (π = 0.01, Sec. 4.1). With σ = 0.01
and no normalisation, each hidden ReLU convolution scales the signal by about σ·√(9·C/2) = 0.17 at
C = 64 channels (0.34 at the paper's 256), so the output convolution sees ~1/1000 of its input's scale and
a short run from scratch barely trains the subnets."""

NO_JITTER = (1.0, 1.0)
"""Default: no scale jitter, horizontal flips only, the augmentation of the paper's ablations (Sec. 4.1);
its final models add scale jitter (Sec. 5.2; ``--jitter-min 0.75 --jitter-max 1.25``). A short run learns
the one scale the demo's test images have faster without it."""

MIXED_PRECISION = ("auto", "off", "bfloat16", "float16")
"""``bfloat16``: ``mixed_bfloat16`` (float32 weights, bfloat16 compute; no loss scaling needed);
``float16``: ``mixed_float16`` with dynamic loss scaling (GPUs without bfloat16); ``auto``: bfloat16 on
an accelerator, off on a CPU."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored as ``config.json`` in the run directory).

    The defaults are the demo's. ``image_size`` 128 enlarges the embedded 96-px images by 4/3, which
    brings their smallest objects (23 px) to the 32-px anchors of P3.
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
    batch statistics. Their backward pass goes away too, which makes the step faster
    (``benchmarks/kerashub-cpu.json``: ``paper_finetune`` against ``paper_scratch``)."""
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
