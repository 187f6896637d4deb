"""The run directory: everything a run makes, written as it trains and read back by evaluate and predict::

    run/config.json                    model and data description (:class:`~retinanet.run.recipes.TrainConfig`)
    run/checkpoints/step-NNNNNN.weights.h5   model + optimizer state, every ``checkpoint_every`` steps
    run/model.weights.h5               the final RetinaNet weights
    run/history.csv                    loss parts, learning rate, images/s; run/loss_curves.png: their plot
    run/logs/                          TensorBoard scalars (TensorFlow backend)

A run directory that cannot be used as asked raises :class:`RunError`, whose message names the file and
the fix.
"""

import csv
import glob
import json
import os
import re
from dataclasses import asdict

from retinanet.fpn import FPN_CHANNELS
from retinanet.run.recipes import TrainConfig, build_detector

HISTORY_FIELDS = ("step", "loss", "classification", "box", "learning_rate", "images_per_second")
"""The columns of ``history.csv`` (and the TensorBoard scalars)."""

CHECKPOINTS_KEPT = 3
"""Older checkpoints are deleted; the newest few stay."""


class RunError(ValueError):
    """A run directory that cannot be used as asked: missing, unreadable, taken, holding weights of another
    configuration, or asked about data with other classes. The message names the file and says how to fix
    it."""


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
