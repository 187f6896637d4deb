"""Crash safety of ``train``: what a kill, Ctrl-C, SIGTERM, a full disk or a damaged file leaves behind, and
that ``--resume`` continues exactly where the last good checkpoint stopped.

**The kill points.** A SIGKILL leaves on disk what the file system holds at that instant, and nothing the
process had not yet written. :func:`faulted_run` trains once and, before every file-system call of
:mod:`retinanet.run.run_dir` (``open``, each ``write`` of :data:`CHUNK` bytes, ``fsync``, ``close``,
``replace``, ``remove``: config, history, every checkpoint and its manifest, rotation, the final weights,
the plot) and after every history row (between steps), copies the run directory: that copy is what a
SIGKILL at that call leaves (files that are only ever replaced whole are hard-linked, the others copied).
:func:`test_a_real_sigkill_leaves_what_the_snapshot_shows` kills real processes at some of these points and
finds the same files. For every kill point the resume is checked as ``train --resume`` runs it: it chooses
the newest complete checkpoint, loads all of it (model, optimizer state, step counter), removes the
temporary files, keeps the history rows up to that step and says nothing is damaged. Here checkpoints are
written in the training thread, so that the calls come in one order; ``train`` writes them in a background
thread by default, which makes the same calls, while the next steps train
(:func:`test_a_sigkill_during_a_background_write`, the Ctrl-C and ENOSPC tests). The checkpoint it
loads is a file of the faulted run itself, so continuing from it is the faulted run's own computation from
that step; for the first and the last kill point of each chosen step the whole ``train --resume`` runs to
the end and its final weights are compared bit for bit with the faulted run's.

The model is a tiny RetinaNet (an 8-channel backbone and subnets, 64-px images, 6 steps, a checkpoint every
2): building, tracing and saving it take a fraction of the light backbone's time. On TensorFlow the first
convolution gradient of a process rounds differently (by about 1e-17) from every later one, so each process
that trains here first trains a throwaway convolution (:func:`warm_up`).
"""

import errno
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time

import h5py
import numpy as np
import pytest
from conftest import make_tiny_backbone

import retinanet.run.loop as loop
import retinanet.run.run_dir as run_dir
from retinanet._keras import keras
from retinanet.data.synthetic import make_dataset, split_paths
from retinanet.detector import Detector
from retinanet.model import RetinaNet
from retinanet.run.recipes import make_optimizer, resolve_auto
from retinanet.run.run_dir import (
    StorageError, checkpoint_path, find_resumable, load_run_config, load_trained_model, manifest_path,
    read_history, verify_checkpoint, write_atomically,
)
from retinanet.tools.cli import _train_config, build_parser, main

pytestmark = pytest.mark.backends("tensorflow", "jax")

STEPS, EVERY = 6, 2
CHUNK = 64 * 1024  # a checkpoint of the tiny model is written in about six calls
KEPT = 2  # so that the last checkpoint's rotation deletes one
FLAGS = ["--image-size", "64", "--batch-size", "2", "--warmup-steps", "1", "--checkpoint-every", str(EVERY),
         "--log-every", "1", "--backbone", "light", "--head-channels", "8", "--workers", "1", "--no-progress"]
COMPARED = ("step", "loss", "classification", "box", "learning_rate")  # images/s is a timing
HERE = pathlib.Path(__file__).resolve().parent


# --- the tiny model, the run's arguments, the comparisons ---------------------------------------------------

def tiny_detector(num_classes, image_size, *args, **kwargs):
    """Stands in for :func:`retinanet.run.recipes.build_detector` (same signature)."""
    detector = Detector(RetinaNet(num_classes, backbone=make_tiny_backbone((8, 8, 8)), channels=8), image_size)
    detector.build_for_input()
    return detector


def use_tiny_model(setattr_, background=False):
    """The tiny model, small write chunks, two checkpoints kept; checkpoints written in the training thread
    (one order of file calls) unless ``background``."""
    setattr_(loop, "BACKGROUND_CHECKPOINTS", background)
    setattr_(loop, "build_detector", tiny_detector)
    setattr_(run_dir, "build_detector", tiny_detector)
    setattr_(run_dir, "WRITE_CHUNK", CHUNK)
    setattr_(run_dir, "CHECKPOINTS_KEPT", KEPT)


