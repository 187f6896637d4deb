"""The run directory: everything a run makes, written as it trains and read back by evaluate and predict::

    run/config.json                              model and data description (``TrainConfig``)
    run/checkpoints/step-NNNNNN.weights.h5       model + optimizer state, every ``checkpoint_every`` steps
    run/checkpoints/step-NNNNNN.manifest.json    its step, configuration fingerprint, size and SHA-256
    run/model.weights.h5                         the final RetinaNet weights
    run/history.csv                              loss parts, learning rate, images/s, a row appended at a time
    run/loss_curves.png                          their plot
    run/logs/                                    TensorBoard scalars (TensorFlow backend)

A run directory that cannot be used as asked raises :class:`RunError`, whose message names the file and
the fix; a disk that is full or fails while a run writes raises :class:`StorageError`, which names the
file, the space it needs and what is left intact.

**Crash safety.** A file of the run appears under its name complete or not at all
(:func:`write_atomically`): its bytes are made in memory (a checkpoint is serialised to HDF5 in a
``BytesIO``, so HDF5 never writes to the disk), written to a temporary name in the same folder
(``.NAME.PID.tmp``), flushed and fsynced, renamed into place, and the folder is fsynced. Before writing,
the free space is compared with the exact size (``shutil.disk_usage``), so a full disk stops the run with a
:class:`StorageError` before a byte is written; an error while writing removes the temporary file. A
checkpoint counts once its manifest, written last and atomically, says what it holds: the step, a
fingerprint of the configuration its variables depend on (:func:`checkpoint_identity`), and each file's
size and SHA-256. ``--resume`` takes the newest checkpoint that verifies (:func:`find_resumable`) and says
on one line which newer ones it skipped and why; a checkpoint without a manifest (cut off between its
rename and its manifest, or written before manifests existed) is used only if every variable of the model
and the optimizer loads from it and its step counter matches its name. Older checkpoints are deleted only
after the new one's manifest is durable, so the newest verified checkpoint is never lost to a crash or a
full disk. ``history.csv`` is appended a row at a time (flushed; fsynced before each checkpoint), so a
crash can only cut its last row, which resuming drops and says so.

**Checkpoints in the background.** :class:`CheckpointWriter` copies the state to the host when a
checkpoint is due (:func:`snapshot_state`: the checkpoint holds exactly that step; the copy is all a step
waits for) and leaves the HDF5 serialisation, the writing, fsyncs, rename, manifest and rotation to a
thread while the next steps train; the next checkpoint, the end of training or an interruption waits
for it, and its error (a full disk) stops the run there.

**Why not Orbax.** ``keras.callbacks.OrbaxCheckpoint`` (Keras 3.15) and ``orbax-checkpoint`` 0.12.8 install
here without changing a pinned package (in the TensorFlow environment they add JAX, jaxlib and
tensorstore; in the JAX one tensorstore, protobuf and others) and save atomically and asynchronously.
They are not used, because:

- the callback cannot save this project's :class:`~retinanet.detector.Detector` with its optimizer state:
  a full save serialises the model's config, which a ``Detector`` built around a backbone does not have
  (``NotImplementedError``), and ``save_weights_only=True`` leaves the optimizer state out, which is the
  silent restart this module exists to prevent; Orbax would have to be driven directly, through Keras's
  private state-tree helpers;
- an Orbax checkpoint is a folder of tensorstore arrays, which ``evaluate``, ``predict`` and the course's
  notebooks could read only with Orbax and JAX installed, where a ``.weights.h5`` file needs Keras alone,
  on every backend;
- its asynchronous save makes a step wait only for the arrays' copy to the host, and so does
  :class:`CheckpointWriter` now (:func:`snapshot_state`; the HDF5 serialisation moved into its thread);
  both hide the disk write, which is most of a synchronous save (``benchmarks/checkpoint_save.py`` →
  ``benchmarks/checkpoint-save.json``: the save kinds, both backends, both models;
  ``benchmarks/checkpoint_blocking.py`` → ``benchmarks/checkpoint-blocking.json``: what a step waits for
  before and after the snapshot, in one process; no GPU was lent to measure either there).
"""

