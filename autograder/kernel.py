"""A Jupyter kernel manager that starts every kernel in the sandbox (:mod:`autograder.sandbox`).

The kernel has no network, so it talks to nbgrader over ZeroMQ's ``ipc`` transport: Unix sockets in a
private runtime folder that is the only host folder the kernel may write to, and only while it starts.
As soon as the kernel answers, :meth:`SandboxKernelManager.lock_sockets` takes that right away again,
before any learner code runs. Interrupts go as messages (a signal could not cross the sandbox's PID
namespace). When the kernel dies, :meth:`SandboxKernelManager.exit_signal` says how.
"""

import json
import os
import shutil
import signal
import sys
import tempfile

from jupyter_client.manager import AsyncKernelManager

from .sandbox import SOCKETS, Sandbox, launcher_settings, running_as_root, write_settings


class SandboxKernelManager(AsyncKernelManager):
    """``AsyncKernelManager`` whose kernels run in bubblewrap, configured by ``c.Sandbox`` (see sandbox.py)."""

    runtime = None  # this kernel's private folder: settings, connection file, sockets, exit status

    @property
    def sandbox(self):
        return Sandbox(config=self.config)

    @property
    def kernel_spec(self):
        spec = super().kernel_spec
        if spec is not None:
            spec.interrupt_mode = "message"
        return spec

    async def _async_pre_start_kernel(self, **kwargs):
        self.runtime = tempfile.mkdtemp(prefix="ag-")  # short: a socket's path has at most 107 bytes
        os.chmod(self.runtime, 0o755)  # its sockets folder is mounted into the sandbox at the same path
        sockets = os.path.join(self.runtime, SOCKETS)
        os.mkdir(sockets, 0o700)
        settings = launcher_settings(self.sandbox, self.runtime, os.path.join(self.runtime, "connection.json"))
        if settings["uid"] is not None:
            os.chown(sockets, settings["uid"], settings["uid"])
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
        return [sys.executable, "-I", "-m", "autograder.launch", path, "--", *command]

    def lock_sockets(self):
        """Make the sockets folder read-only for the kernel (call once it answered, before any cell runs)."""
        sockets = os.path.join(self.runtime, SOCKETS)
        if running_as_root():
            os.chown(sockets, 0, 0)
            os.chmod(sockets, 0o755)
        else:  # the kernel keeps our user id: it could undo this; the README says so
            os.chmod(sockets, 0o555)

    def exit_signal(self):
        """The signal that ended the kernel (e.g. ``signal.SIGXCPU``), or None; from bubblewrap's status."""
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

    async def _async_cleanup_resources(self, restart=False):
        await super()._async_cleanup_resources(restart=restart)
        if self.runtime and not restart:
            shutil.rmtree(self.runtime, ignore_errors=True)

    cleanup_resources = _async_cleanup_resources