def warm_up():
    """Train a throwaway convolution once: on TensorFlow the first convolution gradient of a process rounds
    differently from later ones (see the module's docstring)."""
    model = keras.Sequential([keras.Input((16, 16, 8)), keras.layers.Conv2D(36, 3, padding="same")])
    model.compile(optimizer="adam", loss="mse")
    model.train_on_batch(np.ones((2, 16, 16, 8), "float32"), np.ones((2, 16, 16, 36), "float32"))


def arguments(data, run, steps=STEPS, *extra):
    annotations, images = split_paths(data, "train")
    return ["train", "--annotations", str(annotations), "--images", str(images), "--run-dir", str(run),
            "--steps", str(steps), *FLAGS, *extra]


def config_for(data, run, steps=STEPS, *extra):
    """The :class:`TrainConfig` that ``python -m retinanet`` makes of :func:`arguments`."""
    return _train_config(build_parser().parse_args(arguments(data, run, steps, *extra)))


def h5_arrays(path):
    """Every array of an HDF5 file by its path in the file."""
    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return arrays


def assert_same_weights(path, expected_path):
    found, expected = h5_arrays(path), h5_arrays(expected_path)
    assert found.keys() == expected.keys()
    different = [name for name in expected if not np.array_equal(found[name], expected[name])]
    assert not different, f"{path}: {len(different)} arrays differ from {expected_path}, e.g. {different[:3]}"


def history_rows(path, up_to=STEPS):
    rows, notes = read_history(str(path), up_to)
    return [tuple(row[key] for key in COMPARED) for row in rows], notes


def resume(run, data, steps=STEPS, *extra):
    """``python -m retinanet train --resume`` on ``run``, in this process; its exit status."""
    return main(arguments(data, run, steps, "--resume", *extra))


# --- kill points -----------------------------------------------------------------------------------------

class FileCalls:
    """Stands in for the ``os`` module of :mod:`retinanet.run.run_dir`: before each call that changes a file
    it calls ``hook(index, label)`` (labels name the file, without process ids or folders). History rows
    are events too, after each one is written (see :meth:`install`)."""

    WATCHED = ("open", "write", "fsync", "close", "replace", "remove")

    def __init__(self, hook):
        self.hook, self.index, self.labels, self.writes = hook, 0, [], {}
        self._lock = threading.RLock()

    @staticmethod
    def name(target):
        """The file a call is about: its name without the folder (a descriptor's from /proc), tidied."""
        path = os.readlink(f"/proc/self/fd/{target}") if isinstance(target, int) else os.fspath(target)
        return tidy_name(os.path.basename(path))

    def event(self, label):
        with self._lock:
            self.index += 1
            self.labels.append(label)
            self.hook(self.index, label)

    def __getattr__(self, attribute):
        function = getattr(os, attribute)
        if attribute not in self.WATCHED:
            return function

        def watched(*args, **kwargs):
            if attribute == "write":
                name = self.name(args[0])
                self.writes[name] = self.writes.get(name, 0) + 1
                label = f"write {name} #{self.writes[name]}"
            elif attribute == "replace":
                label = f"rename {self.name(args[0])} -> {self.name(args[1])}"
            else:
                label = f"{attribute} {self.name(args[0])}"
            self.event(label)
            return function(*args, **kwargs)

        return watched

    def install(self, setattr_):
        setattr_(run_dir, "os", self)
        original = run_dir.HistoryFile.append

        def append(history, row):
            original(history, row)
            self.event(f"history row {row['step']}")

        setattr_(run_dir.HistoryFile, "append", append)


def tidy_name(name):
    """``.step-000004.weights.h5.12345.tmp`` → ``.step-000004.weights.h5.PID.tmp``."""
    if name.endswith(".tmp"):
        stem = name[: -len(".tmp")].rsplit(".", 1)[0]
        return f"{stem}.PID.tmp"
    return name


def snapshot(run, target):
    """What a SIGKILL now would leave of ``run``, copied to ``target`` (TensorBoard's logs left out)."""
    for folder, _, names in os.walk(run):
        relative = os.path.relpath(folder, run)
        if relative.split(os.sep)[0] == "logs":
            continue
        os.makedirs(os.path.join(target, relative), exist_ok=True)
        for name in names:
            source, copy = os.path.join(folder, name), os.path.join(target, relative, name)
            if name == "history.csv" or name.endswith(".tmp"):
                shutil.copyfile(source, copy)  # changed in place while written
            else:
                os.link(source, copy)  # only ever replaced whole: the link keeps this version


