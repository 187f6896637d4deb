"""The allow-list sandbox every graded kernel runs in: bubblewrap, configured from nbgrader's config.

`bubblewrap <https://github.com/containers/bubblewrap>`_ (Debian's ``bubblewrap`` package, the sandbox of
Flatpak) starts the kernel in a new, empty root filesystem with fresh mount, PID, network, IPC and UTS
namespaces, and mounts into it only what is listed here:

* read-only: ``/usr`` (the system's programs and libraries), a few files of ``/etc``, the Python
  environment (the virtual environment and the Python it was made from) and the course's packages
  (:attr:`Sandbox.packages`, e.g. the reference package that ``tests.py`` compares against);
* read-write: its working folder ``/home/learner`` (a size-capped tmpfs holding, read-only, the files
  of :attr:`Sandbox.work_files` such as ``tests.py``, and copies of the learner's own extra files), a
  small ``/tmp`` and ``/dev/shm`` (tmpfs), and the folder of its ZeroMQ sockets (as root a 64 KiB tmpfs;
  locked once the kernel answered);
* its own ``/proc`` (only its own processes) and a minimal ``/dev``; no network interface but loopback.

As root, the kernel also gets a user id of its own (no capabilities, no supplementary groups), leased
for the run from a range no other grading run on the machine uses at the same time (:func:`lease_uid`);
without root, bubblewrap runs in an unprivileged user namespace and the kernel keeps your user id.
Memory, processes and CPU time are limited per submission, for the kernel and all its children together,
where a writable cgroup exists (:mod:`autograder.sandbox.cgroups`); rlimits apply to every process in any case
(memory ``RLIMIT_DATA``, CPU seconds, file size, no core dumps) and are all there is without a cgroup
(then, as root, with ``RLIMIT_NPROC`` on the kernel's user id). :mod:`autograder.sandbox.kernel` starts kernels
through :mod:`autograder.sandbox.launch`, which turns the settings written here into the bubblewrap command line
and watches the kernel's group.
"""

import errno
import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.util import find_spec

from traitlets import Bool, Dict, Float, Integer, List, Unicode
from traitlets.config import Configurable

FIRST_SANDBOX_UID = 61000
SANDBOX_UIDS = 1000
"""Kernels run as user ids FIRST_SANDBOX_UID … FIRST_SANDBOX_UID + SANDBOX_UIDS - 1 (no account needed),
each leased by one grading run at a time (:func:`lease_uid`)."""

UID_LOCKS = ("/run/autograder/uids", "/tmp/autograder-uids")
"""Where the uid leases' lock files live (the first folder root can use)."""

SOCKETS_FOLDER_BYTES = 64 * 2**10
"""As root, a kernel's sockets folder is a tmpfs of this size: all a kernel can ever write on the host."""

WORK_FOLDER = "/home/learner"
"""The kernel's working folder and home inside the sandbox."""

SOCKETS = "s"
"""The sub-folder of a kernel's private runtime folder that holds its ZeroMQ sockets."""

KERNEL_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow's C++ start-up logging off
    "MPLBACKEND": "Agg",  # figures render without a display
    "RETINANET_COURSE_QUICK": "1",  # 04-training's training cell as a 1-step smoke run (nothing graded)
    # One core per kernel: the driver already runs one submission per core, and TensorFlow's default
    # thread pools (one thread per core each) would make concurrent kernels fight over the same cores.
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}
"""Set in every graded kernel unless the grader's own environment sets them already."""

PASSED_VARIABLES = ("LANG", "LANGUAGE", "TZ", "TERM")
PASSED_PREFIXES = ("LC_", "RETINANET_", "TF_CPP_", "TF_NUM_", "TF_ENABLE_", "TF_XLA_", "KERAS_", "OMP_", "MKL_")
"""The only variables of the grader's environment a kernel inherits: never credentials or paths."""

ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/nsswitch.conf")
"""System files a Python kernel reads; nothing else of /etc is visible."""


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Defaults suit the course's TensorFlow notebooks on a CPU."""

    wall_seconds: int = 900  # one submission (a student's assignment); beyond it: status wall-timeout
    cell_timeout: int = 300  # one cell; beyond it the cell is interrupted: status cell-timeout
    memory_gb: float = 6.0  # the kernel and its children together (cgroup), and RLIMIT_DATA of each process
    cpu_seconds: int = 900  # CPU time of the kernel and its children together; beyond it: status cpu-limit
    worker_memory_gb: float = 4.0  # RLIMIT_DATA of nbgrader itself (floods of output)
    work_mb: int = 256  # the kernel's working folder (tmpfs)
    tmp_mb: int = 256  # the kernel's /tmp and /dev/shm (tmpfs each)
    file_size_mb: int = 128  # largest file the kernel may write
    max_processes: int = 512  # processes and threads of the kernel and its children (TensorFlow starts many)


