"""Saving a checkpoint (model + optimizer state) two ways, on the backend of this run: this project's atomic
``.weights.h5`` writer and Orbax (``orbax-checkpoint``, JAX's atomic, asynchronous checkpointer).

For each model, built as ``train`` builds it (its recipe's backbone, channels and optimizer, the optimizer's
state built), ``--repeats`` saves of each kind, each into a fresh folder of ``--folder`` (default: the
system's temporary folder), median seconds:

- ``keras_save_weights``: ``model.save_weights(path)``, what ``train`` did before its writes were atomic
  (HDF5 writes the file under its own name, no fsync);
- ``atomic_h5``: :func:`retinanet.run.run_dir.save_checkpoint` as ``train`` calls it: serialised in memory
  (``serialize_s``), written to a temporary name, fsynced, renamed, folder fsynced (``write_s``), then
  its manifest and the rotation (``total_s`` is all of it, serialising again); ``atomic_h5_background``:
  the same through :class:`retinanet.run.run_dir.CheckpointWriter` as ``train`` runs it, the seconds until
  ``save`` returns (serialised, space checked: what a training step waits for, ``blocking_s``) and until the
  write is durable (``total_s``);
- ``orbax_sync``: ``orbax.checkpoint.v1.training.Checkpointer.save_checkpointables(step, {"pytree": state})``
  with ``state = model.get_state_tree()`` (numpy arrays on TensorFlow), as ``keras.callbacks.OrbaxCheckpoint``
  saves; ``orbax_async``: ``save_checkpointables_async``, the seconds until it returns (what a training
  step waits for, ``blocking_s``) and until the save is durable (``total_s``).

It also records what ``keras.callbacks.OrbaxCheckpoint`` itself does with this project's ``Detector``. The
optimizer's state is filled with small random values first (a trained run's is not zeros, which a
compressing writer would shrink to nothing). The models: ``demo`` (the CPU recipe: light backbone, 64
channels, AdamW, as ``make demo`` trains it) and ``paper`` (ResNet50, 256 channels, SGD with momentum: a
GPU run's checkpoint).
Results go into ``--output`` under the backend's name (one run per backend fills both)::

    pip install --target /tmp/orbax-tf orbax-checkpoint jax==0.10.2 jaxlib==0.10.2   # a scratch folder, never the pins
    PYTHONPATH=/tmp/orbax-tf .venv/bin/python benchmarks/checkpoint_save.py
    PYTHONPATH=/tmp/orbax-jax KERAS_BACKEND=jax .venv-jax/bin/python benchmarks/checkpoint_save.py
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPOSITORY)

from retinanet._keras import BACKEND, keras  # noqa: E402
from retinanet.run import run_dir  # noqa: E402
from retinanet.run.recipes import TrainConfig, build_detector, make_optimizer, resolve_auto  # noqa: E402
from retinanet.tools.benchmark import cpu_model, device_description, versions  # noqa: E402

MODELS = {"demo": {"recipe": "cpu"}, "paper": {"recipe": "paper"}}


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="demo,paper", help="comma-separated: demo, paper (default both)")
    parser.add_argument("--repeats", type=int, default=3, help="saves of each kind per model (default 3)")
    parser.add_argument("--folder", default=tempfile.gettempdir(), help="where the saves go (default the temp folder)")
    parser.add_argument("--output", default=os.path.join(REPOSITORY, "benchmarks", "checkpoint-save.json"))
    return parser.parse_args()


def built_model(name):
    """``(detector, config)``: the model and optimizer state ``train`` makes for the recipe of ``name``."""
    config = resolve_auto(TrainConfig("", "", "", recipe=MODELS[name]["recipe"], backbone_weights="none",
                                      mixed_precision="off"))
    config.class_names, config.category_ids = ["a", "b", "c", "d"], [1, 2, 3, 4]
    keras.utils.set_random_seed(0)
    detector = build_detector(4, config.image_size, config.backbone, "none", config.head_channels, config.head_init)
    optimizer, _ = make_optimizer(config)
    detector.compile(optimizer=optimizer)
    optimizer.build(detector.trainable_variables)
    # A trained run's optimizer state is not zeros (which a compressing writer would shrink to nothing).
    generator = np.random.default_rng(0)
    for variable in optimizer.variables:
        if len(variable.shape):
            variable.assign(generator.standard_normal(variable.shape).astype(variable.dtype) * 1e-3)
    optimizer.iterations.assign(1000)
    return detector, config


def folder_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(folder, name)) for folder, _, names in os.walk(path) for name in names)


def timed(function):
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def orbax_state(detector):
    """The state tree ``keras.callbacks.OrbaxCheckpoint`` saves (numpy arrays and Python scalars off JAX)."""
    from keras.src.callbacks.orbax_checkpoint import _get_state_tree

    return _get_state_tree(detector)


def measure(detector, config, scratch, repeats):
    from keras.src.utils.module_utils import ocp

    ocp.initialize()
    results = {name: [] for name in ("keras_save_weights", "atomic_h5", "atomic_h5_background", "orbax_sync",
                                     "orbax_async")}
    sizes = {}
    for repeat in range(repeats):
        folder = os.path.join(scratch, f"keras-{repeat}")
        os.makedirs(folder)
        path = os.path.join(folder, "step.weights.h5")
        seconds, _ = timed(lambda: detector.save_weights(path))
        results["keras_save_weights"].append({"total_s": seconds})
        sizes["keras_save_weights"] = folder_bytes(path)

        run = os.path.join(scratch, f"atomic-{repeat}")
        os.makedirs(os.path.join(run, "checkpoints"))
        serialize, data = timed(lambda: run_dir.serialize_weights(detector))
        write, _ = timed(lambda: run_dir.write_atomically(run_dir.checkpoint_path(run, 1), data))
        total, _ = timed(lambda: run_dir.save_checkpoint(detector, run, 2, config))
        results["atomic_h5"].append({"total_s": total, "serialize_s": serialize, "write_s": write})
        sizes["atomic_h5"] = folder_bytes(run_dir.checkpoint_path(run, 2)) + folder_bytes(run_dir.manifest_path(run, 2))

        writer = run_dir.CheckpointWriter(run, config, background=True)
        blocking, _ = timed(lambda: writer.save(detector, 3))
        waited, _ = timed(writer.wait)
        results["atomic_h5_background"].append({"total_s": blocking + waited, "blocking_s": blocking})
        sizes["atomic_h5_background"] = sizes["atomic_h5"]

        for kind in ("orbax_sync", "orbax_async"):
            directory = os.path.join(scratch, f"{kind}-{repeat}")
            checkpointer = ocp.training.Checkpointer(directory=directory)
            started = time.perf_counter()
            with ocp.Context():
                payload = {"pytree": orbax_state(detector)}
                if kind == "orbax_sync":
                    checkpointer.save_checkpointables(1, payload)
                    blocking = time.perf_counter() - started
                else:
                    future = checkpointer.save_checkpointables_async(1, payload)
                    blocking = time.perf_counter() - started
                    future.result()
                checkpointer.wait()
            total = time.perf_counter() - started
            checkpointer.close()
            results[kind].append({"total_s": total, "blocking_s": blocking})
            sizes[kind] = folder_bytes(directory)
    summary = {}
    for kind, runs in results.items():
        summary[kind] = {key: round(statistics.median(run[key] for run in runs), 4) for key in runs[0]}
        summary[kind]["bytes"] = sizes[kind]
        summary[kind]["runs"] = [{key: round(value, 4) for key, value in run.items()} for run in runs]
    return summary


def keras_callback_with_detector(detector, scratch):
    """What ``keras.callbacks.OrbaxCheckpoint`` does with a ``Detector``: a full save, and a weights-only one
    (whose state tree leaves out the optimizer)."""
    found = {}
    for weights_only in (False, True):
        callback = keras.callbacks.OrbaxCheckpoint(os.path.join(scratch, f"callback-{weights_only}"), save_freq=1,
                                                   save_on_background=False, save_weights_only=weights_only)
        callback.set_model(detector)
        try:
            callback._save_checkpoint(step=1)
            callback.wait_until_finished()
            state = orbax_state(detector)
            saved = ["trainable_variables", "non_trainable_variables"] if weights_only else sorted(state)
            found["save_weights_only" if weights_only else "full"] = {
                "saved": True, "state_tree_parts_saved": saved,
                "optimizer_state_saved": "optimizer_variables" in saved}
        except Exception as error:  # noqa: BLE001 (recorded as evidence)
            found["save_weights_only" if weights_only else "full"] = {
                "saved": False, "error": f"{type(error).__name__}: {' '.join(str(error).split())[:240]}"}
    return found


def file_system(folder):
    completed = subprocess.run(["df", "-T", folder], capture_output=True, text=True)
    lines = completed.stdout.strip().splitlines()
    return lines[-1].split()[1] if len(lines) > 1 else "unknown"


def main():
    args = parse_arguments()
    import orbax.checkpoint

    report = {"started": datetime.datetime.now().isoformat(timespec="seconds"), "device": device_description(),
              "cpu": cpu_model(), "versions": {**versions(), "orbax-checkpoint": orbax.checkpoint.__version__},
              "load_average_before": [round(x, 2) for x in os.getloadavg()],
              "file_system": file_system(args.folder), "repeats": args.repeats, "models": {}}
    for name in args.models.split(","):
        detector, config = built_model(name)
        scratch = tempfile.mkdtemp(prefix="checkpoint-save-", dir=args.folder)
        try:
            entry = {"recipe": config.recipe, "backbone": config.backbone, "head_channels": config.head_channels,
                     "optimizer": config.optimizer, "image_size": config.image_size,
                     "state_bytes": int(sum(keras.ops.convert_to_numpy(v).nbytes
                                            for v in detector.weights + detector.optimizer.variables)),
                     "saves": measure(detector, config, scratch, args.repeats)}
            entry["keras_orbax_callback"] = keras_callback_with_detector(detector, scratch)
            report["models"][name] = entry
            print(json.dumps({name: {kind: {k: v for k, v in values.items() if k != "runs"}
                                     for kind, values in entry["saves"].items()}}, indent=1), flush=True)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    existing = {}
    if os.path.isfile(args.output):
        with open(args.output) as f:
            existing = json.load(f)
    existing.setdefault("what", "seconds to save one checkpoint (model + optimizer state): this project's atomic "
                                ".weights.h5 writer against Orbax; see benchmarks/checkpoint_save.py")
    existing.setdefault("backends", {})[BACKEND] = report
    with open(args.output, "w") as f:
        json.dump(existing, f, indent=1)
        f.write("\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    try:
        main()
    except ImportError as error:
        traceback.print_exc()
        sys.exit(f"needs orbax-checkpoint on the path ({error}); see the docstring")
