"""A checkpoint's state is copied to the host when it is due (what a training step waits for) and
serialised in the background: the file is the one ``save_weights`` writes, entry for entry, and holds the
state of its step even when the variables change before it is serialised."""

import io

import h5py
import numpy as np
import pytest

from conftest import make_tiny_backbone
from retinanet import RetinaNet
from retinanet._keras import keras
from retinanet.detector import Detector
from retinanet.run.run_dir import serialize_snapshot, snapshot_bytes, snapshot_state

pytestmark = pytest.mark.backends("tensorflow", "jax")


def compiled_detector():
    detector = Detector(RetinaNet(3, backbone=make_tiny_backbone(), channels=16), 64)
    detector.build_for_input()
    detector.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    detector.optimizer.build(detector.trainable_variables)
    for variable in detector.optimizer.variables:
        if len(variable.shape):
            variable.assign(np.full(variable.shape, 0.25, variable.dtype))
    return detector


def contents(data):
    """``{dataset path: array}`` and ``{group path: attributes}`` of an HDF5 file's bytes."""
    arrays, attributes = {}, {}
    with h5py.File(io.BytesIO(bytes(data)), "r") as f:
        def visit(name, item):
            if isinstance(item, h5py.Dataset):
                arrays[name] = item[()]
            attributes[name] = dict(item.attrs)
        f.visititems(visit)
    return arrays, attributes


def test_the_snapshot_serialises_to_what_save_weights_writes(tmp_path):
    detector = compiled_detector()
    path = tmp_path / "keras.weights.h5"
    detector.save_weights(path)
    expected, found = contents(path.read_bytes()), contents(serialize_snapshot(snapshot_state(detector)))
    assert sorted(found[0]) == sorted(expected[0]) and len(expected[0]) > 20
    for name, array in expected[0].items():
        np.testing.assert_array_equal(found[0][name], array)
    assert found[1] == expected[1]
    snapshot = snapshot_state(detector)
    assert snapshot_bytes(snapshot) == sum(a.nbytes for a in expected[0].values())


def test_the_snapshot_keeps_its_step_when_the_variables_change():
    detector = compiled_detector()
    before = contents(serialize_snapshot(snapshot_state(detector)))[0]
    snapshot = snapshot_state(detector)
    for variable in detector.variables + detector.optimizer.variables:
        if len(variable.shape):
            variable.assign(np.zeros(variable.shape, variable.dtype))
    after = contents(serialize_snapshot(snapshot))[0]
    assert after.keys() == before.keys()
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])
    assert any(np.any(array) for array in after.values())
