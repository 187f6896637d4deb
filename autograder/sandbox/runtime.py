"""The host-side things a grading run makes for its kernels, and their removal however the run ends.

Each kernel has a private *runtime folder* on the host (its settings, connection file, exit status and
its sockets folder: the one host folder the kernel may write to, see :mod:`autograder.sandbox.kernel`), a cgroup
(:mod:`autograder.sandbox.cgroups`) and, as root, a sandbox user id (:func:`autograder.sandbox.sandbox.lease_uid`).

A :class:`GradingRun` owns them for one run: a short folder ``<temp>/agr-XXXXXXXX`` (a Unix socket's path
has at most 107 bytes) with an ``owner.json`` naming its process, the run's cgroup ``run-<pid>-<start>-<n>``
and its uid leases. The class driver makes one and gives every worker a *scope* of it (``w<n>``: a folder
and a cgroup); when the worker ends, however it ended (normally, an exception, SIGTERM, SIGKILL), the
driver stops what is left in the scope's cgroup, unmounts and removes its folder. A plain ``nbgrader
autograde`` makes one for its own process (:func:`own_run`), removed at exit. Either way a new run first
removes what runs whose process is gone left behind (:func:`remove_stale`). The launcher of a kernel whose
grader is gone removes that kernel's group and folder itself (:mod:`autograder.sandbox.launch`).
"""

import atexit
import ctypes
import itertools
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass

from . import cgroups

RUN_PREFIX = "agr-"
OWNER = "owner.json"
MAX_SOCKET_PATH = 107
MNT_DETACH = 2
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8


def temp_parent():
    """The temporary folder, or /tmp where its path is too long for sockets below it."""
    parent = tempfile.gettempdir()
    return parent if len(parent) <= 40 else "/tmp"


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def mount_tmpfs(folder, size_bytes, uid, inodes=32):
    """Mount a tmpfs of ``size_bytes`` (at most ``inodes`` entries) at ``folder``, owned by ``uid`` (root only)."""
    options = f"size={size_bytes},nr_inodes={inodes},mode=0700,uid={uid},gid={uid}".encode()
    if _libc().mount(b"tmpfs", os.fsencode(folder), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount tmpfs at {folder}: {os.strerror(error)}")


def mounts_below(folder, mountinfo="/proc/self/mountinfo"):
    """Mount points at or below ``folder``, deepest first."""
    folder = os.path.realpath(folder)
    found = []
    try:
        with open(mountinfo) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return found
    for line in lines:
        point = cgroups._unescape(line.split()[4])
        if point == folder or point.startswith(folder.rstrip("/") + "/"):
            found.append(point)
    return sorted(set(found), key=len, reverse=True)


def remove_folder(folder):
    """Unmount whatever is mounted below ``folder`` (lazily), then remove it; never follows a link."""
    if not folder or not os.path.lexists(folder):
        return
    if os.path.islink(folder) or not os.path.isdir(folder):
        os.unlink(folder)
        return
    for point in mounts_below(folder):
        _libc().umount2(os.fsencode(point), MNT_DETACH)
    shutil.rmtree(folder, ignore_errors=True)


def _owner(folder):
    try:
        with open(os.path.join(folder, OWNER)) as handle:
            return json.load(handle)["run"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_stale(backend=None, parent=None):
    """Remove the runtime folders and cgroups of runs whose process is gone; what was removed."""
    removed = []
    parent = parent or temp_parent()
    try:
        entries = list(os.scandir(parent))
    except OSError:
        entries = []
    for entry in entries:
        if not entry.name.startswith(RUN_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        if entry.stat(follow_symlinks=False).st_uid != os.geteuid():
            continue
        owner = _owner(entry.path)
        if owner is not None and not cgroups.run_alive(owner):
            remove_folder(entry.path)
            removed.append(entry.path)
    if backend is not None:
        removed += backend.remove_stale_runs()
    return removed


@dataclass(frozen=True)
class Scope:
    """Where one worker's kernels get their runtime folders and cgroups (see :class:`GradingRun`)."""

    folder: str
    cgroup: str  # relative to the grader's cgroup's autograder/ folder; "" without cgroups


class GradingRun:
    """One grading run's runtime folder, cgroup and sandbox uids (see the module docstring)."""

    def __init__(self, *, uids=0, use_cgroups=True):
        self.name = cgroups.new_run_name()
        self.pid = os.getpid()
        self.backend, self.limits = cgroups.backend() if use_cgroups else (None, "limits per process (rlimits) only")
        remove_stale(self.backend)
        self.folder = tempfile.mkdtemp(prefix=RUN_PREFIX, dir=temp_parent())
        os.chmod(self.folder, 0o755)  # the sockets folders below are mounted into sandboxes at the same path
        with open(os.path.join(self.folder, OWNER), "w") as handle:
            json.dump({"run": self.name}, handle)
        self.leases = []
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.closed = False
        try:
            from .sandbox import lease_uid

            self.leases = [lease_uid() for _ in range(uids)]
        except BaseException:
            self.close()
            raise

    @property
    def uids(self):
        return [lease.uid for lease in self.leases]

    def lease_fd(self, uid):
        """The lock file descriptor of ``uid``'s lease (pass it to the process that uses the uid)."""
        return next(lease.fd for lease in self.leases if lease.uid == uid)

    def root_scope(self):
        return Scope(self.folder, self.name if self.backend else "")

    def scope(self):
        """A fresh scope for one worker: ``<run folder>/w<n>`` and cgroup ``run-…/w<n>``."""
        with self._lock:
            name = f"w{next(self._counter)}"
        folder = os.path.join(self.folder, name)
        os.mkdir(folder, 0o755)
        return Scope(folder, f"{self.name}/{name}" if self.backend else "")

    def clean_scope(self, scope):
        """Stop the processes left in ``scope``'s cgroup, remove its groups and its folder."""
        try:
            if self.backend is not None and scope.cgroup:
                self.backend.remove(scope.cgroup)
        finally:
            remove_folder(scope.folder)

    def close(self):
        """Remove everything the run made and release its uids."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.backend is not None:
                self.backend.remove(self.name)
            remove_folder(self.folder)
        finally:
            for lease in self.leases:
                lease.release()


_own = None
_own_lock = threading.Lock()


def own_run(use_cgroups=True):
    """This process's own :class:`GradingRun` (plain ``nbgrader autograde``), made once, removed at exit."""
    global _own
    with _own_lock:
        if _own is None or _own.closed or _own.pid != os.getpid():
            _own = GradingRun(use_cgroups=use_cgroups)
            atexit.register(_own.close)
        return _own


def kernel_folder(scope):
    """A new runtime folder for one kernel in ``scope`` (short enough for its sockets' paths)."""
    folder = tempfile.mkdtemp(prefix="k", dir=scope.folder)
    if len(os.path.join(folder, "s", "kernel-99")) >= MAX_SOCKET_PATH:
        os.rmdir(folder)
        raise OSError(f"the runtime folder {folder!r} is too long for Unix sockets (at most {MAX_SOCKET_PATH} bytes)")
    os.chmod(folder, 0o755)
    return folder