def listing(run):
    """``{relative path: size}`` of a run directory without its logs, temporary names tidied."""
    found = {}
    for folder, _, names in os.walk(run):
        relative = os.path.relpath(folder, run)
        if relative.split(os.sep)[0] != "logs":
            for name in names:
                path = os.path.normpath(os.path.join(relative, tidy_name(name)))
                found[path] = os.path.getsize(os.path.join(folder, name))
    return found


def expected_step(snapshot_dir):
    """The newest checkpoint file under its own name: renamed into place only when complete."""
    steps = [int(name[5:11]) for name in os.listdir(os.path.join(snapshot_dir, "checkpoints"))
             if name.startswith("step-") and name.endswith(".weights.h5")] if os.path.isdir(
        os.path.join(snapshot_dir, "checkpoints")) else []
    return max(steps, default=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash-data")
    make_dataset(root, image_size=64, split_sizes={"train": 4, "val": 0, "test": 1}, seed=5)
    return root


@pytest.fixture
def tiny(monkeypatch):
    use_tiny_model(monkeypatch.setattr)


@pytest.fixture(scope="module")
def faulted_run(data, tmp_path_factory):
    """One uninterrupted run with a snapshot before every file call: ``{"run", "snapshots": [(index, label,
    path)], "history"}``."""
    root = tmp_path_factory.mktemp("faulted")
    run, snapshots = root / "run", []

    def hook(index, label):
        target = root / "kill" / f"{index:03d}"
        if os.path.isdir(run):
            snapshot(run, target)
        else:
            os.makedirs(target)
        snapshots.append((index, label, target))

    with pytest.MonkeyPatch.context() as patch:
        use_tiny_model(patch.setattr)
        warm_up()
        FileCalls(hook).install(patch.setattr)
        assert main(arguments(data, run)) == 0
    history, notes = history_rows(run / "history.csv")
    assert [row[0] for row in history] == list(range(1, STEPS + 1)) and not notes
    return {"run": run, "snapshots": snapshots, "history": history}


def kill_point(faulted_run, label):
    """The index of the first event labelled ``label``."""
    return next(index for index, name, _ in faulted_run["snapshots"] if name == label)


def resumer(config):
    """A compiled detector with its optimizer built, as ``train`` makes it, to load checkpoints into."""
    config = resolve_auto(config)
    stored = load_run_config(config.run_dir)
    config.class_names, config.category_ids = stored.class_names, stored.category_ids
    detector = tiny_detector(len(config.class_names), config.image_size)
    optimizer, _ = make_optimizer(config)
    detector.compile(optimizer=optimizer)
    optimizer.build(detector.trainable_variables)
    return detector, config


def test_every_kill_point_resumes_from_the_newest_complete_checkpoint(faulted_run, data, tiny, capsys):
    snapshots = faulted_run["snapshots"]
    labels = [label for _, label, _ in snapshots]
    assert len(snapshots) >= 50, len(snapshots)
    for wanted in ("write .step-000004.weights.h5.PID.tmp #3",  # inside a checkpoint's write
                   "rename .step-000004.weights.h5.PID.tmp -> step-000004.weights.h5",  # complete, no manifest yet
                   "write .step-000004.manifest.json.PID.tmp #1", "remove step-000002.manifest.json",  # rotation
                   "remove step-000002.weights.h5", "write .model.weights.h5.PID.tmp #2", "history row 5",
                   "write .config.json.PID.tmp #1", "fsync history.csv"):
        assert wanted in labels, (wanted, labels)

    detector, config = None, None
    chosen = {}
    for index, label, path in snapshots:
        if not os.path.isfile(path / "config.json"):
            assert expected_step(path) == 0  # killed before the run wrote anything it could resume
            chosen.setdefault(0, []).append((index, label, path))
            continue
        if detector is None:
            detector, config = resumer(config_for(data, path))
        config.run_dir = str(path)  # read only: the snapshots stay as the kill left them
        step, found, notes = find_resumable(detector, config)
        where = f"kill point {index} ({label})"
        assert step == expected_step(path), where
        if step:
            assert found == checkpoint_path(str(path), step), where
            unverified = not os.path.isfile(manifest_path(str(path), step))
            assert len(notes) == int(unverified) and all("has no manifest" in note for note in notes), (where, notes)
        history, history_notes = history_rows(path / "history.csv", step)
        assert history == faulted_run["history"][:step] and not history_notes, (where, history_notes)
        chosen.setdefault(step, []).append((index, label, path))
    assert sorted(chosen) == [0, 2, 4, 6]

    # The whole resume, to the end, for the first and the last kill point of each chosen step.
    final = faulted_run["run"] / "model.weights.h5"
    for step, points in sorted(chosen.items()):
        for index, label, path in {points[0][0]: points[0], points[-1][0]: points[-1]}.values():
            resumed = path.parent.parent / f"resumed-{index:03d}"
            shutil.copytree(path, resumed)
            temporary = sorted(name for name in listing(resumed) if name.endswith(".tmp"))
            assert resume(resumed, data) == 0, (index, label, capsys.readouterr().err)
            said = capsys.readouterr().err
            if temporary:
                assert "removed what an interrupted write left in" in said, (index, label, said)
            if step == 0:
                assert f"train: {resumed} holds no checkpoint yet: training starts at step 0" in said, said
            assert_same_weights(resumed / "model.weights.h5", final)
            history, notes = history_rows(resumed / "history.csv")
            assert history == faulted_run["history"] and not notes, (index, label)
    capsys.readouterr()


# --- real processes: SIGKILL, SIGINT, SIGTERM --------------------------------------------------------------

CHILD = """
import json, sys
spec = json.loads(sys.argv[1])
sys.path[:0] = spec["paths"]
import test_crash_safety
sys.exit(test_crash_safety.child_main(spec))
"""


def child_main(spec):
    """A ``python -m retinanet train`` process with the tiny model that sends itself signals: ``spec["at"]``
    lists ``[label prefix, signal name]`` pairs, each sent before the first file call (or after the first
    history row) whose :class:`FileCalls` label starts with its prefix, after the pair before it was sent."""
    use_tiny_model(lambda owner, name, value: setattr(owner, name, value), spec["background"])
    warm_up()
    actions = list(spec["at"])

    def hook(index, label):
        if actions and label.startswith(actions[0][0]):
            number = getattr(signal, actions.pop(0)[1])
            os.kill(os.getpid(), number)
            while number == signal.SIGKILL:  # this thread does nothing more until the signal lands
                time.sleep(1)

    FileCalls(hook).install(lambda owner, name, value: setattr(owner, name, value))
    return main(spec["arguments"])


def run_child(data, run, at, cache, background=False):
    spec = {"paths": [str(HERE.parent), str(HERE)], "arguments": arguments(data, run), "at": at,
            "background": background}
    environment = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                       JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")
    return subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True,
                          timeout=300, env=environment)


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory):
    """A persistent compilation cache shared by the child processes (JAX compiles their step once)."""
    return tmp_path_factory.mktemp("jax-cache")