class Sandbox(Configurable):
    """nbgrader-side settings of the kernel sandbox (``c.Sandbox.…`` in ``nbgrader_config.py``)."""

    enabled = Bool(True, help="Run graded kernels in the sandbox. Turn off only for notebooks you trust.").tag(
        config=True)
    uid = Integer(None, allow_none=True, help="The kernel's user id when running as root (default: one leased "
                  "for the kernel, see lease_uid; the class driver gives every concurrent worker one it leased "
                  "for the run)").tag(config=True)
    packages = List(Unicode(), help="Importable packages and modules the kernel may read (e.g. the reference "
                    "package the checks compare with); found with importlib, mounted read-only").tag(config=True)
    work_files = Dict(value_trait=Unicode(), help="{name in the working folder: file on this machine}, "
                      "mounted read-only (e.g. {'tests.py': '/course/tests.py'})").tag(config=True)
    memory_gb = Float(Limits.memory_gb, help="memory of the kernel and its children together (cgroup), "
                      "and RLIMIT_DATA of each process").tag(config=True)
    cpu_seconds = Integer(Limits.cpu_seconds, help="CPU seconds of the kernel and its children together "
                          "(cgroup), and RLIMIT_CPU of each process").tag(config=True)
    work_mb = Integer(Limits.work_mb, help="size of the working folder (tmpfs)").tag(config=True)
    tmp_mb = Integer(Limits.tmp_mb, help="size of /tmp and of /dev/shm (tmpfs each)").tag(config=True)
    file_size_mb = Integer(Limits.file_size_mb, help="RLIMIT_FSIZE of the kernel").tag(config=True)
    max_processes = Integer(Limits.max_processes, help="processes and threads of the kernel and its children "
                            "(cgroup pids.max; without a cgroup, as root, RLIMIT_NPROC of the kernel's own user id)").tag(
        config=True)
    cgroups = Bool(True, help="Limit memory, processes and CPU time per kernel with its children, with a "
                   "cgroup where one is writable (else rlimits per process only)").tag(config=True)
    runtime_folder = Unicode("", help="Folder in which kernels' runtime folders (sockets, settings) are made; "
                             "the class driver gives each worker its own and removes it when the worker ends. "
                             "Default: a folder of this process in the temporary folder").tag(config=True)
    cgroup_scope = Unicode("", help="cgroup (under the grader's own cgroup, in autograder/) in which each "
                           "kernel's group is made; default: run-<pid>-<start>-<n> of this process").tag(config=True)
    learner_files_mb = Integer(20, help="total size of the learner's own extra files copied into the working "
                               "folder (regular files next to the notebook; links and others are skipped)").tag(
        config=True)


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or not permitted here."""


def running_as_root():
    return os.geteuid() == 0


@functools.lru_cache(maxsize=None)
def check_support():
    """Raise :class:`SandboxUnavailable` with a one-line reason if kernels cannot be sandboxed here (probed
    once per process)."""
    if shutil.which("bwrap") is None:
        raise SandboxUnavailable("bubblewrap is not installed: run `apt-get install bubblewrap` (or `make sandbox`)")
    if running_as_root() and shutil.which("setpriv") is None:
        raise SandboxUnavailable("util-linux 'setpriv' is missing (it gives the kernel its own user id)")
    probe = subprocess.run(["bwrap", *namespace_options(), "--ro-bind", "/", "/", "--", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        reason = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else f"exit code {probe.returncode}"
        raise SandboxUnavailable(f"bubblewrap cannot create namespaces here ({reason}); run as root, or allow "
                                 "unprivileged user namespaces")


def describe(cgroups=True):
    """One line for summaries: what the sandbox gives a kernel on this machine."""
    from .cgroups import backend

    found, _ = backend() if cgroups else (None, "")
    limits = f"{found.describe()} limits per submission, rlimits" if found else "rlimits per process only"
    if running_as_root():
        return f"bubblewrap: allow-list filesystem, own user id, no network, own PID namespace, {limits}"
    return (f"bubblewrap (user namespace): allow-list filesystem, your user id, no network, own PID namespace, "
            f"{limits}")


class UidLease:
    """A sandbox user id held by this process (and the processes it passes :attr:`fd` to) until released.

    The lease is an exclusive ``flock`` on the uid's lock file: the kernel drops it when every process
    holding the file descriptor has ended, however it ended, so a crashed run's uids are free again at
    once and never leased twice while one of its workers still runs."""

    def __init__(self, uid, fd):
        self.uid, self.fd = uid, fd

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _lock_folder():
    for folder in UID_LOCKS:
        try:
            os.makedirs(folder, mode=0o755, exist_ok=True)
            info = os.lstat(folder)
        except OSError:
            continue
        if info.st_uid == os.geteuid() and os.path.isdir(folder) and not os.path.islink(folder) \
                and not info.st_mode & 0o022:
            return folder
    raise SandboxUnavailable(f"no folder for the sandbox uids' lock files ({' or '.join(UID_LOCKS)}): "
                             "it must be root's and writable by root only")


def lease_uid():
    """A :class:`UidLease` on the first sandbox uid no other process holds (raises if all are taken)."""
    folder = _lock_folder()
    for uid in range(FIRST_SANDBOX_UID, FIRST_SANDBOX_UID + SANDBOX_UIDS):
        descriptor = os.open(os.path.join(folder, str(uid)), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(descriptor)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                continue
            raise
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())  # for whoever wonders who holds it
        return UidLease(uid, descriptor)
    raise SandboxUnavailable(f"all {SANDBOX_UIDS} sandbox user ids from {FIRST_SANDBOX_UID} are in use")


def namespace_options():
    """bubblewrap's namespace options for this user: without root, an unprivileged user namespace too."""
    options = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--unshare-cgroup-try",
               "--hostname", "sandbox", "--die-with-parent", "--new-session"]
    if not running_as_root():
        options += ["--unshare-user", "--disable-userns"]
    return options


