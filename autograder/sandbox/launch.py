"""Start one kernel in the sandbox: ``python -I -m autograder.sandbox.launch SETTINGS -- KERNEL COMMAND``.

:class:`autograder.sandbox.kernel.SandboxKernelManager` runs this instead of the kernel. It runs with the
grader's privileges, in the folder nbgrader grades in (whose files are the learner's: it reads only
regular files there, never through a link), and forks: the child joins the kernel's cgroup (if it has
one), sets the rlimits and replaces itself with bubblewrap (see :mod:`autograder.sandbox.sandbox`), which starts
the kernel as an unprivileged process that sees only what the settings allow. ``-I`` keeps Python from
importing anything from that folder.

The launcher itself stays outside the sandbox and the group and watches them (:class:`Watcher`), ten
times a second: when the group's CPU time passes the budget or the OOM killer stopped one of its processes
(the memory limit), it stops the whole group and records why in ``limit.json`` of the runtime folder
(:meth:`autograder.sandbox.kernel.SandboxKernelManager.limit_hit` reads it); when its parent (the grader) is gone,
or it is told to stop (SIGTERM), it stops the group too. At the end it removes the group, writes one line
about what the group used to its stderr (the worker's log), removes the runtime folder if the grader is
gone, and exits with the kernel's exit code (128 + signal).
"""

import json
import os
import resource
import select
import signal
import stat
import sys
import tempfile
import time

from .cgroups import Group
from .runtime import remove_folder
from .sandbox import ETC_FILES, WORK_FOLDER, namespace_options, running_as_root

POLL_SECONDS = 0.1
"""How often the watcher reads the group's CPU time and memory events."""

MAX_LEARNER_FILES = 100
"""At most this many of the learner's own files are copied into the working folder."""

CONNECTION_FILE = "/run/kernel/connection.json"
"""Where the kernel finds its connection file inside the sandbox."""


def _data_fd(data):
    """A file descriptor to read ``data`` from (an unlinked temporary file; bubblewrap copies it in)."""
    handle = tempfile.TemporaryFile()
    handle.write(data)
    handle.flush()
    handle.seek(0)
    descriptor = os.dup(handle.fileno())
    handle.close()
    os.set_inheritable(descriptor, True)
    return descriptor


def _regular_fd(path):
    """An inheritable descriptor of regular file ``path`` (opened without following a link), or None."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode):
        os.close(descriptor)
        return None
    os.set_inheritable(descriptor, True)
    return descriptor


def _ancestors(path):
    """The folders above ``path``, outermost first (bubblewrap would create them unreadable: mode 0700)."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _account_files(uid):
    user = f"learner:x:{uid}:{uid}:learner:{WORK_FOLDER}:/usr/sbin/nologin\n"
    group = f"learner:x:{uid}:\n"
    return user.encode(), group.encode()


def learner_files(settings):
    """``[(name, fd)]``: regular files next to the notebook, except notebooks and the course's files (at most
    MAX_LEARNER_FILES, within the byte budget)."""
    chosen, budget = [], settings["learner_files_bytes"]
    for entry in sorted(os.scandir("."), key=lambda e: e.name):
        if len(chosen) == MAX_LEARNER_FILES:
            break
        if entry.name.endswith(".ipynb") or entry.name in settings["work_files"] or entry.name.startswith("."):
            continue
        if not entry.is_file(follow_symlinks=False):
            continue
        size = entry.stat(follow_symlinks=False).st_size
        if size > budget:
            continue
        descriptor = _regular_fd(entry.name)
        if descriptor is not None:
            chosen.append((entry.name, descriptor))
            budget -= size
    return chosen