@pytest.mark.backends("tensorflow")  # the snapshots model the file system, the same on every backend: one leg
# kills real processes to prove the snapshots right
@pytest.mark.parametrize("label", ["write .step-000004.weights.h5.PID.tmp #3",
                                   "open .step-000004.manifest.json.PID.tmp"])
def test_a_real_sigkill_leaves_what_the_snapshot_shows(faulted_run, data, tmp_path, tiny, label, jax_cache, capsys):
    index = kill_point(faulted_run, label)
    run = tmp_path / "run"
    completed = run_child(data, run, [[label, "SIGKILL"]], jax_cache)
    assert completed.returncode == -signal.SIGKILL, completed.stderr
    snapshot_dir = next(path for i, _, path in faulted_run["snapshots"] if i == index)
    found, expected = listing(run), listing(snapshot_dir)
    assert found.keys() == expected.keys()
    differ = ("history.csv", "config.json")  # images/s, and the run directory's path
    assert {k: v for k, v in found.items() if k not in differ} == {k: v for k, v in expected.items() if k not in differ}
    configs = [json.loads((folder / "config.json").read_text()) for folder in (run, snapshot_dir)]
    assert [{k: v for k, v in config.items() if k != "run_dir"} for config in configs] == [
        {k: v for k, v in configs[1].items() if k != "run_dir"}] * 2
    assert history_rows(run / "history.csv")[0] == history_rows(snapshot_dir / "history.csv")[0]
    assert resume(run, data) == 0
    assert_same_weights(run / "model.weights.h5", faulted_run["run"] / "model.weights.h5")
    assert history_rows(run / "history.csv") == (faulted_run["history"], [])
    capsys.readouterr()


