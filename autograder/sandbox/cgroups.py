"""Limits per submission: a kernel and every process it starts share one control group (cgroup).

rlimits count per process: four children of one kernel may each use the whole memory limit, and
twenty spinning children twenty times the CPU time. A cgroup counts them together. Each kernel gets a
group of its own, made by :class:`autograder.sandbox.kernel.SandboxKernelManager` before the kernel starts and
joined by the launcher (:mod:`autograder.sandbox.launch`) right before it starts bubblewrap:

* **memory**: ``memory.max`` (v2) or ``memory.limit_in_bytes`` and ``memory.memsw.limit_in_bytes`` (v1,
  swap included where the kernel accounts it). Past it the kernel's OOM killer stops a process of the
  group; the launcher then stops the whole group and records ``memory``;
* **processes**: ``pids.max``; past it ``fork`` fails (``BlockingIOError``), nothing is stopped;
* **CPU time**: no cgroup file stops a group at a CPU-time budget, so the launcher, which stays outside
  the group, reads the group's usage (``cpu.stat`` on v2, ``cpuacct.usage`` on v1) ten times a second and
  stops the whole group once it passes the budget (``cpu``). With the ``cpu`` controller the group also
  gets one fair share of the cores, however many threads it runs.

Stopping a group: ``cgroup.kill`` (v2), or ``pids.max`` set to 0 (no more forks) and SIGKILL to every
process listed in ``cgroup.procs`` until none is left (v1, or v2 before Linux 5.14).

The groups live under the grader's own cgroup, in every hierarchy used (on v2, where the grader's own
cgroup cannot give its children controllers because it holds processes, under the nearest cgroup above
it that can)::

    <the grader's cgroup>/autograder/run-<pid>-<start>-<n>/[w<n>/]k<…>
                                     one grading run  one worker  one kernel

A run is named after the process that started it (the driver, or a plain ``nbgrader autograde``); the
driver removes a worker's groups when the worker ends and the run's when it ends; groups of runs whose
process is gone are removed by the next run. :func:`backend` picks cgroup v2 where the grader's cgroup
gives the ``memory`` and ``pids`` controllers, else v1 (``memory``, ``pids``, ``cpuacct`` mounted and
writable), else none: the limits are then per process (rlimits) and :func:`backend` says why in one line.
"""

import functools
import itertools
import os
import re
import signal
import time

PARENT = "autograder"
"""The folder under the grader's own cgroup (in each hierarchy) that holds the runs."""

V1_REQUIRED = ("memory", "pids", "cpuacct")
V2_REQUIRED = ("memory", "pids")
OPTIONAL = ("cpu",)
"""The ``cpu`` controller is used where available (one fair share of the cores per kernel), never required."""

RUN_PATTERN = re.compile(r"run-(\d+)-(\d+)(-\d+)?$")
_serials = itertools.count(1)


class Unavailable(Exception):
    """No writable cgroup with the controllers the limits need (the message says why, in one line)."""


def _read(path):
    with open(path) as handle:
        return handle.read()


def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def _fields(path):
    """``{key: int}`` of a flat keyed cgroup file (``memory.events``, ``cpu.stat``, ``memory.oom_control``)."""
    try:
        pairs = (line.split() for line in _read(path).splitlines())
        return {pair[0]: int(pair[1]) for pair in pairs if len(pair) == 2 and pair[1].lstrip("-").isdigit()}
    except (OSError, ValueError):
        return {}


def process_start(pid):
    """The start time of process ``pid`` (clock ticks since boot, a string), or None if there is none."""
    try:
        text = _read(f"/proc/{pid}/stat")
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[19]


def run_name(pid=None, serial=None):
    """``run-<pid>-<start>[-<serial>]``: names a grading run after its process (and, for a run of this
    process, a serial number: one process may run several); dead once that process is gone."""
    pid = pid or os.getpid()
    name = f"run-{pid}-{process_start(pid)}"
    return name if serial is None else f"{name}-{serial}"


def new_run_name():
    """A run name no other run of this process has."""
    return run_name(serial=next(_serials))


def run_alive(name):
    """Whether the process that named run ``name`` (see :func:`run_name`) still runs."""
    match = RUN_PATTERN.match(name)
    return bool(match) and process_start(int(match.group(1))) == match.group(2)