import csv
import errno
import glob
import hashlib
import io
import json
import os
import re
import shutil
import sys
import threading
import warnings
from dataclasses import asdict

from retinanet.fpn import FPN_CHANNELS
from retinanet.run.recipes import TrainConfig, build_detector

HISTORY_FIELDS = ("step", "loss", "classification", "box", "learning_rate", "images_per_second")
"""The columns of ``history.csv`` (and the TensorBoard scalars)."""

CHECKPOINTS_KEPT = 3
"""Older checkpoints are deleted; the newest few verified ones stay."""

MANIFEST_FORMAT = 1
"""The version of the checkpoint manifest's layout."""

WRITE_CHUNK = 1 << 20
"""Bytes per ``os.write`` call of :func:`write_atomically`."""

SPACE_MARGIN = 1 << 20
"""Bytes kept free beyond a file's size when checking the space before writing it (its manifest, the history)."""

MODEL_IDENTITY = ("backbone", "head_channels", "class_names", "category_ids", "image_size")
"""The configuration fields a checkpoint's model variables depend on."""

OPTIMIZER_IDENTITY = ("optimizer", "loss_scaling")
"""The fields its optimizer variables depend on (``loss_scaling``: float16 mixed precision)."""

_STEP_FILE = re.compile(r"step-(\d+)\.(weights\.h5|manifest\.json)")


class RunError(ValueError):
    """A run directory that cannot be used as asked: missing, unreadable, taken, holding weights of another
    configuration, or asked about data with other classes. The message names the file and says how to fix
    it."""


class StorageError(RunError):
    """A file of the run could not be written: the disk is full (checked before writing) or failed while
    writing. The message names the file and the space it needs; the temporary file is removed and every
    file written before stays intact."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT or SIGTERM after finishing its step and writing a checkpoint. The message
    is the one line to show; ``exit_status`` is 128 + the signal's number (130 for Ctrl-C)."""

    def __init__(self, message, exit_status=130):
        super().__init__(message)
        self.exit_status = exit_status


# --- writing files atomically ---------------------------------------------------------------------------

def format_bytes(count):
    """``"305.2 MB"``, ``"12.0 kB"``, ``"512 B"``."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def temporary_path(path):
    """Where :func:`write_atomically` writes ``path`` before renaming it: a hidden name in the same folder."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{os.getpid()}.tmp")


def remove_temporary_files(folder):
    """Delete the temporary files that an interrupted write left in ``folder``; returns their names."""
    removed = []
    for path in glob.glob(os.path.join(glob.escape(folder), ".*.tmp")):
        try:
            os.remove(path)
            removed.append(os.path.basename(path))
        except FileNotFoundError:
            pass
    return sorted(removed)


