"""One grader per grading folder at a time: ``OUT/grading.lock``.

``grade``, ``merge`` and ``export`` write the class gradebook, ``records.json``, ``grades.csv`` and the
feedback of a grading folder; two of them at once on one folder would each merge their own view, and the
files would disagree. So each takes :class:`FolderLock` on the folder first: ``fcntl.flock`` on an open
descriptor of ``OUT/grading.lock``, which the kernel releases when the descriptor closes, that is when the
process ends however it ends (a SIGKILL included). A dead holder never blocks anybody, and the file itself
is left in place: its presence means nothing, only the lock on it does. The holder writes its process id,
host, start time and command into the file, so whoever finds the folder taken is told who holds it.

The descriptor is close-on-exec and never passed to a worker: the lock lives exactly as long as the
grader's own process.
"""

import datetime
import fcntl
import json
import os
import socket
import sys
import time

from ..course import GradingError, GradingInterrupted

LOCK_NAME = "grading.lock"
WAIT_POLL_SECONDS = 0.25


class FolderBusy(GradingError):
    """Another grader holds the grading folder (exit code 2, like every misuse)."""


def _holder_text(info):
    if not info:
        return "another grader (it has not said who yet)"
    return (f"pid {info.get('pid', '?')} on {info.get('host', '?')}, started {info.get('started', '?')}"
            + (f" ({info['command']})" if info.get("command") else ""))


class FolderLock:
    """The exclusive right to write grading folder ``out`` while this object is held (a context manager).

    ``wait``: when another grader holds it, wait for it (saying so once on stderr) instead of refusing;
    ``stop``: a callable; while waiting, when it returns true (Ctrl-C), :meth:`acquire` gives up (raises
    :class:`~autograder.course.GradingInterrupted`) without ever having touched the folder."""

    def __init__(self, out, *, wait=False, stop=None, what="grade"):
        self.path = os.path.join(out, LOCK_NAME)
        self.wait, self.stop, self.what = wait, stop or (lambda: False), what
        self.fd = None

    def holder(self):
        """The holder's ``{"pid", "host", "started", "command"}`` as it wrote them, or ``{}``."""
        try:
            with open(self.path, "rb") as handle:
                info = json.loads(handle.read(4096) or b"{}")
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def _open(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            os.fchmod(fd, 0o644)
        except OSError:
            pass
        return fd

    def _try(self, fd):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _busy_message(self):
        hint = ", or pass --wait to grade after it" if self.what == "grade" else ""
        return (f"{os.path.dirname(self.path)} is being graded by {_holder_text(self._read_holder())}; wait for it "
                f"to finish{hint} (lock: {self.path})")

    def _read_holder(self):
        for _ in range(8):  # the holder writes who it is right after taking the lock
            info = self.holder()
            if info:
                return info
            time.sleep(0.05)
        return {}

    def acquire(self):
        try:
            fd = self._open()
        except OSError as error:
            raise GradingError(f"cannot open the grading folder's lock {self.path}: {error}") from None
        try:
            if not self._try(fd):
                if not self.wait:
                    raise FolderBusy(self._busy_message())
                print(f"autograder: {os.path.dirname(self.path)} is being graded by "
                      f"{_holder_text(self._read_holder())}; waiting for it to finish (Ctrl-C to give up)",
                      file=sys.stderr, flush=True)
                while not self._try(fd):
                    if self.stop():
                        raise GradingInterrupted(f"gave up waiting for {os.path.dirname(self.path)}; nothing "
                                                 "was changed")
                    time.sleep(WAIT_POLL_SECONDS)
            info = {"pid": os.getpid(), "host": socket.gethostname(),
                    "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                    "command": f"autograder {self.what}"}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # the lock goes with the descriptor; the file stays (see the module docstring)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