def bwrap_arguments(settings, kernel_command):
    """bubblewrap's arguments (after ``bwrap``) for ``kernel_command``; opens the descriptors they name."""
    uid = settings["uid"]
    args = list(namespace_options())
    if uid is not None:
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                 "--cap-add", "CAP_SETPCAP"]
    for folder in ("/etc", "/home", "/run", os.path.dirname(CONNECTION_FILE)):
        args += ["--perms", "0755", "--dir", folder]
    args += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = "/" + name
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in ETC_FILES:
        args += ["--ro-bind-try", path, path]
    passwd, group = _account_files(uid if uid is not None else os.getuid())
    args += ["--perms", "0444", "--ro-bind-data", str(_data_fd(passwd)), "/etc/passwd",
             "--perms", "0444", "--ro-bind-data", str(_data_fd(group)), "/etc/group"]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(settings["tmp_bytes"]), "--perms", "01777", "--tmpfs", "/tmp",
             "--size", str(settings["tmp_bytes"]), "--perms", "01777", "--tmpfs", "/dev/shm",
             "--size", str(settings["work_bytes"]), "--perms", "01777", "--tmpfs", WORK_FOLDER]
    mounts = settings["read_only"] + [(settings["sockets"], settings["sockets"])]
    read_only_trees = ["/usr", "/proc", "/dev"] + [destination for _, destination in settings["read_only"]]
    made = {"/etc", "/home", "/run", "/tmp", "/dev", "/proc", "/usr", WORK_FOLDER}
    for _, destination in mounts:  # parents first: the list is sorted by destination
        for folder in _ancestors(destination):
            if folder not in made and not any(folder.startswith(tree + "/") for tree in read_only_trees):
                args += ["--perms", "0755", "--dir", folder]
                made.add(folder)
    for source, destination in settings["read_only"]:
        args += ["--ro-bind", source, destination]
    args += ["--bind", settings["sockets"], settings["sockets"]]
    for name, path in sorted(settings["work_files"].items()):
        descriptor = _regular_fd(path)
        if descriptor is None:
            raise SystemExit(f"sandbox: Sandbox.work_files[{name!r}] = {path!r} is not a readable regular file")
        args += ["--perms", "0444", "--ro-bind-data", str(descriptor), os.path.join(WORK_FOLDER, name)]
    for name, descriptor in learner_files(settings):
        args += ["--perms", "0666", "--file", str(descriptor), os.path.join(WORK_FOLDER, name)]
    with open(settings["connection_file"], "rb") as handle:
        args += ["--perms", "0444", "--ro-bind-data", str(_data_fd(handle.read())), CONNECTION_FILE]
    args += ["--chdir", WORK_FOLDER, "--clearenv"]
    for name, value in sorted(settings["environment"].items()):
        args += ["--setenv", name, value]
    command = [CONNECTION_FILE if arg == settings["connection_file"] else arg for arg in kernel_command]
    if uid is not None:
        command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                   "--bounding-set=-all", "--", *command]
    return args + ["--", *command]


def _limit_resources(settings):
    cpu = settings["cpu_seconds"]
    limits = [(resource.RLIMIT_DATA, settings["memory_bytes"]), (resource.RLIMIT_FSIZE, settings["file_size_bytes"]),
              (resource.RLIMIT_CORE, 0), (resource.RLIMIT_CPU, (cpu, cpu + 5))]
    # Processes: the group's pids.max where there is a group; else, as root, RLIMIT_NPROC (it counts per user
    # id, so it is only meaningful once the kernel has a user id of its own).
    if running_as_root() and not settings.get("group"):
        limits.append((resource.RLIMIT_NPROC, settings["max_processes"]))
    for limit, value in limits:
        soft, hard = value if isinstance(value, tuple) else (value, value)
        current_hard = resource.getrlimit(limit)[1]
        if current_hard != resource.RLIM_INFINITY:  # raising a hard limit needs privileges containers drop
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        resource.setrlimit(limit, (soft, hard))