def _unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts(mountinfo="/proc/self/mountinfo"):
    """``[(fstype, mount point, root, super options)]`` of the cgroup file systems mounted here."""
    found = []
    try:
        lines = _read(mountinfo).splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if "-" not in fields:
            continue
        separator = fields.index("-")
        fstype = fields[separator + 1]
        if fstype in ("cgroup", "cgroup2"):
            found.append((fstype, _unescape(fields[4]), _unescape(fields[3]),
                          set(fields[separator + 3].split(",")) if len(fields) > separator + 3 else set()))
    return found


def own_cgroups(cgroup_file="/proc/self/cgroup"):
    """``{controller: path}`` of this process's v1 cgroups, and ``{"": path}`` for its v2 cgroup."""
    own = {}
    try:
        lines = _read(cgroup_file).splitlines()
    except OSError:
        return own
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            own[""] = path
        for controller in controllers.split(","):
            if controller and not controller.startswith("name="):
                own[controller] = path
    return own


def _inside(mount_point, root, path):
    """The folder of cgroup ``path`` in a hierarchy mounted at ``mount_point`` (showing ``root``)."""
    if root not in ("/", "") and (path == root or path.startswith(root.rstrip("/") + "/")):
        path = path[len(root.rstrip("/")):]
    return os.path.normpath(os.path.join(mount_point, path.lstrip("/")))


class Group:
    """One control group, as folders in one (v2) or several (v1) hierarchies: its limits and its processes."""

    def __init__(self, version, folders):
        self.version = version
        self.folders = dict(folders)  # {controller (v2: ""): folder}

    def to_json(self):
        return {"version": self.version, "folders": self.folders}

    @classmethod
    def from_json(cls, data):
        return cls(data["version"], data["folders"])

    def _folder(self, controller):
        return self.folders.get("" if self.version == 2 else controller)

    def _distinct(self):
        return sorted(set(self.folders.values()))

    def set_limits(self, memory_bytes, max_processes):
        memory, pids = self._folder("memory"), self._folder("pids")
        if self.version == 2:
            _write(os.path.join(memory, "memory.max"), str(memory_bytes))
            for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                if os.path.exists(os.path.join(memory, name)):
                    _write(os.path.join(memory, name), value)
        else:
            _write(os.path.join(memory, "memory.limit_in_bytes"), str(memory_bytes))
            if os.path.exists(os.path.join(memory, "memory.memsw.limit_in_bytes")):  # swap: accounted only
                _write(os.path.join(memory, "memory.memsw.limit_in_bytes"), str(memory_bytes))
        _write(os.path.join(pids, "pids.max"), str(max_processes))

    def join(self, pid):
        """Move process ``pid`` (and the children it starts from now on) into the group."""
        for folder in self._distinct():
            _write(os.path.join(folder, "cgroup.procs"), str(pid))

    def cpu_seconds(self):
        """CPU time the group's processes used (user and system), in seconds."""
        if self.version == 2:
            return _fields(os.path.join(self._folder(""), "cpu.stat")).get("usage_usec", 0) / 1e6
        try:
            return int(_read(os.path.join(self._folder("cpuacct"), "cpuacct.usage"))) / 1e9
        except (OSError, ValueError):
            return 0.0

    def oom_kills(self):
        """How many of the group's processes the OOM killer stopped (the memory limit was reached)."""
        memory = self._folder("memory")
        if self.version == 2:
            return _fields(os.path.join(memory, "memory.events")).get("oom_kill", 0)
        return _fields(os.path.join(memory, "memory.oom_control")).get("oom_kill", 0)

    def forks_refused(self):
        """How many times the process limit refused a fork."""
        return _fields(os.path.join(self._folder("pids"), "pids.events")).get("max", 0)

    def peak_memory(self):
        """The group's largest memory use so far, in bytes (0 where the kernel does not say)."""
        memory = self._folder("memory")
        for name in (("memory.peak",) if self.version == 2 else ("memory.max_usage_in_bytes",)):
            try:
                return int(_read(os.path.join(memory, name)))
            except (OSError, ValueError):
                pass
        return 0

    def processes(self):
        """Process ids in the group and its sub-groups, in any hierarchy."""
        return _processes(self._distinct())

    def kill(self, timeout=10):
        """Stop every process of the group (and sub-groups); True once none is left."""
        return _kill(self.version, self._distinct(), self._folder("pids"), timeout)

    def remove(self, timeout=10):
        """Stop the group's processes and remove its folders (sub-groups first); True if they are gone."""
        self.kill(timeout)
        return _remove_trees(self._distinct(), timeout)


