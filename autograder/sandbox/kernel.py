"""A Jupyter kernel manager that starts every kernel in the sandbox (:mod:`autograder.sandbox.sandbox`).

The kernel has no network, so it talks to nbgrader over ZeroMQ's ``ipc`` transport: Unix sockets in a
private runtime folder (:mod:`autograder.sandbox.runtime`) whose sockets folder is the only host folder the
kernel may write to, and only while it starts. As root that folder is a tmpfs of 64 KiB
(:data:`autograder.sandbox.sandbox.SOCKETS_FOLDER_BYTES`): all the kernel can ever write on the host. As soon as
the kernel answers (its client's ``wait_for_ready``), :meth:`SandboxKernelManager.lock_sockets` takes the
right to write there away again, before any learner cell runs, and removes anything but the sockets.

The kernel and every process it starts share a cgroup (:mod:`autograder.sandbox.cgroups`) with the submission's
memory, process and CPU-time limits, made here and watched by the launcher (:mod:`autograder.sandbox.launch`).
Interrupts go as messages (a signal could not cross the sandbox's PID namespace). When the kernel dies,
:meth:`SandboxKernelManager.exit_signal` says how and :meth:`SandboxKernelManager.limit_hit` which limit
of its group stopped it. When the kernel is shut down, its group, its folder and (plain nbgrader) its
uid lease go.
"""

import asyncio
import json
import os
import signal
import shutil
import stat
import sys
import time

from jupyter_client.manager import AsyncKernelManager

from . import cgroups, launch, runtime
from .sandbox import (SOCKETS, SOCKETS_FOLDER_BYTES, Sandbox, launcher_settings, lease_uid, running_as_root,
                      write_settings)

LIMITS = ("cpu", "memory", "pids")
LAUNCHER_STOP_SECONDS = 3
"""How long a kernel's launcher may take to stop its group and report after SIGTERM."""