def fsync_folder(folder):
    """Make a rename in ``folder`` durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def check_free_space(path, needed):
    """:class:`StorageError` when the file system of ``path``'s folder has less than ``needed`` bytes (plus
    :data:`SPACE_MARGIN`) free."""
    folder = os.path.dirname(path) or "."
    free = shutil.disk_usage(folder).free
    if free < needed + SPACE_MARGIN:
        raise StorageError(f"not enough space to write {path}: it needs {format_bytes(needed + SPACE_MARGIN)}, "
                           f"{folder} has {format_bytes(free)} free")


def write_atomically(path, data, cancelled=None):
    """Write ``data`` (bytes) to ``path`` so that ``path`` holds either its old content or all of ``data``,
    also after a crash; returns ``(size, SHA-256 hex digest)`` of ``data``.

    The free space is checked first; the bytes go to :func:`temporary_path` in chunks, are fsynced, renamed
    into place, and the folder is fsynced. Any error removes the temporary file; an ``OSError`` becomes a
    :class:`StorageError` naming ``path`` and the space it needs. When ``cancelled()`` turns true between
    chunks, the write stops before the rename with :class:`WriteCancelled`.
    """
    view = memoryview(data).cast("B")
    check_free_space(path, len(view))
    temporary = temporary_path(path)
    digest = hashlib.sha256()
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for start in range(0, len(view), WRITE_CHUNK):
                if cancelled is not None and cancelled():
                    raise WriteCancelled(path)
                chunk = view[start : start + WRITE_CHUNK]
                while chunk:
                    written = os.write(descriptor, chunk)
                    digest.update(chunk[:written])
                    chunk = chunk[written:]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if cancelled is not None and cancelled():
            raise WriteCancelled(path)
        os.replace(temporary, path)
        fsync_folder(os.path.dirname(path) or ".")
    except OSError as error:
        _remove_quietly(temporary)
        folder = os.path.dirname(path) or "."
        try:
            free = f", {format_bytes(shutil.disk_usage(folder).free)} free"
        except OSError:
            free = ""
        reason = "no space left on device" if error.errno in (errno.ENOSPC, errno.EDQUOT) else (
            error.strerror or str(error))
        raise StorageError(f"cannot write {path}: {reason} (it needs {format_bytes(len(view))}{free} on "
                           f"{folder})") from None
    except BaseException:
        _remove_quietly(temporary)
        raise
    return len(view), digest.hexdigest()


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


def serialize_weights(model):
    """The ``.weights.h5`` file ``model.save_weights`` would write (the optimizer's state included when the
    model is compiled), as bytes made in memory."""
    return serialize_snapshot(snapshot_state(model))


def snapshot_state(model):
    """What ``model.save_weights`` would write, as host copies of the arrays: ``[(path, metadata, [(key,
    array)])]`` in Keras's order (its ``_save_state`` walk). Taking it is the only part of a checkpoint a
    training step waits for (:class:`CheckpointWriter`): a copy from the device, no HDF5; the arrays are
    owned copies, so the next steps may change the variables at once."""
    import numpy as np
    from keras.src.saving.saving_lib import H5IOStore, _save_state

    class Recorder(H5IOStore):  # a store _save_state accepts, which keeps the arrays instead of writing HDF5
        def __init__(self):  # noqa: D401 — no file: nothing of H5IOStore's own state is used
            self.mode, self.entries = "w", []

        def __bool__(self):
            return True

        def make(self, path, metadata=None):
            self.entries.append((path, metadata, []))
            return self

        def __setitem__(self, key, value):
            from keras.src import backend

            array = backend.convert_to_numpy(value)
            self.entries[-1][2].append((key, array if array.flags.owndata else np.array(array, copy=True)))

        def close(self):
            pass

    if not model.built:
        raise ValueError(f"cannot save the weights of {model.name}: it is not built")
    recorder = Recorder()
    _save_state(model, weights_store=recorder, assets_store=None, inner_path="", visited_saveables=set())
    return recorder.entries


def snapshot_bytes(snapshot):
    """The arrays' bytes in a :func:`snapshot_state` (its ``.weights.h5`` file is slightly larger)."""
    return sum(array.nbytes for _, _, items in snapshot for _, array in items)


def serialize_snapshot(snapshot):
    """The ``.weights.h5`` file of a :func:`snapshot_state`, as bytes made in memory: the file
    ``model.save_weights`` writes, entry for entry."""
    from keras.src.saving.saving_lib import H5IOStore

    buffer = io.BytesIO()
    store = H5IOStore(buffer, mode="w")
    try:
        for path, metadata, items in snapshot:
            store.make(path, metadata=metadata)
            for key, array in items:
                store[key] = array
    finally:
        store.close()
    return buffer.getbuffer()


def save_weights(model, path, chief=True):
    """Write ``model``'s weights to ``path`` atomically on the chief. Every process of a multi-process job
    serialises them (Keras gathers distributed variables while saving, a collective step); the others
    discard the bytes."""
    data = serialize_weights(model)
    if chief:
        write_atomically(path, data)


# --- configuration ---------------------------------------------------------------------------------------

def save_config(config, path):
    write_atomically(path, json.dumps(asdict(config), indent=1).encode())


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


def checkpoint_identity(config):
    """What a checkpoint's variables depend on: :data:`MODEL_IDENTITY` and :data:`OPTIMIZER_IDENTITY`."""
    identity = {name: getattr(config, name) for name in MODEL_IDENTITY}
    identity["head_channels"] = identity["head_channels"] or FPN_CHANNELS
    identity["class_names"], identity["category_ids"] = list(config.class_names), list(config.category_ids)
    identity["optimizer"] = config.optimizer
    identity["loss_scaling"] = config.mixed_precision == "float16"
    return identity


