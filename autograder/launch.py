"""Start one kernel in the sandbox: ``python -I -m autograder.launch SETTINGS -- KERNEL COMMAND``.

:class:`autograder.kernel.SandboxKernelManager` runs this instead of the kernel. It runs with the
grader's privileges, in the folder nbgrader grades in (whose files are the learner's: it reads only
regular files there, never through a link), sets the resource limits, and replaces itself with
bubblewrap (see :mod:`autograder.sandbox`), which starts the kernel as an unprivileged process that sees
only what the settings allow. ``-I`` keeps Python from importing anything from that folder.
"""

import json
import os
import resource
import stat
import sys
import tempfile

from .sandbox import ETC_FILES, WORK_FOLDER, namespace_options, running_as_root

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
    if running_as_root():  # per user id: only meaningful once the kernel has a user id of its own
        limits.append((resource.RLIMIT_NPROC, settings["max_processes"]))
    for limit, value in limits:
        soft, hard = value if isinstance(value, tuple) else (value, value)
        current_hard = resource.getrlimit(limit)[1]
        if current_hard != resource.RLIM_INFINITY:  # raising a hard limit needs privileges containers drop
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        resource.setrlimit(limit, (soft, hard))


def main(argv):
    if len(argv) < 3 or argv[1] != "--":
        raise SystemExit("usage: python -I -m autograder.launch SETTINGS.json -- KERNEL COMMAND")
    with open(argv[0]) as handle:
        settings = json.load(handle)
    arguments = bwrap_arguments(settings, argv[2:])
    split = arguments.index("--")
    options, command = arguments[:split], arguments[split:]
    status = os.open(settings["status_file"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.set_inheritable(status, True)
    options = ["--json-status-fd", str(status)] + options
    listing = _data_fd(b"".join(option.encode() + b"\0" for option in options))  # kept off `ps`'s command line
    _limit_resources(settings)
    os.execvp("bwrap", ["bwrap", "--args", str(listing), *command])


if __name__ == "__main__":
    main(sys.argv[1:])