def _walk(folders):
    """Every cgroup folder at or below ``folders``, deepest first."""
    found = []
    for top in folders:
        for directory, _, _ in os.walk(top, topdown=False):
            found.append(directory)
    return found


def _processes(folders):
    pids = set()
    for folder in _walk(folders):
        try:
            pids |= {int(pid) for pid in _read(os.path.join(folder, "cgroup.procs")).split()}
        except (OSError, ValueError):
            pass
    return pids


def _signal_member(pid, folders):
    """SIGKILL ``pid`` if it is still in ``folders`` (a pidfd pins the process: a reused pid is never hit)."""
    try:
        handle = os.pidfd_open(pid)
    except (AttributeError, OSError):
        handle = None
    try:
        if pid not in _processes(folders):
            return
        if handle is not None:
            signal.pidfd_send_signal(handle, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, OSError):
        pass
    finally:
        if handle is not None:
            os.close(handle)


def _kill(version, folders, pids_folder, timeout):
    folders = [folder for folder in folders if os.path.isdir(folder)]
    if not folders:
        return True
    if version == 2 and all(os.path.exists(os.path.join(folder, "cgroup.kill")) for folder in folders):
        for folder in folders:
            try:
                _write(os.path.join(folder, "cgroup.kill"), "1")
            except OSError:
                pass
    elif pids_folder and os.path.exists(os.path.join(pids_folder, "pids.max")):
        try:  # no more forks: the loop below then catches every process
            _write(os.path.join(pids_folder, "pids.max"), "0")
        except OSError:
            pass
    deadline = time.monotonic() + timeout
    while True:
        left = _processes(folders)
        if not left:
            return True
        if time.monotonic() > deadline:
            return False
        for pid in left:
            _signal_member(pid, folders)
        time.sleep(0.02)


def _remove_trees(folders, timeout):
    deadline = time.monotonic() + timeout
    while True:
        for folder in _walk([f for f in folders if os.path.isdir(f)]):
            try:
                os.rmdir(folder)
            except OSError:
                pass
        if not any(os.path.isdir(folder) for folder in folders):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


class Backend:
    """The hierarchies the groups are made in: the grader's own cgroup in each (see the module docstring)."""

    def __init__(self, version, bases, controllers):
        self.version = version
        self.bases = dict(bases)  # {controller (v2: ""): the grader's own cgroup folder}
        self.controllers = tuple(controllers)

    def describe(self):
        return f"cgroup v{self.version} ({', '.join(self.controllers)})"

    def _tops(self):
        return sorted({os.path.join(base, PARENT) for base in self.bases.values()})

    def _enable(self, folder):
        """cgroup v2: let ``folder``'s children use the controllers (its ``cgroup.subtree_control``)."""
        if self.version != 2:
            return
        try:
            enabled = set(_read(os.path.join(folder, "cgroup.subtree_control")).split())
        except FileNotFoundError:  # not a cgroup file system (the tests' stand-in)
            enabled = set()
        for controller in self.controllers:
            if controller not in enabled:
                _write(os.path.join(folder, "cgroup.subtree_control"), "+" + controller)

    def make(self, relative):
        """Create the group ``autograder/<relative>`` (and the folders above it) in every hierarchy."""
        folders = {}
        for key, base in self.bases.items():
            self._enable(base)
            folder = base
            for part in [PARENT] + relative.strip("/").split("/"):
                folder = os.path.join(folder, part)
                try:
                    os.mkdir(folder)
                except FileExistsError:
                    pass
                if folder != os.path.join(base, PARENT, relative.strip("/")):
                    self._enable(folder)
            folders[key] = folder
        return Group(self.version, folders)

    def group(self, relative):
        """The group ``autograder/<relative>`` (whether or not it exists)."""
        return Group(self.version, {key: os.path.join(base, PARENT, relative.strip("/"))
                                    for key, base in self.bases.items()})

    def create(self, relative, memory_bytes, max_processes):
        """A fresh group for one kernel, with its memory and process limits set."""
        group = self.make(relative)
        group.set_limits(memory_bytes, max_processes)
        return group

    def remove(self, relative, timeout=10):
        """Stop every process under ``autograder/<relative>`` and remove its groups."""
        return self.group(relative).remove(timeout)

    def remove_stale_runs(self):
        """Remove the groups of runs whose process is gone (killed, crashed); their names."""
        stale = set()
        for top in self._tops():
            try:
                names = os.listdir(top)
            except OSError:
                continue
            stale |= {name for name in names if RUN_PATTERN.match(name) and not run_alive(name)}
        for name in sorted(stale):
            self.remove(name)
        return sorted(stale)