def module_paths(names):
    """Files and folders of importable ``names`` (packages: their folder; modules: their file), unimported."""
    paths = []
    for name in names:
        spec = find_spec(name)
        if spec is None:
            raise SandboxUnavailable(f"Sandbox.packages names {name!r}, which this Python cannot import")
        paths += list(spec.submodule_search_locations or []) or [spec.origin]
    return paths


def python_paths():
    """The Python environment: this virtual environment and the installation it was made from."""
    return [sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))]


def read_only_mounts(paths):
    """``[(source, destination)]`` mounting each path at itself, and at its real path where that differs."""
    mounts = []
    for path in paths:
        path = os.path.abspath(path)
        real = os.path.realpath(path)
        for destination in (real, path):
            if (real, destination) not in mounts:
                mounts.append((real, destination))
    return sorted(mounts, key=lambda mount: mount[1])


def kernel_environment(environ):
    """The kernel's environment: the grader's locale and course variables, never anything else."""
    passed = {k: v for k, v in environ.items() if k in PASSED_VARIABLES or k.startswith(PASSED_PREFIXES)}
    for name, value in KERNEL_ENVIRONMENT.items():
        passed.setdefault(name, value)
    python_bin = os.path.dirname(sys.executable)
    passed.update(HOME=WORK_FOLDER, USER="learner", LOGNAME="learner", PATH=f"{python_bin}:/usr/bin:/bin",
                  MPLCONFIGDIR=os.path.join(WORK_FOLDER, ".config", "matplotlib"),
                  JPY_PARENT_PID="1")  # ipykernel: no parent to poll (pid 1 is the sandbox's), no banner
    return passed


def launcher_settings(sandbox, runtime, connection_file, uid=None, group=None):
    """The launcher's settings for one kernel (see :mod:`autograder.sandbox.launch`), from the config ``sandbox``:
    as root it runs as ``uid`` (default: ``sandbox.uid`` or the first sandbox uid), in cgroup ``group``
    (an :class:`autograder.sandbox.cgroups.Group`) if one is given."""
    if uid is None:
        uid = sandbox.uid if sandbox.uid is not None else FIRST_SANDBOX_UID
    return {
        "uid": uid if running_as_root() else None,
        "runtime": runtime,
        "group": group.to_json() if group is not None else None,
        "limit_file": os.path.join(runtime, "limit.json"),
        "read_only": read_only_mounts(python_paths() + module_paths(sandbox.packages)),
        "work_files": {name: os.path.realpath(path) for name, path in sandbox.work_files.items()},
        "sockets": os.path.join(runtime, SOCKETS),
        "connection_file": connection_file,
        "status_file": os.path.join(runtime, "status.json"),
        "environment": kernel_environment(os.environ),
        "memory_bytes": int(sandbox.memory_gb * 2**30),
        "cpu_seconds": sandbox.cpu_seconds,
        "file_size_bytes": sandbox.file_size_mb * 2**20,
        "max_processes": sandbox.max_processes,
        "work_bytes": sandbox.work_mb * 2**20,
        "tmp_bytes": sandbox.tmp_mb * 2**20,
        "learner_files_bytes": sandbox.learner_files_mb * 2**20,
    }


def write_settings(path, settings):
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(settings, handle, indent=1)