def test_a_sigkill_during_a_background_write(faulted_run, data, tmp_path, tiny, jax_cache, capsys):
    """As ``train`` runs by default: step 4's checkpoint is written by a thread while steps 5 and 6 train."""
    run = tmp_path / "run"
    completed = run_child(data, run, [["write .step-000004.weights.h5.PID.tmp #3", "SIGKILL"]], jax_cache,
                          background=True)
    assert completed.returncode == -signal.SIGKILL, completed.stderr
    names = set(listing(run))
    assert "checkpoints/.step-000004.weights.h5.PID.tmp" in names and "checkpoints/step-000004.weights.h5" not in names
    assert verify_checkpoint(str(run), 2) is None
    assert resume(run, data) == 0
    assert_same_weights(run / "model.weights.h5", faulted_run["run"] / "model.weights.h5")
    assert history_rows(run / "history.csv") == (faulted_run["history"], [])
    capsys.readouterr()


def one_line(completed, status):
    """The stderr lines of a child that ended with ``status`` and no traceback."""
    assert completed.returncode == status, (completed.returncode, completed.stderr)
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed.stderr.strip().splitlines()


def test_ctrl_c_finishes_the_step_writes_a_checkpoint_and_resume_continues_exactly(faulted_run, data, tmp_path, tiny,
                                                                                  jax_cache, capsys):
    run = tmp_path / "run"
    completed = run_child(data, run, [["history row 3", "SIGINT"]], jax_cache, background=True)
    lines = one_line(completed, 130)
    assert len(lines) == 1 and lines[0].startswith("python -m retinanet train: stopped by SIGINT after step ")
    assert lines[0].endswith(": continue with --resume"), lines
    step = int(lines[0].split("after step ")[1].split()[0])
    assert 3 <= step < STEPS  # the step in flight is finished (JAX's fit() may have dispatched the next)
    assert f"saved in {checkpoint_path(str(run), step)}" in lines[0]
    assert verify_checkpoint(str(run), step) is None
    assert not [name for name in listing(run) if name.endswith(".tmp")]
    assert history_rows(run / "history.csv", step) == (faulted_run["history"][:step], [])
    assert resume(run, data) == 0
    assert_same_weights(run / "model.weights.h5", faulted_run["run"] / "model.weights.h5")
    assert history_rows(run / "history.csv") == (faulted_run["history"], [])
    capsys.readouterr()


def test_sigterm_during_a_checkpoint_write_lets_it_finish(data, tmp_path, jax_cache):
    run = tmp_path / "run"
    completed = run_child(data, run, [["write .step-000004.weights.h5.PID.tmp #2", "SIGTERM"]], jax_cache)
    lines = one_line(completed, 130)
    assert lines == [f"python -m retinanet train: stopped by SIGTERM after step 4 of {STEPS}, saved in "
                     f"{checkpoint_path(str(run), 4)}: continue with --resume"]
    assert verify_checkpoint(str(run), 4) is None and verify_checkpoint(str(run), 2) is None
    assert not [name for name in listing(run) if name.endswith(".tmp")]


def test_a_second_ctrl_c_aborts_the_checkpoint_being_written(data, tmp_path, jax_cache):
    """The first Ctrl-C after step 3's row, the second while step 3's checkpoint is being written: the write
    is abandoned, its temporary file removed, and step 2's checkpoint stays the last one."""
    run = tmp_path / "run"
    completed = run_child(data, run, [["history row 3", "SIGINT"], ["write .step-", "SIGINT"]], jax_cache)
    lines = one_line(completed, 130)
    assert lines == ["python -m retinanet train: error: interrupted",
                     "  continue from the last checkpoint with the same command and --resume"], lines
    assert sorted(os.listdir(run / "checkpoints")) == ["step-000002.manifest.json", "step-000002.weights.h5"]
    assert verify_checkpoint(str(run), 2) is None
    assert not [name for name in listing(run) if name.endswith(".tmp")]


