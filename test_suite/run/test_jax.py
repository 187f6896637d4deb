"""The JAX leg only: nothing imports TensorFlow, and data-parallel training on several devices and on
several processes (two processes on this machine, talking over loopback) gives one set of weights."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from retinanet.data.synthetic import make_dataset, split_paths

pytestmark = pytest.mark.backends("jax")

TRAIN_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from retinanet.run.loop import train_detector
    from retinanet.run.recipes import TrainConfig
    import keras, jax
    annotations, images, run_dir, output = sys.argv[1:5]
    config = TrainConfig(annotations, images, run_dir, image_size=64, batch_size=2, steps=3, warmup_steps=1,
                         checkpoint_every=3, log_every=1, backbone="light", workers=1)
    detector, history = train_detector(config, progress=False)
    np.savez(output, *[np.asarray(w) for w in detector.weights])
    print(json.dumps({"devices": len(keras.distribution.list_devices()), "processes": jax.process_count(),
                      "losses": [row["loss"] for row in history], "tensorflow": "tensorflow" in sys.modules}))
""")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    make_dataset(root, image_size=64, split_sizes={"train": 8, "val": 0, "test": 0}, seed=5, workers=1)
    return split_paths(root, "train")


def run_training(tiny_data, run_dir, output, env, port=None):
    command = [sys.executable, "-c", TRAIN_SCRIPT, *tiny_data, str(run_dir), str(output)]
    # On the CPU whatever the machine has: a GPU machine runs this suite too (benchmarks/gpu/run.sh).
    base = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": os.getcwd(), **env}
    return subprocess.Popen(command, env=base, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process, timeout=600):
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


def test_tensorflow_is_never_imported():
    """The whole backend-neutral path — model, training step, decoding, evaluation — without TensorFlow."""
    import retinanet.detector  # noqa: F401
    import retinanet.run.distribute  # noqa: F401
    import retinanet.run.evaluate  # noqa: F401
    import retinanet.run.loop  # noqa: F401
    import retinanet.run.predict  # noqa: F401
    import retinanet.run.progress  # noqa: F401
    import retinanet.run.recipes  # noqa: F401
    import retinanet.run.run_dir  # noqa: F401
    import retinanet.tools.benchmark  # noqa: F401

    assert "tensorflow" not in sys.modules


def test_data_parallel_over_two_devices(tiny_data, tmp_path):
    report = finished(run_training(tiny_data, tmp_path / "run", tmp_path / "weights.npz",
                                   {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}))
    assert report["devices"] == 2 and report["processes"] == 1
    assert len(report["losses"]) == 3 and np.isfinite(report["losses"]).all()
    assert not report["tensorflow"]


def test_two_processes_train_one_model_over_loopback(tiny_data, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    processes = [
        run_training(tiny_data, tmp_path / "run", tmp_path / f"weights-{index}.npz",
                     {"KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
                      "KERAS_DISTRIBUTION_NUM_PROCESSES": "2", "KERAS_DISTRIBUTION_PROCESS_ID": str(index)})
        for index in range(2)
    ]
    reports = [finished(process) for process in processes]
    assert [r["processes"] for r in reports] == [2, 2] and [r["devices"] for r in reports] == [2, 2]
    assert reports[0]["losses"] == reports[1]["losses"]  # the global batch's loss, seen by both
    weights = [np.load(tmp_path / f"weights-{index}.npz") for index in range(2)]
    assert len(weights[0].files) == len(weights[1].files) > 0
    for name in weights[0].files:
        np.testing.assert_array_equal(weights[0][name], weights[1][name])
    assert (tmp_path / "run" / "model.weights.h5").is_file()  # process 0 wrote the run directory