def fingerprint(identity):
    """SHA-256 of an identity's canonical JSON."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


# --- checkpoints -----------------------------------------------------------------------------------------

def checkpoint_path(run_dir, step):
    return os.path.join(run_dir, "checkpoints", f"step-{step:06d}.weights.h5")


def manifest_path(run_dir, step):
    return os.path.join(run_dir, "checkpoints", f"step-{step:06d}.manifest.json")


def checkpoint_steps(run_dir):
    """The steps that have a checkpoint file or a manifest in ``run_dir``, newest first."""
    steps = set()
    for name in os.listdir(os.path.join(run_dir, "checkpoints")) if os.path.isdir(
            os.path.join(run_dir, "checkpoints")) else ():
        match = _STEP_FILE.fullmatch(name)
        if match:
            steps.add(int(match.group(1)))
    return sorted(steps, reverse=True)


def file_digest(path):
    """``(size, SHA-256 hex digest)`` of a file."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(WRITE_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def read_manifest(run_dir, step):
    """The manifest of the checkpoint at ``step`` as a dict, ``None`` if there is none; ``ValueError`` with
    the reason if it is unreadable."""
    path = manifest_path(run_dir, step)
    try:
        with open(path, "rb") as f:
            manifest = json.loads(f.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ValueError(f"its manifest is unreadable ({type(error).__name__}: {error})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict) or "step" not in manifest:
        raise ValueError("its manifest lacks the step or the files")
    return manifest


def verify_checkpoint(run_dir, step, identity=None, model_only=False):
    """Why the checkpoint at ``step`` cannot be trusted, or ``None`` when its manifest verifies: it names the
    step, ``identity``'s fingerprint (the model's part alone with ``model_only``) and each file's size and
    SHA-256. A checkpoint without a manifest is reported as such (see :func:`find_resumable`)."""
    try:
        manifest = read_manifest(run_dir, step)
    except ValueError as error:
        return str(error)
    if manifest is None:
        return "it has no manifest"
    if manifest["step"] != step or manifest.get("format") != MANIFEST_FORMAT:
        return f"its manifest describes step {manifest['step']} (format {manifest.get('format')})"
    if identity is not None:
        stored = manifest.get("identity", {})
        names = MODEL_IDENTITY if model_only else MODEL_IDENTITY + OPTIMIZER_IDENTITY
        differing = [name for name in names if stored.get(name) != identity[name]]
        if differing:
            return "it was written for another configuration (" + ", ".join(
                f"{name} {_short(stored.get(name))}, this run's {_short(identity[name])}" for name in differing) + ")"
    folder = os.path.join(run_dir, "checkpoints")
    for name, expected in manifest["files"].items():
        path = os.path.join(folder, name)
        if os.path.basename(name) != name or not os.path.isfile(path):
            return f"its file {name} is missing"
        size = os.path.getsize(path)
        if size != expected.get("bytes"):
            return f"{name} holds {size} bytes, its manifest says {expected.get('bytes')} (cut off while written)"
        if file_digest(path)[1] != expected.get("sha256"):
            return f"the SHA-256 of {name} differs from its manifest's (the file was damaged)"
    return None


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def save_checkpoint(detector, run_dir, step, config, chief=True):
    """Model and optimizer state at ``step``, written atomically with its manifest; then only the newest
    :data:`CHECKPOINTS_KEPT` verified checkpoints stay (:func:`write_checkpoint`). Returns the checkpoint's
    path. Every process of a multi-process job serialises; the chief writes."""
    data = serialize_weights(detector)
    if chief:
        write_checkpoint(run_dir, step, data, config)
    return checkpoint_path(run_dir, step)


def write_checkpoint(run_dir, step, data, config, cancelled=None):
    """Write the serialised checkpoint ``data`` of ``step`` and its manifest atomically, then rotate.

    On a full disk or a failing write it raises :class:`StorageError` naming the newest verified checkpoint
    that stays intact. ``cancelled`` (a callable) is asked between chunks (see :func:`write_atomically`).
    """
    path, manifest = checkpoint_path(run_dir, step), manifest_path(run_dir, step)
    try:
        _remove_quietly(manifest)  # an older manifest of this step never describes the new file
        size, sha256 = write_atomically(path, data, cancelled)
        identity = checkpoint_identity(config)
        content = {"format": MANIFEST_FORMAT, "step": step, "identity": identity, "fingerprint": fingerprint(identity),
                   "files": {os.path.basename(path): {"bytes": size, "sha256": sha256}}}
        write_atomically(manifest, json.dumps(content, indent=1).encode(), cancelled)
    except StorageError as error:
        raise _what_is_intact(error, run_dir, step) from None
    rotate_checkpoints(run_dir, step)


def _what_is_intact(error, run_dir, step):
    kept = [s for s in checkpoint_steps(run_dir) if s != step and os.path.isfile(manifest_path(run_dir, s))]
    intact = (f"the last checkpoint, {checkpoint_path(run_dir, kept[0])}, is intact: free space and continue "
              "with --resume") if kept else "no checkpoint was written before it"
    return StorageError(f"{error}; {intact}")


class WriteCancelled(Exception):
    """A background checkpoint write abandoned on a second Ctrl-C (its temporary file is removed)."""


class CheckpointWriter:
    """The checkpoints of a training run, written in a background thread (``background=True``) or at once.

    :meth:`save` copies the state to the host when it is called (:func:`snapshot_state`), so the checkpoint
    holds exactly that step even though training goes on, and checks the free space; a thread then
    serialises it to HDF5, writes the file, fsyncs, renames, writes the manifest and rotates
    (:func:`write_checkpoint`), while the next steps train. One write is in
    flight at a time: the next :meth:`save` and :meth:`wait` wait for it and raise its error. A
    ``KeyboardInterrupt`` while waiting (a second Ctrl-C) abandons the write, whose temporary file is
    removed, and is raised. Every process of a multi-process job takes the snapshot (a collective step);
    the chief writes. With ``background=False`` the state is serialised and written at once.
    """

    def __init__(self, run_dir, config, chief=True, background=True):
        self.run_dir, self.config, self.chief, self.background = run_dir, config, chief, background
        self._thread, self._error = None, None
        self._cancel = threading.Event()

    def save(self, detector, step):
        """Write the checkpoint of ``step``; returns its path."""
        self.wait()
        path = checkpoint_path(self.run_dir, step)
        if not self.background:
            data = serialize_weights(detector)
            if self.chief:
                write_checkpoint(self.run_dir, step, data, self.config)
            return path
        snapshot = snapshot_state(detector)  # what the step waits for: copies of the arrays, no HDF5
        if not self.chief:
            return path
        try:
            check_free_space(path, snapshot_bytes(snapshot))
        except StorageError as error:
            raise _what_is_intact(error, self.run_dir, step) from None
        self._cancel.clear()
        self._thread = threading.Thread(target=self._write, args=(step, snapshot), name=f"checkpoint-{step}",
                                        daemon=True)
        self._thread.start()
        return path

    def _write(self, step, snapshot):
        try:
            write_checkpoint(self.run_dir, step, serialize_snapshot(snapshot), self.config, self._cancel.is_set)
        except WriteCancelled:
            pass
        except BaseException as error:  # raised by the next save() or wait()
            self._error = error

    def wait(self):
        """Wait for the write in flight; raise its error."""
        thread = self._thread
        if thread is not None:
            try:
                thread.join()
            except BaseException:
                self._cancel.set()
                thread.join()
                self._thread = None
                raise
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def rotate_checkpoints(run_dir, newest):
    """Delete the checkpoints older than the :data:`CHECKPOINTS_KEPT` newest that have a manifest, up to
    ``newest`` (the manifest first, so that a crash in between leaves no manifest without its file)."""
    verified = [step for step in checkpoint_steps(run_dir)
                if step <= newest and os.path.isfile(manifest_path(run_dir, step))]
    if len(verified) < CHECKPOINTS_KEPT:
        return
    oldest_kept = verified[CHECKPOINTS_KEPT - 1]
    for step in checkpoint_steps(run_dir):
        if step < oldest_kept:
            _remove_quietly(manifest_path(run_dir, step))
            _remove_quietly(checkpoint_path(run_dir, step))


def latest_checkpoint(run_dir, config=None):
    """``(step, path)`` of the newest checkpoint of a run whose manifest verifies (against ``config``'s model
    when given), or ``(0, None)``."""
    identity = checkpoint_identity(config) if config is not None else None
    for step in checkpoint_steps(run_dir):
        if verify_checkpoint(run_dir, step, identity, model_only=True) is None:
            return step, checkpoint_path(run_dir, step)
    return 0, None


def load_checkpoint(detector, path, step, weights_only=False):
    """Load a checkpoint into a compiled ``detector``; the reason it failed, or ``None``.

    All of it (model and optimizer state), checking that every variable was read and that the optimizer's
    step counter is ``step``; or, with ``weights_only``, the model's variables alone, setting the step counter
    to ``step`` (the optimizer's moments stay zero).
    """
    from retinanet._keras import ops

    skip = [detector.optimizer] if weights_only else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            detector.load_weights(path, objects_to_skip=skip)
        except (ValueError, OSError, RuntimeError, KeyError) as error:  # h5py raises all of these on damage
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            return f"it does not load ({type(error).__name__}: {reason[:160]})"
    skipped = [str(w.message).strip().splitlines()[0] for w in caught
               if "skipping" in str(w.message).lower() or "could not" in str(w.message).lower()]
    if skipped:
        return f"not every variable loaded ({skipped[0][:160]})"
    if weights_only:
        detector.optimizer.iterations.assign(step)
        return None
    iterations = int(ops.convert_to_numpy(detector.optimizer.iterations))
    if iterations != step:
        return f"its optimizer state is incomplete (step counter {iterations}, expected {step})"
    return None


def find_resumable(detector, config, weights_only=False):
    """Load the newest usable checkpoint of ``config.run_dir`` into the compiled ``detector``; returns
    ``(step, path, notes)``, ``(0, None, notes)`` when the run has no checkpoint yet, where ``notes`` are
    the lines to show (one per skipped checkpoint, with its reason).

    A checkpoint is used when its manifest verifies (:func:`verify_checkpoint`) and it loads completely; one
    without a manifest when it loads completely (:func:`load_checkpoint`). With ``weights_only`` only the
    model's part must match and load. When checkpoints exist and none can be used, :class:`RunError`: a
    resumed run never starts again silently.
    """
    run_dir = config.run_dir
    identity = checkpoint_identity(config)
    notes, reasons = [], []
    for step in checkpoint_steps(run_dir):
        path = checkpoint_path(run_dir, step)
        reason = verify_checkpoint(run_dir, step, identity, model_only=weights_only)
        unverified = reason == "it has no manifest"
        if unverified and not os.path.isfile(path):
            reason = "its file is missing"
        elif reason is None or unverified:
            failed = load_checkpoint(detector, path, step, weights_only)
            if failed is None:
                if unverified:
                    notes.append(f"{path} has no manifest (cut off before it was written, or written by an older "
                                 "version): every variable loaded and its step counter matches, so it is used")
                return step, path, notes
            reason = f"{reason}, and {failed}" if unverified else failed
        notes.append(f"skipped {path}: {reason}")
        reasons.append(f"{os.path.basename(path)}: {reason}")
    if reasons:
        hint = "" if weights_only else (" (--resume-weights-only continues from the newest checkpoint whose model "
                                         "weights load, with a fresh optimizer state)")
        raise RunError(f"cannot resume {run_dir}: none of its checkpoints can be used ({'; '.join(reasons)}). "
                       f"Restore a checkpoint{hint}, or train again into a fresh --run-dir")
    return 0, None, notes


def load_trained_model(run_dir):
    """``(detector, config)`` of a finished run (its ``model.weights.h5``), or of its latest verified checkpoint."""
    config = load_run_config(run_dir)
    detector = build_detector(len(config.class_names), config.image_size, config.backbone, backbone_weights="none",
                              head_channels=config.head_channels or FPN_CHANNELS)
    weights = os.path.join(run_dir, "model.weights.h5")
    if os.path.isfile(weights):
        load_weights_of_run(detector.retinanet, weights, config, run_dir)
    else:
        _, latest = latest_checkpoint(run_dir, config)
        if latest is None:
            raise RunError(f"{run_dir} holds neither model.weights.h5 nor a verified checkpoint: its training has "
                           f"not saved anything yet; continue it with `train --resume --run-dir {run_dir}`")
        load_weights_of_run(detector, latest, config, run_dir)
    return detector, config


def load_weights_of_run(model, path, config, run_dir):
    """``model.load_weights(path)``, or :class:`RunError` naming the file when it holds weights of another
    configuration (a different backbone, class count or head) or is no weights file at all."""
    try:
        model.load_weights(path)
    except (ValueError, OSError, RuntimeError) as error:  # h5py raises RuntimeError on some damaged files
        summary = (f"{config.backbone} backbone, {config.head_channels or FPN_CHANNELS} channels, "
                   f"{len(config.class_names)} classes")
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RunError(f"{path} does not fit the model that {os.path.join(run_dir, 'config.json')} describes "
                       f"({summary}): it comes from another run or configuration, or is damaged ({reason[:160]}). "
                       "Put the run's own weights back, or train again into a fresh --run-dir") from None


# --- history ---------------------------------------------------------------------------------------------

def read_history(path, up_to_step):
    """``(rows, notes)``: the rows of ``history.csv`` up to ``up_to_step``, and lines to show about what was
    wrong with it. A cut or malformed last row (a crash while it was written) is dropped; a missing or
    empty file, or one ending before ``up_to_step``, is said to lack those steps' rows."""
    rows, notes = [], []
    if os.path.isfile(path):
        with open(path, newline="") as f:
            text = f.read()
        lines = text.splitlines(keepends=True)
        if lines and lines[0].strip() == ",".join(HISTORY_FIELDS):
            body = lines[1:]
            for number, line in enumerate(body):
                row = _parse_history_row(line)
                if row is None:
                    where = "its last row" if number == len(body) - 1 else f"row {number + 1} and the rest"
                    notes.append(f"{path}: dropped {where}, cut off or malformed ({line.strip()[:60]!r})")
                    break
                rows.append(row)
        elif lines:
            notes.append(f"{path}: not a history that `train` wrote (its header is {lines[0].strip()[:60]!r}); "
                         "it is started again")
    rows = [row for row in rows if row["step"] <= up_to_step]
    last = rows[-1]["step"] if rows else 0
    if up_to_step > last:
        state = "missing" if not os.path.isfile(path) else ("empty" if not rows else f"ends at step {last}")
        notes.append(f"{path} is {state}: the rows of steps {last + 1}-{up_to_step} are lost (training resumes "
                     f"at step {up_to_step}; the loss curves lack those steps)")
    return rows, notes


def _parse_history_row(line):
    if not line.endswith("\n"):
        return None
    values = line.strip().split(",")
    if len(values) != len(HISTORY_FIELDS):
        return None
    try:
        return {key: int(value) if key == "step" else float(value) for key, value in zip(HISTORY_FIELDS, values)}
    except ValueError:
        return None


class HistoryFile:
    """``history.csv``, rewritten atomically with the rows kept when a run (re)starts and then appended a
    row at a time, flushed. An error while appending is raised by the next :meth:`sync` (rows may be
    logged from a helper thread), which a checkpoint calls before writing."""

    def __init__(self, path, rows):
        self.path, self._error = path, None
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=HISTORY_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_atomically(path, text.getvalue().encode())
        self._file = open(path, "a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=HISTORY_FIELDS, lineterminator="\n")

    def append(self, row):
        if self._error is not None or self._file is None:
            return
        try:
            self._writer.writerow({key: row[key] for key in HISTORY_FIELDS})
            self._file.flush()
        except OSError as error:
            self._error = error

    def sync(self):
        """Make the rows so far durable; :class:`StorageError` if an append or this failed."""
        if self._file is None:
            return
        try:
            if self._error is None:
                self._file.flush()
                os.fsync(self._file.fileno())
        except OSError as error:
            self._error = error
        if self._error is not None:
            error, self._error = self._error, None
            raise StorageError(f"cannot write {self.path}: {error.strerror or error}") from None

    def close(self):
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None


def say(line):
    """One line about the run's files (a skipped checkpoint, a cut history), on stderr."""
    print(f"train: {line}", file=sys.stderr, flush=True)
