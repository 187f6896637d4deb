"""The sandbox a submission's Jupyter kernel runs in (``python jail.py SETTINGS CONNECTION_FILE``).

nbgrader starts this script (by path: it needs only the standard library) instead of ``ipykernel`` (see :mod:`retinanet.grading.sandbox`, which writes
the kernelspec). It runs as root for a moment, builds the kernel's view of the machine, drops every
privilege and then ``exec``s the real kernel, so the learner's code never runs with more than this:

* a private mount namespace in which the course repository, the grading output folder and the
  submissions folder are covered by empty read-only tmpfs mounts; only the virtual environment, the
  reference package (read-only) and the submission's own folder are mounted back, and every notebook in
  that folder reads as an empty file (it holds the restored hidden tests while the kernel runs);
* fresh, size-limited tmpfs mounts on ``/tmp``, ``/var/tmp`` and ``/dev/shm`` (thrown away afterwards);
* an unprivileged user id of its own (no capabilities, ``no_new_privs``), so it cannot write anywhere
  else, nor delete the read-only ``tests.py`` in its folder (the folder has the sticky bit);
* an environment reduced to locale, ``PATH`` and the TensorFlow/Keras/course variables;
* resource limits: ``RLIMIT_DATA`` (memory: an allocation beyond it raises ``MemoryError``; unlike
  ``RLIMIT_AS`` it leaves TensorFlow's large virtual reservations alone), file size, process count, no
  core dumps.

Network isolation is done one level up: the whole grading worker runs in its own network namespace.
Without root (``"isolate": false`` in the settings) only the resource limits and the environment apply.
"""

import ctypes
import json
import os
import resource
import shutil
import sys
import tempfile

CLONE_NEWNS = 0x00020000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS = 38

SAFE_VARIABLES = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM", "VIRTUAL_ENV")
SAFE_PREFIXES = ("LC_", "JPY_", "RETINANET_", "TF_", "KERAS_", "OMP_", "MKL_")
"""The only environment variables the kernel inherits (plus the settings' own)."""

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"sandbox: {what} failed: {os.strerror(errno)}")


def _mount(source, target, fstype, flags, data=None):
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _bind(source, target, read_only):
    _mount(source, target, None, MS_BIND | MS_REC)
    if read_only:
        _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)


PRIVATE_TEMPORARY_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")
"""Replaced by fresh, size-limited tmpfs mounts inside the sandbox."""


def _private_views(hide, keep, tmp_mb):
    """Fresh tmpfs on the temporary folders; each ``hide`` folder covered by an empty read-only tmpfs;
    then the ``keep`` paths (``(path, read_only)``) mounted back where they were."""
    staging = tempfile.mkdtemp(prefix="grading-jail-", dir="/dev")
    staged = []
    for index, (path, read_only) in enumerate(keep):
        slot = os.path.join(staging, str(index))
        os.mkdir(slot)
        _bind(path, slot, read_only=False)
        staged.append((slot, path, read_only))
    for tmp in PRIVATE_TEMPORARY_FOLDERS:
        if os.path.isdir(tmp):
            _mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_mb}m,mode=1777")
    covered = [path for path in hide if os.path.isdir(path)]  # those under /tmp are gone already
    for path in covered:
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for slot, path, read_only in staged:
        os.makedirs(path, exist_ok=True)
        _bind(slot, path, read_only)
        _check(_libc.umount2(slot.encode(), MNT_DETACH), f"umount {slot}")
    for path in covered:
        _mount(None, path, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    shutil.rmtree(staging, ignore_errors=True)


def _blank_notebooks(folder):
    """Make every notebook in the submission's folder read as empty inside the sandbox."""
    for name in os.listdir(folder):
        if name.endswith(".ipynb"):
            _bind("/dev/null", os.path.join(folder, name), read_only=True)


def _isolate(settings, folder, connection):
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    keep = [(path, True) for path in settings["keep_read_only"]] + [(folder, False)]
    _private_views(settings["hide"], keep, settings["tmp_mb"])
    uid = settings["uid"]
    os.chown(folder, 0, 0)
    os.chmod(folder, 0o1777)
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and not os.path.islink(path) and not name.endswith(".ipynb"):
            os.chown(path, 0, 0)
            os.chmod(path, 0o444)
    _blank_notebooks(folder)
    home = "/tmp/home"
    os.makedirs(home)
    os.chown(home, uid, uid)
    connection_file = "/tmp/kernel-connection.json"
    with open(connection_file, "w") as handle:
        handle.write(connection)
    os.chown(connection_file, uid, uid)
    os.environ["HOME"] = home
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    return connection_file


def _limit_resources(settings):
    for limit, value in ((resource.RLIMIT_DATA, settings["memory_bytes"]),
                         (resource.RLIMIT_FSIZE, settings["file_size_bytes"]),
                         (resource.RLIMIT_CORE, 0)):
        hard = resource.getrlimit(limit)[1]
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)  # raising a hard limit needs CAP_SYS_RESOURCE, which containers drop
        resource.setrlimit(limit, (value, value))
    if settings["isolate"]:  # per user id: only meaningful once the kernel has a user id of its own
        resource.setrlimit(resource.RLIMIT_NPROC, (settings["max_processes"], settings["max_processes"]))


def main(argv):
    if len(argv) < 2:
        raise SystemExit("usage: python jail.py SETTINGS.json CONNECTION_FILE [kernel args]")
    settings_path, connection_file, *kernel_args = argv
    with open(settings_path) as handle:
        settings = json.load(handle)
    with open(connection_file) as handle:
        connection = handle.read()
    folder = os.getcwd()
    for name in list(os.environ):  # the grader's environment may hold secrets the learner could print
        if name not in SAFE_VARIABLES and not name.startswith(SAFE_PREFIXES):
            del os.environ[name]
    os.environ.update(settings["environment"])
    _limit_resources(settings)
    if settings["isolate"]:
        connection_file = _isolate(settings, folder, connection)
    os.chdir(folder)
    python = settings["python"]
    os.execv(python, [python, "-m", "ipykernel_launcher", "-f", connection_file, *kernel_args])


if __name__ == "__main__":
    main(sys.argv[1:])
