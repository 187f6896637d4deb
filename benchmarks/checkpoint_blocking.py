"""What a training step waits for when a checkpoint is due, before and after issue 23, in one process.

- ``before``: :class:`retinanet.run.run_dir.CheckpointWriter` as it was: the step waited for the state's
  HDF5 serialisation in memory (:func:`retinanet.run.run_dir.serialize_weights`), the thread wrote it;
- ``after``: the step waits for a host copy of the arrays (:func:`retinanet.run.run_dir.snapshot_state`);
  the thread serialises (:func:`~retinanet.run.run_dir.serialize_snapshot`) and writes.

For each model (``demo``: the CPU recipe, light backbone, 64 channels, AdamW; ``paper``: ResNet50, 256
channels, SGD with momentum, a GPU run's checkpoint), built with its optimizer state as ``train`` makes
it, ``--repeats`` alternating rounds of each, median seconds. Then the step-time overhead: the demo
model trains ``--steps`` steps of ``fit()`` at 128 px, batch 4 (one ``fit()`` per checkpoint interval,
as ``train`` runs them), with no checkpoint, with the old writer and with the new one, a checkpoint every
``--every`` steps, written in the background to a temporary folder; seconds per step, median of
``--repeats`` alternating rounds. Writes ``benchmarks/checkpoint-blocking.json``::

    KERAS_BACKEND=jax .venv-jax/bin/python benchmarks/checkpoint_blocking.py
    .venv/bin/python benchmarks/checkpoint_blocking.py        # adds the TensorFlow backend's figures
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPOSITORY)

from retinanet._keras import BACKEND, keras  # noqa: E402
from retinanet.run import run_dir  # noqa: E402
from retinanet.run.recipes import TrainConfig, build_detector, make_optimizer, resolve_auto  # noqa: E402
from retinanet.tools.benchmark import device_description, random_batches, versions  # noqa: E402

MODELS = {"demo": "cpu", "paper": "paper"}


class BeforeWriter(run_dir.CheckpointWriter):
    """The writer as it was before issue 23: the step waits for the HDF5 serialisation."""

    def save(self, detector, step):
        self.wait()
        data = run_dir.serialize_weights(detector)
        path = run_dir.checkpoint_path(self.run_dir, step)
        run_dir.check_free_space(path, len(data))
        self._cancel.clear()
        import threading

        self._thread = threading.Thread(target=self._write_bytes, args=(step, data), daemon=True)
        self._thread.start()
        return path

    def _write_bytes(self, step, data):
        try:
            run_dir.write_checkpoint(self.run_dir, step, data, self.config, self._cancel.is_set)
        except BaseException as error:  # noqa: BLE001
            self._error = error


def built_model(name, image_size=None):
    config = resolve_auto(TrainConfig("", "", "", recipe=MODELS[name], backbone_weights="none", mixed_precision="off",
                                      steps=1000))
    config.class_names, config.category_ids = ["a", "b", "c", "d"], [1, 2, 3, 4]
    keras.utils.set_random_seed(0)
    detector = build_detector(4, image_size or config.image_size, config.backbone, "none", config.head_channels,
                              config.head_init)
    optimizer, _ = make_optimizer(config)
    detector.compile(optimizer=optimizer)
    optimizer.build(detector.trainable_variables)
    generator = np.random.default_rng(0)
    for variable in optimizer.variables:
        if len(variable.shape):
            variable.assign(generator.standard_normal(variable.shape).astype(variable.dtype) * 1e-3)
    return detector, config


def blocking(name, repeats, scratch):
    detector, config = built_model(name)
    times = {"before": [], "after": []}
    for repeat in range(repeats):
        for side, cls in (("before", BeforeWriter), ("after", run_dir.CheckpointWriter)):
            run = os.path.join(scratch, f"{name}-{side}-{repeat}")
            os.makedirs(os.path.join(run, "checkpoints"))
            writer = cls(run, config, background=True)
            started = time.perf_counter()
            writer.save(detector, 1)
            times[side].append(time.perf_counter() - started)
            writer.wait()
    return {"state_mib": round(sum(v.numpy().nbytes if hasattr(v, "numpy") else np.asarray(v).nbytes
                                   for v in detector.variables + detector.optimizer.variables) / 2 ** 20, 1),
            **{side: {"blocking_s": round(statistics.median(v), 4), "runs": [round(x, 4) for x in v]}
               for side, v in times.items()}}


def step_overhead(steps, every, repeats, scratch):
    detector, config = built_model("demo", image_size=128)
    images, truth = random_batches(128, 4 * every, 4)
    detector.fit(images, truth, batch_size=4, epochs=1, verbose=0, shuffle=False)  # compile
    sides = {"none": None, "before": BeforeWriter, "after": run_dir.CheckpointWriter}
    times = {side: [] for side in sides}
    for repeat in range(repeats):
        for side, cls in sides.items():
            run = os.path.join(scratch, f"steps-{side}-{repeat}")
            os.makedirs(os.path.join(run, "checkpoints"))
            writer = cls(run, config, background=True) if cls else None
            started = time.perf_counter()
            for interval in range(steps // every):
                detector.fit(images, truth, batch_size=4, epochs=1, verbose=0, shuffle=False)
                if writer:
                    writer.save(detector, (interval + 1) * every)
            if writer:
                writer.wait()
            times[side].append((time.perf_counter() - started) / steps)
    result = {side: {"seconds_per_step": round(statistics.median(v), 4), "runs": [round(x, 4) for x in v]}
              for side, v in times.items()}
    for side in ("before", "after"):
        result[side]["overhead_per_step_s"] = round(result[side]["seconds_per_step"] - result["none"]["seconds_per_step"], 4)
    return {"image_size": 128, "batch_size": 4, "steps": steps, "checkpoint_every": every, **result}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="demo,paper")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--every", type=int, default=3)
    parser.add_argument("--output", default=os.path.join(REPOSITORY, "benchmarks", "checkpoint-blocking.json"))
    args = parser.parse_args()
    report = {}
    if os.path.isfile(args.output):
        with open(args.output) as f:
            report = json.load(f)
    report.setdefault("what", __doc__.split("\n\n")[0].replace("\n", " "))
    entry = {"date": datetime.date.today().isoformat(), "device": device_description(), "versions": versions(),
             "load_average_before": [round(x, 2) for x in os.getloadavg()], "repeats": args.repeats, "models": {}}
    with tempfile.TemporaryDirectory(prefix="checkpoint-blocking-") as scratch:
        for name in args.models.split(","):
            entry["models"][name] = blocking(name, args.repeats, scratch)
            print(name, json.dumps({k: v for k, v in entry["models"][name].items()}), flush=True)
        entry["step_overhead_demo"] = step_overhead(args.steps, args.every, args.repeats, scratch)
        print("steps", json.dumps(entry["step_overhead_demo"]), flush=True)
    entry["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    report.setdefault("backends", {})[BACKEND] = entry
    with open(args.output, "w") as f:
        json.dump(report, f, indent=1)
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
