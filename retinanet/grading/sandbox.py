"""Limits for one submission's grading worker, and the kernelspec that puts the kernel in the jail.

Each submission is graded in a course folder of its own (``<out>/workers/<student>/<assignment>``) by a
worker process (:mod:`retinanet.grading.worker`). With root and util-linux ``unshare`` the worker runs in new network
and PID namespaces (no network; killing it kills every process it started, the kernel included), and
the kernel runs in :mod:`retinanet.grading.jail`. Without them grading still works, with the resource
limits only; the summary says which mode was used.
"""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

KERNEL_NAME = "retinanet-grading-sandbox"
HERE = os.path.dirname(os.path.abspath(__file__))
# Both run by path, so that Python does not execute retinanet/__init__.py (it imports TensorFlow).
JAIL_SCRIPT = os.path.join(HERE, "jail.py")
WORKER_SCRIPT = os.path.join(HERE, "worker.py")
FIRST_SANDBOX_UID = 61000
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


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Defaults suit the course's TensorFlow notebooks on a CPU."""

    wall_seconds: int = 900  # one submission (a student's assignment); beyond it: status wall-timeout
    cell_timeout: int = 300  # one cell; beyond it the cell is interrupted: status cell-timeout
    memory_gb: float = 6.0  # RLIMIT_DATA of the kernel; beyond it allocations raise MemoryError
    worker_memory_gb: float = 4.0  # RLIMIT_DATA of nbgrader itself (floods of output)
    tmp_mb: int = 512  # the kernel's private /tmp
    file_size_mb: int = 256  # largest file the kernel may write
    max_processes: int = 4096  # threads count too (TensorFlow starts many)


def isolation_support():
    """``(True, "")`` when namespaces can be used here, else ``(False, why not)``."""
    if os.geteuid() != 0:
        return False, "not running as root, so no namespaces or separate user ids"
    if shutil.which("unshare") is None:
        return False, "util-linux 'unshare' is not installed"
    probe = subprocess.run(
        ["unshare", "--net", "--pid", "--fork", "--kill-child", "true"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return False, f"'unshare --net --pid' is not permitted here: {probe.stderr.strip()}"
    return True, ""


def sandbox_uid(index):
    """A user id of its own for the ``index``-th submission of the run (no account needed)."""
    return FIRST_SANDBOX_UID + index


def write_kernelspec(worker_root, *, isolate, uid, limits, hide, keep_read_only):
    """Write the jail settings and a kernelspec under ``worker_root/jupyter``; return JUPYTER_PATH."""
    settings = {
        "isolate": isolate,
        "uid": uid,
        "python": sys.executable,
        "hide": hide,
        "keep_read_only": keep_read_only,
        "memory_bytes": int(limits.memory_gb * 2**30),
        "file_size_bytes": limits.file_size_mb * 2**20,
        "tmp_mb": limits.tmp_mb,
        "max_processes": limits.max_processes,
        "environment": {name: os.environ.get(name, value) for name, value in KERNEL_ENVIRONMENT.items()},
    }
    jupyter_path = os.path.join(worker_root, "jupyter")
    spec_dir = os.path.join(jupyter_path, "kernels", KERNEL_NAME)
    os.makedirs(spec_dir, exist_ok=True)
    settings_path = os.path.join(worker_root, "jail.json")
    with open(settings_path, "w") as handle:
        json.dump(settings, handle, indent=1)
    spec = {
        "argv": [sys.executable, JAIL_SCRIPT, settings_path, "{connection_file}"],
        "display_name": "Python 3 (grading sandbox)",
        "language": "python",
    }
    with open(os.path.join(spec_dir, "kernel.json"), "w") as handle:
        json.dump(spec, handle, indent=1)
    return jupyter_path


def worker_command(isolate, worker_args):
    """The command line that starts a worker, wrapped in fresh network and PID namespaces if possible."""
    command = [sys.executable, WORKER_SCRIPT, *worker_args]
    if isolate:
        return ["unshare", "--net", "--pid", "--fork", "--kill-child", "--", *command]
    return command