def _usable(folder):
    return os.path.isdir(folder) and os.access(folder, os.W_OK)


def _probe(backend):
    name = "probe-" + str(os.getpid())
    backend.make(name)
    backend.remove(name)


def _v2_backend(mount_point, own, reasons):
    """cgroup v2: the grader's own cgroup, or else the nearest cgroup above it, in which groups with the
    memory and pids controllers can be made (v2 gives controllers only to the children of a cgroup without
    processes of its own, so the grader's own cgroup often cannot hold them: a grader in a session or
    service shares its cgroup with others)."""
    top = os.path.normpath(mount_point)
    candidates, folder = [own], own
    while folder != top and folder.startswith(top + "/"):
        folder = os.path.dirname(folder)
        candidates.append(folder)
    first = None
    for base in candidates:
        try:
            available = set(_read(os.path.join(base, "cgroup.controllers")).split())
        except OSError:
            continue
        if any(c not in available for c in V2_REQUIRED) or not _usable(base) \
                or not os.access(os.path.join(base, "cgroup.procs"), os.W_OK):  # moving a process needs it
            continue
        backend = Backend(2, {"": base}, V2_REQUIRED + tuple(c for c in OPTIONAL if c in available))
        try:
            _probe(backend)
        except OSError as error:
            first = first or f"{base}: {error.strerror or error}"
            continue
        return backend
    reasons.append(f"cgroup v2 at {top}: no cgroup from {own} up gives memory and pids to groups the grader "
                   f"may make ({first or 'not available or not writable'}; run the grader in a cgroup "
                   "delegated to it, e.g. systemd-run --scope -p Delegate=yes)")
    return None


def detect(mountinfo="/proc/self/mountinfo", cgroup_file="/proc/self/cgroup"):
    """The :class:`Backend` for this process, or raise :class:`Unavailable` with a one-line reason."""
    found = mounts(mountinfo)
    own = own_cgroups(cgroup_file)
    reasons = []
    for fstype, mount_point, root, _ in found:
        if fstype == "cgroup2" and "" in own:
            backend = _v2_backend(mount_point, _inside(mount_point, root, own[""]), reasons)
            if backend is not None:
                return backend
    bases = {}
    for fstype, mount_point, root, options in found:
        if fstype != "cgroup":
            continue
        for controller in V1_REQUIRED + OPTIONAL:
            if controller in options and controller in own and controller not in bases:
                bases[controller] = _inside(mount_point, root, own[controller])
    missing = [c for c in V1_REQUIRED if c not in bases]
    if missing:
        reasons.append(f"no cgroup v1 hierarchy with {', '.join(missing)}")
        raise Unavailable("; ".join(reasons))
    bases = {c: folder for c, folder in bases.items() if _usable(folder) or c in V1_REQUIRED}
    unwritable = [c for c in V1_REQUIRED if not _usable(bases[c])]
    if unwritable:
        reasons.append(f"cgroup v1 {', '.join(unwritable)} not writable ({bases[unwritable[0]]})")
        raise Unavailable("; ".join(reasons))
    backend = Backend(1, bases, tuple(c for c in V1_REQUIRED + OPTIONAL if c in bases))
    try:
        _probe(backend)
    except OSError as error:
        raise Unavailable(f"cgroup v1: cannot make groups ({error.strerror})") from None
    return backend


@functools.lru_cache(maxsize=None)
def backend():
    """``(Backend or None, one line)``: this process's cgroups, probed once; the line says what limits apply."""
    try:
        found = detect()
    except Unavailable as error:
        return None, (f"limits per process (rlimits) only: {error}; memory, processes and CPU time are not "
                      "counted per submission")
    except OSError as error:
        return None, (f"limits per process (rlimits) only: cgroups unusable ({error}); memory, processes "
                      "and CPU time are not counted per submission")
    return found, f"limits per submission: {found.describe()}"