# --- a full disk and failing writes ---------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (as root), or a skip saying why there is none."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root; a full disk is covered by the injected ENOSPC test")
    completed = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                               text=True)
    if completed.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({completed.stderr.strip()}); a full disk is covered by the "
                    "injected ENOSPC test")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_stops_with_one_line_and_leaves_the_last_checkpoint(faulted_run, data, small_disk, tmp_path,
                                                                         tiny, capsys):
    run = small_disk / "run"
    assert main(arguments(data, run)) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1, error
    assert error[0].startswith(f"python -m retinanet train: error: not enough space to write {run}/"), error
    assert " it needs " in error[0] and " free" in error[0] and "continue with --resume" in error[0]
    assert not [name for name in listing(run) if name.endswith(".tmp")]
    last = run_dir.latest_checkpoint(str(run))[0]
    assert last >= EVERY and f"the last checkpoint, {checkpoint_path(str(run), last)}, is intact" in error[0]

    # The kernel's own ENOSPC, past the space check: the temporary file goes, the message names the file.
    target = run / "checkpoints" / "big.weights.h5"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_dir, "check_free_space", lambda path, needed: None)
        with pytest.raises(StorageError, match=f"cannot write {target}: no space left on device"):
            write_atomically(str(target), bytes(4 << 20))
    assert not target.exists() and not [name for name in listing(run) if name.endswith(".tmp")]

    # Copied to a disk with room, the run predicts with its last checkpoint and resumes exactly.
    copy = tmp_path / "copied"
    shutil.copytree(run, copy)
    load_trained_model(str(copy))
    assert resume(copy, data) == 0
    assert_same_weights(copy / "model.weights.h5", faulted_run["run"] / "model.weights.h5")
    capsys.readouterr()


@pytest.mark.parametrize("background", [False, True], ids=["at-once", "in-background"])
def test_an_injected_enospc_while_writing_a_checkpoint(faulted_run, data, tmp_path, tiny, monkeypatch, capsys,
                                                       background):
    """Where no tmpfs can be mounted: ``os.write`` fails with ENOSPC in the middle of step 4's checkpoint
    (written by a thread, the error stops the run at the next checkpoint)."""
    monkeypatch.setattr(loop, "BACKGROUND_CHECKPOINTS", background)
    fail_at = kill_point(faulted_run, "write .step-000004.weights.h5.PID.tmp #3")

    def hook(index, label):
        if index == fail_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    FileCalls(hook).install(monkeypatch.setattr)
    run = tmp_path / "run"
    assert main(arguments(data, run)) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1, error
    size = run_dir.format_bytes(os.path.getsize(checkpoint_path(str(run), 2)))  # step 4's is as large
    assert error[0].startswith(f"python -m retinanet train: error: cannot write {checkpoint_path(str(run), 4)}: no "
                               f"space left on device (it needs {size}, "), error
    assert error[0].endswith(f"; the last checkpoint, {checkpoint_path(str(run), 2)}, is intact: free space and "
                             "continue with --resume"), error
    assert sorted(os.listdir(run / "checkpoints")) == ["step-000002.manifest.json", "step-000002.weights.h5"]


def test_the_space_is_checked_before_a_byte_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 << 20, 9 << 20, 1 << 20))
    message = r"not enough space to write .*file\.bin: it needs 3\.1 MB, .* has 1\.0 MB free"
    with pytest.raises(StorageError, match=message):
        write_atomically(str(tmp_path / "file.bin"), bytes(2 << 20))
    assert os.listdir(tmp_path) == []


# --- damaged files: history, checkpoints ----------------------------------------------------------------------

def finished_copy(faulted_run, target, without_final=True):
    shutil.copytree(faulted_run["run"], target, ignore=shutil.ignore_patterns("logs"))
    if without_final:
        os.remove(target / "model.weights.h5")
    return target