class Watcher:
    """The launcher after the fork: watches the sandbox's process ``child`` and its cgroup ``group``."""

    def __init__(self, child, settings, group, parent):
        self.child, self.settings, self.group, self.parent = child, settings, group, parent
        self.record = {}
        self.stop_signals = []
        self.orphaned = False

    def _save(self, **fields):
        self.record.update(fields)
        path = self.settings.get("limit_file")
        if not path:
            return
        try:
            with open(path + ".partial", "w") as handle:
                json.dump(self.record, handle)
            os.replace(path + ".partial", path)
        except OSError:
            pass

    def _check(self):
        """The limit that must stop the group now (``'cpu'``, ``'memory'``), or None; notes refused forks."""
        if self.group is None:
            return None
        if self.group.cpu_seconds() >= self.settings["cpu_seconds"]:
            return "cpu"
        if self.group.oom_kills():
            return "memory"
        if "hit" not in self.record and self.group.forks_refused():
            self._save(hit="pids")
        return None

    def _stop(self):
        if self.group is not None:
            self.group.kill()
        try:
            os.kill(self.child, signal.SIGKILL)  # bubblewrap: the sandbox dies with it (--die-with-parent)
        except ProcessLookupError:
            pass

    def _wait(self, handle):
        if handle is None:
            time.sleep(POLL_SECONDS)
            return
        poller = select.poll()
        poller.register(handle, select.POLLIN)
        poller.poll(POLL_SECONDS * 1000)

    def run(self):
        """Watch until the sandbox ends; returns the exit code."""
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(number, lambda signum, frame: self.stop_signals.append(signum))
        try:
            handle = os.pidfd_open(self.child)
        except (AttributeError, OSError):
            handle = None
        while True:
            pid, status = os.waitpid(self.child, os.WNOHANG)
            if pid:
                break
            hit = self._check()
            if hit:
                self._save(hit=hit, stopped=True)
            self.orphaned = os.getppid() != self.parent
            if hit or self.stop_signals or self.orphaned:
                self._stop()
                _, status = os.waitpid(self.child, 0)
                break
            self._wait(handle)
        if handle is not None:
            os.close(handle)
        self._finish()
        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code

    def _finish(self):
        if self.group is not None:
            if self.record.get("hit") not in ("cpu", "memory") and self.group.oom_kills():
                self._save(hit="memory", stopped=True)
            self.group.kill()
            used = {"cpu_seconds": round(self.group.cpu_seconds(), 2), "peak_memory_bytes": self.group.peak_memory(),
                    "forks_refused": self.group.forks_refused()}
            self._save(**used)
            budget = self.settings["cpu_seconds"], self.settings["memory_bytes"] / 2**30
            stopped = (self.record["hit"] if self.record.get("stopped") else "its grader's end" if self.orphaned
                       else "a stop signal" if self.stop_signals else "nothing")
            print(f"autograder.sandbox.launch: the kernel's group used {used['cpu_seconds']:.2f} CPU-s "
                  f"(budget {budget[0]}), "
                  f"peak memory {used['peak_memory_bytes'] / 2**30:.2f} GiB (limit {budget[1]:.2f}), "
                  f"{used['forks_refused']} forks refused; stopped by: {stopped}", file=sys.stderr, flush=True)
            self.group.remove()
        if self.orphaned:  # nobody else will: the grader that made the runtime folder is gone
            remove_folder(self.settings.get("runtime"))


def main(argv):
    if len(argv) < 3 or argv[1] != "--":
        raise SystemExit("usage: python -I -m autograder.sandbox.launch SETTINGS.json -- KERNEL COMMAND")
    with open(argv[0]) as handle:
        settings = json.load(handle)
    arguments = bwrap_arguments(settings, argv[2:])
    split = arguments.index("--")
    options, command = arguments[:split], arguments[split:]
    status = os.open(settings["status_file"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.set_inheritable(status, True)
    options = ["--json-status-fd", str(status)] + options
    listing = _data_fd(b"".join(option.encode() + b"\0" for option in options))  # kept off `ps`'s command line
    group = Group.from_json(settings["group"]) if settings.get("group") else None
    parent = os.getppid()  # the grader: when it is gone, so is the kernel
    child = os.fork()
    if child == 0:
        try:
            if group is not None:
                group.join(os.getpid())
            _limit_resources(settings)
            os.execvp("bwrap", ["bwrap", "--args", str(listing), *command])
        except BaseException as error:  # noqa: BLE001 (never run the kernel outside its group)
            print(f"autograder.sandbox.launch: cannot start the sandbox: {error}", file=sys.stderr, flush=True)
        os._exit(127)
    sys.exit(Watcher(child, settings, group, parent).run())


if __name__ == "__main__":
    main(sys.argv[1:])