class SandboxKernelManager(AsyncKernelManager):
    """``AsyncKernelManager`` whose kernels run in bubblewrap, configured by ``c.Sandbox`` (see sandbox.py)."""

    runtime = None  # this kernel's private folder: settings, connection file, sockets, exit status
    group = None  # its cgroup (autograder.sandbox.cgroups.Group), or None where limits are per process only
    _lease = None  # plain nbgrader as root: the uid this kernel leased
    _warned = set()

    @property
    def sandbox(self):
        return Sandbox(config=self.config)

    @property
    def kernel_spec(self):
        spec = super().kernel_spec
        if spec is not None:
            spec.interrupt_mode = "message"
        return spec

    def _scope(self, sandbox):
        if sandbox.runtime_folder:
            return runtime.Scope(sandbox.runtime_folder, sandbox.cgroup_scope)
        return runtime.own_run(sandbox.cgroups).root_scope()

    def _make_group(self, sandbox, scope):
        if not sandbox.cgroups:
            return None
        backend, line = cgroups.backend()
        if backend is None:
            if line not in self._warned:
                self._warned.add(line)
                self.log.warning("autograder: %s", line)
            return None
        if not scope.cgroup:  # the driver found no cgroup to use, or this process has none of its own yet
            scope = runtime.own_run(sandbox.cgroups).root_scope()
        name = f"{scope.cgroup}/{os.path.basename(self.runtime)}"
        return backend.create(name, int(sandbox.memory_gb * 2**30), sandbox.max_processes)

    async def _async_pre_start_kernel(self, **kwargs):
        sandbox = self.sandbox
        scope = self._scope(sandbox)
        self.runtime = runtime.kernel_folder(scope)  # short: a socket's path has at most 107 bytes
        try:
            sockets = os.path.join(self.runtime, SOCKETS)
            os.mkdir(sockets, 0o700)
            uid = sandbox.uid
            if running_as_root() and uid is None:
                self._lease = lease_uid()
                uid = self._lease.uid
            if running_as_root():
                runtime.mount_tmpfs(sockets, SOCKETS_FOLDER_BYTES, uid)
            self.group = self._make_group(sandbox, scope)
        except BaseException:
            self._release()
            raise
        settings = launcher_settings(sandbox, self.runtime, os.path.join(self.runtime, "connection.json"), uid=uid,
                                     group=self.group)
        self.transport = "ipc"
        self.ip = os.path.join(sockets, "kernel")
        self.connection_file = settings["connection_file"]
        self._settings = settings
        return await super()._async_pre_start_kernel(**kwargs)

    def format_kernel_cmd(self, extra_arguments=None):
        command = super().format_kernel_cmd(extra_arguments)
        command = [os.path.realpath(self.connection_file) if arg == self.connection_file else arg for arg in command]
        self._settings["connection_file"] = os.path.realpath(self.connection_file)
        path = os.path.join(self.runtime, "sandbox.json")
        if os.path.exists(path):
            os.unlink(path)
        write_settings(path, self._settings)
        return [sys.executable, "-I", "-m", launch.__name__, path, "--", *command]

    def client(self, **kwargs):
        """The kernel's client; once it saw the kernel answer (``wait_for_ready``), the sockets are locked."""
        kc = super().client(**kwargs)
        wait_for_ready = kc.wait_for_ready

        async def wait_then_lock(*args, **kw):
            try:
                return await wait_for_ready(*args, **kw)
            finally:
                self.lock_sockets()

        kc.wait_for_ready = wait_then_lock
        return kc

    def lock_sockets(self):
        """Make the sockets folder read-only for the kernel and remove all but its sockets (called by the
        client once the kernel answered, before any cell runs; again is harmless)."""
        if not self.runtime:
            return
        sockets = os.path.join(self.runtime, SOCKETS)
        try:
            if running_as_root():
                os.chown(sockets, 0, 0, follow_symlinks=False)
                os.chmod(sockets, 0o755, follow_symlinks=False)
            else:  # the kernel keeps our user id: it could undo this; the README says so
                os.chmod(sockets, 0o555)
                return
            for entry in os.scandir(sockets):
                if stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
        except OSError as error:
            self.log.warning("autograder: could not lock the kernel's sockets folder %s: %s", sockets, error)

    def _limit_record(self):
        try:
            with open(os.path.join(self.runtime, "limit.json")) as handle:
                record = json.load(handle)
        except (OSError, TypeError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def limit_hit(self):
        """Which limit of the submission's group the kernel ran into: ``'cpu'`` (its CPU-time budget: the
        group was stopped), ``'memory'`` (its memory limit: the group was stopped), ``'pids'`` (a fork was
        refused; nothing was stopped), or None. Where limits are per process only (no cgroup), None."""
        record = self._limit_record()
        hit = record.get("hit")
        if hit in LIMITS:
            return hit
        if self.group is not None:  # the launcher records as it goes; read the group itself as well
            try:
                if self.group.oom_kills():
                    return "memory"
                if self.group.forks_refused():
                    return "pids"
            except OSError:
                pass
        return None

    def exit_signal(self):
        """The signal that ended the kernel (e.g. ``signal.SIGXCPU``), or None: ``SIGXCPU`` when its group
        used up the CPU-time budget, ``SIGKILL`` when it passed the memory limit, else from bubblewrap's
        exit status."""
        hit = self._limit_record().get("hit")
        if hit == "cpu":
            return signal.SIGXCPU
        if hit == "memory":
            return signal.SIGKILL
        try:
            with open(os.path.join(self.runtime, "status.json")) as handle:
                text = handle.read()
        except (OSError, TypeError):
            return None
        codes = [json.loads(line).get("exit-code") for line in text.splitlines() if line.strip().startswith("{")]
        codes = [code for code in codes if code is not None]
        if codes and codes[-1] > 128:
            try:
                return signal.Signals(codes[-1] - 128)
            except ValueError:
                return None
        return None

    def _release(self):
        """Stop what is left of the kernel's group, remove it, the runtime folder and the uid lease."""
        if self.group is not None:
            if not self.group.remove():
                self.log.warning("autograder: the kernel's cgroup %s could not be removed", self.group.folders)
        if self.runtime:
            runtime.remove_folder(self.runtime)
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    async def _async_kill_kernel(self, restart=False):
        """Stop the kernel through its launcher first (SIGTERM): the launcher stops the kernel's whole group and
        writes what the group used to the worker's log; only a launcher that does not end within
        :data:`LAUNCHER_STOP_SECONDS` is killed with its process group (jupyter_client's own kill)."""
        process = getattr(self.provisioner, "process", None) if self.has_kernel else None
        if process is not None and process.poll() is None:
            process.terminate()
            deadline = time.monotonic() + LAUNCHER_STOP_SECONDS
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        await super()._async_kill_kernel(restart=restart)

    async def _async_cleanup_resources(self, restart=False):
        await super()._async_cleanup_resources(restart=restart)
        if self.runtime and not restart:
            self._release()

    cleanup_resources = _async_cleanup_resources