def test_a_cut_or_empty_history_is_said_and_resumed(faulted_run, data, tmp_path, tiny, capsys):
    cut = finished_copy(faulted_run, tmp_path / "cut")
    text = (cut / "history.csv").read_text()
    (cut / "history.csv").write_text(text[: len(text) - 20])  # the crash cut the last row
    assert resume(cut, data) == 0
    said = capsys.readouterr().err
    assert "history.csv: dropped its last row, cut off or malformed" in said
    assert "the rows of steps 6-6 are lost" in said
    assert [row[0] for row in history_rows(cut / "history.csv")[0]] == [1, 2, 3, 4, 5]
    assert_same_weights(cut / "model.weights.h5", faulted_run["run"] / "model.weights.h5")

    for state, damage in (("empty", lambda path: path.write_text("")), ("missing", os.remove)):
        run = finished_copy(faulted_run, tmp_path / state)
        damage(run / "history.csv")
        assert resume(run, data) == 0
        said = capsys.readouterr().err
        assert f"history.csv is {state}: the rows of steps 1-6 are lost" in said, said
        assert history_rows(run / "history.csv") == ([], [f"{run / 'history.csv'} is empty: the rows of steps 1-6 "
                                                         "are lost (training resumes at step 6; the loss curves lack "
                                                         "those steps)"])


def test_a_damaged_checkpoint_is_skipped_with_one_line(faulted_run, data, tmp_path, tiny, capsys):
    run = finished_copy(faulted_run, tmp_path / "flipped")
    newest = pathlib.Path(checkpoint_path(str(run), 6))
    content = bytearray(newest.read_bytes())
    content[len(content) // 2] ^= 0xFF
    newest.write_bytes(bytes(content))
    assert resume(run, data) == 0
    said = capsys.readouterr().err.strip().splitlines()
    assert said == [f"train: skipped {newest}: the SHA-256 of step-000006.weights.h5 differs from its manifest's "
                    "(the file was damaged)"]
    assert_same_weights(run / "model.weights.h5", faulted_run["run"] / "model.weights.h5")

    detector, config = resumer(config_for(data, run))
    truncated = finished_copy(faulted_run, tmp_path / "truncated")
    config.run_dir = str(truncated)
    with open(checkpoint_path(str(truncated), 6), "r+b") as f:
        f.truncate(1000)
    step, _, notes = find_resumable(detector, config)
    assert step == 4 and notes == [f"skipped {checkpoint_path(str(truncated), 6)}: step-000006.weights.h5 holds 1000 "
                                   "bytes, its manifest says " + str(os.path.getsize(checkpoint_path(str(run), 4)))
                                   + " (cut off while written)"]

    # An older version's checkpoint, closed after a half-written optimizer part, and without a manifest.
    legacy = finished_copy(faulted_run, tmp_path / "legacy")
    config.run_dir = str(legacy)
    os.remove(manifest_path(str(legacy), 6))
    with h5py.File(checkpoint_path(str(legacy), 6), "r+") as f:
        for name in list(f["optimizer/vars"])[len(f["optimizer/vars"]) // 2:]:
            del f["optimizer/vars"][name]
    step, _, notes = find_resumable(detector, config)
    assert step == 4 and len(notes) == 1, notes
    assert notes[0].startswith(f"skipped {checkpoint_path(str(legacy), 6)}: it has no manifest, and not every "
                               "variable loaded (Skipping variable loading for optimizer"), notes


def test_a_checkpoint_of_another_optimizer_needs_resume_weights_only(faulted_run, data, tmp_path, tiny, capsys):
    run = finished_copy(faulted_run, tmp_path / "run")
    assert resume(run, data, STEPS, "--optimizer", "sgd") == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and f"cannot resume {run}: none of its checkpoints can be used" in error[0]
    assert "written for another configuration (optimizer 'adamw', this run's 'sgd')" in error[0]
    assert "--resume-weights-only" in error[0]

    assert main(arguments(data, run, STEPS + 2, "--optimizer", "sgd", "--resume-weights-only")) == 0
    said = capsys.readouterr().err
    assert (f"resuming from the model weights of {checkpoint_path(str(run), 6)} alone (--resume-weights-only): the "
            "optimizer's state (SGD's momentum) starts from zero; the step counter, learning-rate schedule and data "
            "stream continue from step 6" in said), said
    assert [row[0] for row in history_rows(run / "history.csv", STEPS + 2)[0]] == list(range(1, STEPS + 3))
