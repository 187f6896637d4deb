"""Limits per submission (cgroups), the kernels' runtime folders, and sandbox uids unique per run.

The red team's findings, each a test: children of one kernel together past the memory limit, spinning
children past the CPU-time budget, a fork bomb, a kernel writing into its host runtime folder, runtime
folders and groups left behind by a killed worker, and two grading runs sharing uids. Budgets are small
so each test is short; the suite runs as root on a machine with cgroup v1 (as CI does), and the tests that
need a writable cgroup are skipped where there is none.
"""

import asyncio
import glob
import json
import os
import re
import subprocess
import sys
import time

import nbformat
import pytest
from traitlets.config import Config

import grading_toy_course as toy
from autograder.sandbox import cgroups, runtime
from autograder.driver import grade_class
from autograder.sandbox.kernel import SandboxKernelManager
from autograder.sandbox.sandbox import FIRST_SANDBOX_UID, SANDBOX_UIDS, SOCKETS, SOCKETS_FOLDER_BYTES, Limits, lease_uid

BACKEND, WHY = cgroups.backend()
needs_cgroups = pytest.mark.skipif(BACKEND is None, reason=WHY)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox's own uids and tmpfs need root")

USED = re.compile(r"the kernel's group used ([\d.]+) CPU-s \(budget (\d+)\), peak memory ([\d.]+) GiB "
                  r"\(limit ([\d.]+)\), (\d+) forks refused; stopped by: (\w+)")

HOG = """
import subprocess, sys, time
code = "x = b'1' * 2**30\\nimport time\\ntime.sleep(60)"
children = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(4)]
time.sleep(50)
print("still here", [child.poll() for child in children])
def mul(a, b):
    return a * b
"""

SPINNERS = """
import subprocess, sys, time
children = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(8)]
time.sleep(50)
print("still here")
def mul(a, b):
    return a * b
"""

FORK_BOMB = """
import os, signal, subprocess, sys, time
bomb = ("import os, time\\n"
        "while True:\\n"
        "    try:\\n"
        "        os.fork()\\n"
        "    except OSError:\\n"
        "        open('/tmp/refused', 'w').close()\\n"
        "        time.sleep(0.2)\\n")
leader = subprocess.Popen([sys.executable, "-c", bomb], start_new_session=True)
deadline = time.time() + 40
while not os.path.exists("/tmp/refused") and time.time() < deadline:
    time.sleep(0.1)
print("processes", len([p for p in os.listdir("/proc") if p.isdigit()]))
def members():
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == leader.pid and fields[0] != "Z":
            found.append(pid)
    return found
while members():
    os.killpg(leader.pid, signal.SIGKILL)
    time.sleep(0.05)
leader.wait()
def mul(a, b):
    return a * b
"""

SCRIBBLER = """
import json, os
folder = os.path.dirname(json.load(open("/run/kernel/connection.json"))["ip"])
for name in ("junk", "d"):
    try:
        if name == "d":
            os.mkdir(os.path.join(folder, name))
        else:
            with open(os.path.join(folder, name), "wb") as handle:
                handle.write(b"0" * 2**20)
        print("wrote", name)
    except OSError as error:
        print("refused", name, type(error).__name__)
def mul(a, b):
    return a * b
"""

LIMITS = Limits(cell_timeout=90, wall_seconds=200, memory_gb=2, cpu_seconds=10, max_processes=64)


def _used(out, student):
    """What the launcher says the kernel's group used: (CPU-s, budget, peak GiB, limit GiB, forks refused, hit)."""
    with open(os.path.join(out, "workers", student, toy.ASSIGNMENT, "worker.log")) as handle:
        found = USED.findall(handle.read())
    assert found, f"no launcher summary in {student}'s worker.log"
    cpu, budget, peak, limit, refused, hit = found[-1]
    return float(cpu), int(budget), float(peak), float(limit), int(refused), hit


def _text(out, student):
    nb = nbformat.read(os.path.join(out, "autograded", student, toy.ASSIGNMENT, "toy.ipynb"), 4)
    return "".join(o.get("text", "") + o.get("evalue", "") for c in nb.cells for o in c.get("outputs", []))


def _runtime_folder(out, student):
    with open(os.path.join(out, "workers", student, toy.ASSIGNMENT, "settings.json")) as handle:
        return json.load(handle)["Sandbox"]["runtime_folder"]


def _our_groups():
    """This process's finished runs' cgroups still there (every hierarchy); the kernel tests' own run, kept
    for this process's life as a plain nbgrader's is, aside."""
    if BACKEND is None:
        return []
    prefix, own = f"run-{os.getpid()}-", runtime._own.name if runtime._own and not runtime._own.closed else None
    return [os.path.join(top, name) for top in BACKEND._tops() if os.path.isdir(top)
            for name in os.listdir(top) if name.startswith(prefix) and name != own]


def _processes_mentioning(text):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if text.encode() in handle.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    base = tmp_path_factory.mktemp("limits")
    course, out, submissions = str(base / "course"), str(base / "out"), base / "submissions"
    exercise = toy.make_course(course)
    for student, mul in (("correct", toy.MUL), ("hog", HOG), ("spinner", SPINNERS), ("bomb", FORK_BOMB),
                         ("scribbler", SCRIBBLER)):
        (submissions / student / toy.ASSIGNMENT).mkdir(parents=True)
        nbformat.write(toy._answer(exercise, toy.ADD, mul), str(submissions / student / toy.ASSIGNMENT / "toy.ipynb"))
    records, summary = grade_class(course, str(submissions), out, limits=LIMITS, jobs=2, progress=False)
    return out, {r.student: r for r in records}, summary


@needs_cgroups
def test_the_summary_says_how_submissions_are_limited(limited):
    _, records, summary = limited
    assert summary["limits"] == f"limits per submission: {BACKEND.describe()}"
    assert (records["correct"].status, records["correct"].score) == ("ok", toy.MAX_SCORE)


@needs_cgroups
def test_children_together_past_the_memory_limit_stop_the_submission(limited):
    """Four children of 1 GiB each under a 2 GiB budget: the group is stopped; the machine never noticed."""
    out, records, _ = limited
    cpu, _, peak, limit, _, hit = _used(out, "hog")
    assert hit == "memory" and peak <= limit + 0.01 and limit == 2
    assert "still here" not in _text(out, "hog")
    assert records["hog"].score == 0
    assert records["hog"].status == "memory-limit"


@needs_cgroups
def test_spinning_children_are_stopped_at_the_cpu_budget(limited):
    """Eight spinning children against a 10 CPU-second budget: stopped at the budget, all of them."""
    out, records, _ = limited
    cpu, budget, _, _, _, hit = _used(out, "spinner")
    assert hit == "cpu" and budget == 10
    assert budget <= cpu <= budget + 1.5  # polled ten times a second, on every core
    assert (records["spinner"].status, records["spinner"].score) == ("cpu-limit", 0)


@needs_cgroups
def test_a_fork_bomb_is_bounded_by_the_process_limit(limited):
    out, records, _ = limited
    processes = int(_text(out, "bomb").split("processes ")[1].split()[0])
    assert processes <= LIMITS.max_processes
    assert _used(out, "bomb")[4] > 0  # forks were refused
    assert (records["bomb"].status, records["bomb"].score) == ("ok", toy.MAX_SCORE)


@needs_root
def test_the_kernel_cannot_write_into_its_runtime_folder(limited):
    out, records, _ = limited
    text = _text(out, "scribbler")
    assert "refused junk PermissionError" in text and "refused d PermissionError" in text
    assert (records["scribbler"].status, records["scribbler"].score) == ("ok", toy.MAX_SCORE)


def test_nothing_of_the_run_is_left(limited):
    """Runtime folders, mounts, cgroups and launchers: all gone once the run ended."""
    out, _, _ = limited
    for student in ("correct", "hog", "spinner", "bomb", "scribbler"):
        folder = _runtime_folder(out, student)
        assert not os.path.exists(folder) and not os.path.exists(os.path.dirname(folder))
        assert not runtime.mounts_below(os.path.dirname(folder)) and not _processes_mentioning(folder)
    assert _our_groups() == []


def _kernel_config(**sandbox):
    config = Config()
    for name, value in {"memory_gb": 1, "cpu_seconds": 20, "max_processes": 64, **sandbox}.items():
        setattr(config.Sandbox, name, value)
    return config


async def _execute(kc, km, code, timeout=60):
    """Run ``code``; its printed text, or None if the kernel died."""
    message = kc.execute(code)
    printed, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reply = await kc.get_iopub_msg(timeout=0.5)
        except Exception:  # noqa: BLE001 (queue.Empty: is the kernel still there?)
            if not await km.is_alive():
                return None
            continue
        if reply["parent_header"].get("msg_id") != message:
            continue
        if reply["msg_type"] == "stream":
            printed.append(reply["content"]["text"])
        if reply["msg_type"] == "status" and reply["content"]["execution_state"] == "idle":
            return "".join(printed)
    raise TimeoutError(code)


@needs_root
def test_the_sockets_folder_is_capped_then_locked_then_removed(tmp_path):
    """Before the kernel answers, its uid can write at most the tmpfs's 64 KiB there; once it answered, nothing;
    after shutdown the runtime folder, its mount and the kernel's group are gone."""

    async def scenario():
        km = SandboxKernelManager(config=_kernel_config(), kernel_name="python3")
        await km.start_kernel(cwd=str(tmp_path))
        sockets = os.path.join(km.runtime, SOCKETS)
        uid = os.stat(sockets).st_uid
        assert FIRST_SANDBOX_UID <= uid < FIRST_SANDBOX_UID + SANDBOX_UIDS
        assert runtime.mounts_below(sockets) == [os.path.realpath(sockets)]
        write = ("import os\nwritten = 0\ntry:\n    with open(os.path.join({0!r}, 'junk'), 'wb') as f:\n"
                 "        for _ in range(64):\n            f.write(b'0' * 2**14); f.flush(); written += 2**14\n"
                 "except OSError as error:\n    print(written, type(error).__name__)\n"
                 "os.unlink(os.path.join({0!r}, 'junk'))\nopen(os.path.join({0!r}, 'left'), 'w').write('x')\n")
        scribbled = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", sys.executable,
                                    "-c", write.format(sockets)], capture_output=True, text=True, timeout=30)
        written, error = scribbled.stdout.split()
        assert int(written) <= SOCKETS_FOLDER_BYTES and error == "OSError"
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=60)
        info = os.stat(sockets)
        assert (info.st_uid, oct(info.st_mode & 0o777)) == (0, "0o755")
        assert sorted(os.listdir(sockets)) == [f"kernel-{n}" for n in range(1, 6)]  # "left" removed
        printed = await _execute(kc, km, f"try:\n    open({sockets!r} + '/x', 'w')\nexcept OSError as e:\n"
                                         "    print(type(e).__name__)")
        assert printed.strip() == "PermissionError"
        group = km.group
        kc.stop_channels()
        await km.shutdown_kernel()
        assert not os.path.exists(km.runtime) and not runtime.mounts_below(km.runtime)
        assert group is None or not any(os.path.exists(f) for f in group.folders.values())

    asyncio.run(scenario())


@needs_cgroups
def test_limit_hit_and_exit_signal_say_which_limit_stopped_the_kernel(tmp_path):
    """The API execute.py reads when a kernel died: 'memory' (SIGKILL), 'cpu' (SIGXCPU)."""

    async def run(code, **limits):
        km = SandboxKernelManager(config=_kernel_config(**limits), kernel_name="python3")
        await km.start_kernel(cwd=str(tmp_path))
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=60)
        assert km.limit_hit() is None
        printed = await _execute(kc, km, code)
        outcome = printed, km.limit_hit(), km.exit_signal()
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
        return outcome

    children = ("import subprocess, sys, time\ncode = {!r}\n"
                "children = [subprocess.Popen([sys.executable, '-c', code]) for _ in range(4)]\ntime.sleep(40)")
    hog = children.format("x = b'1' * 2**29\nimport time\ntime.sleep(60)")
    assert asyncio.run(run(hog, memory_gb=1)) == (None, "memory", 9)
    spin = children.format("while True: pass")
    assert asyncio.run(run(spin, cpu_seconds=4)) == (None, "cpu", 24)


def test_uid_leases_are_exclusive_and_freed_when_their_holder_dies():
    if os.geteuid() != 0:
        pytest.skip("uids are leased as root only")
    holder = subprocess.Popen([sys.executable, "-c", "from autograder.sandbox.sandbox import lease_uid\nimport sys\n"
                               "leases = [lease_uid() for _ in range(3)]\nprint(*[l.uid for l in leases], flush=True)\n"
                               "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    theirs = set(map(int, holder.stdout.readline().split()))
    mine = [lease_uid() for _ in range(3)]
    assert len(theirs) == 3 and not theirs & {lease.uid for lease in mine}
    holder.kill()  # SIGKILL: no cleanup of its own
    holder.wait()
    again = [lease_uid() for _ in range(3)]
    assert theirs <= {lease.uid for lease in again}  # the lowest free uids: the dead holder's among them
    for lease in mine + again:
        lease.release()


@needs_root
def test_two_grading_runs_at_once_use_different_uids(tmp_path):
    """Two independent `python -m autograder grade` runs on one machine: their kernels' uids differ."""
    course = str(tmp_path / "course")
    exercise = toy.make_course(course)
    runs = []
    for name in ("a", "b"):
        submissions = tmp_path / f"submissions-{name}"
        (submissions / name / toy.ASSIGNMENT).mkdir(parents=True)
        mul = "import os, time\nprint('uid', os.getuid())\ntime.sleep(4)\n" + toy.MUL
        nbformat.write(toy._answer(exercise, toy.ADD, mul), str(submissions / name / toy.ASSIGNMENT / "toy.ipynb"))
        runs.append(subprocess.Popen(
            [sys.executable, "-m", "autograder", "grade", "--course", course, "--submissions", str(submissions),
             "--out", str(tmp_path / f"out-{name}"), "--quiet", "--jobs", "2", "--cell-timeout", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for process in runs:
        _, error = process.communicate(timeout=300)
        assert process.returncode == 0, error[-2000:]
    uids = [int(_text(str(tmp_path / f"out-{name}"), name).split("uid ")[1].split()[0]) for name in ("a", "b")]
    assert uids[0] != uids[1] and all(FIRST_SANDBOX_UID <= uid < FIRST_SANDBOX_UID + SANDBOX_UIDS for uid in uids)


def test_a_killed_worker_leaves_nothing_behind(tmp_path):
    """A worker killed at the wall time (SIGKILL): its kernel, runtime folder and groups are gone after the run."""
    course, out, submissions = str(tmp_path / "course"), str(tmp_path / "out"), tmp_path / "submitted"
    exercise = toy.make_course(course)
    (submissions / "sleeper" / toy.ASSIGNMENT).mkdir(parents=True)
    mul = "import subprocess, time\nchild = subprocess.Popen(['sleep', '600'])\ntime.sleep(600)\n" + toy.MUL
    nbformat.write(toy._answer(exercise, toy.ADD, mul), str(submissions / "sleeper" / toy.ASSIGNMENT / "toy.ipynb"))
    records, _ = grade_class(course, str(submissions), out, limits=Limits(wall_seconds=25, cell_timeout=120),
                             jobs=1, progress=False)
    assert [r.status for r in records] == ["wall-timeout"]
    folder = os.path.dirname(_runtime_folder(out, "sleeper"))
    time.sleep(0.5)  # the orphaned launcher's last steps
    assert not os.path.exists(folder) and not _processes_mentioning(folder) and _our_groups() == []


def test_stale_runs_are_removed_by_the_next_run(tmp_path):
    """What a run killed outright (its process gone) left: removed when the next run starts."""
    script = ("from autograder.sandbox import runtime\nimport os\nrun = runtime.GradingRun()\n"
              "scope = run.scope()\nos.mkdir(os.path.join(scope.folder, 'kernel'))\n"
              "run.backend and run.backend.create(scope.cgroup + '/k1', 2**30, 10)\n"
              "print(run.folder, run.name, flush=True)\nos._exit(0)")
    folder, name = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                  check=True).stdout.split()
    assert os.path.isdir(folder)
    run = runtime.GradingRun()
    try:
        assert not os.path.exists(folder)
        if BACKEND is not None:
            assert not any(os.path.exists(os.path.join(top, name)) for top in BACKEND._tops())
    finally:
        run.close()
    assert not os.path.exists(run.folder)


def test_cgroup_v2_and_v1_are_found_from_the_mount_table(tmp_path):
    """Detection on stand-in file systems: v2 where it gives memory and pids, else v1; groups get the limits."""
    v2 = tmp_path / "unified"
    for folder in (v2 / "grader", v2 / "grader" / "session"):
        folder.mkdir(parents=True)
        (folder / "cgroup.controllers").write_text("cpu io memory pids\n")
        (folder / "cgroup.procs").write_text("")
    (v2 / "grader" / "cgroup.subtree_control").write_text("")
    (v2 / "grader" / "session" / "cgroup.subtree_control").mkdir()  # cannot be written: as if it held processes
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(f"41 31 0:38 / {v2} rw,relatime - cgroup2 cgroup2 rw\n")
    own = tmp_path / "cgroup"
    own.write_text("0::/grader/session\n")
    backend = cgroups.detect(str(mountinfo), str(own))
    assert (backend.version, backend.controllers) == (2, ("memory", "pids", "cpu"))
    assert backend.bases == {"": str(v2 / "grader")}  # the nearest cgroup above the grader's that can
    group = backend.create("run-1-2/w1/k1", 2**30, 64)
    leaf = v2 / "grader" / cgroups.PARENT / "run-1-2" / "w1" / "k1"
    assert (leaf / "memory.max").read_text() == str(2**30) and (leaf / "pids.max").read_text() == "64"
    (leaf / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    (leaf / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert (group.cpu_seconds(), group.oom_kills()) == (2.5, 1)

    (v2 / "grader" / "cgroup.controllers").write_text("cpu io\n")  # no memory, pids: v1 it is
    v1 = {name: tmp_path / name for name in ("memory", "pids", "cpu,cpuacct")}
    lines, own_lines = [mountinfo.read_text()], []
    for number, (name, folder) in enumerate(v1.items()):
        (folder / "me").mkdir(parents=True)  # the mount shows /machine: /machine/me is folder/me
        lines.append(f"{50 + number} 31 0:{50 + number} /machine {folder} rw - cgroup cgroup rw,{name}\n")
        own_lines.append(f"{number + 1}:{name}:/machine/me\n")
    mountinfo.write_text("".join(lines))
    own.write_text("".join(own_lines) + "0::/grader/session\n")
    backend = cgroups.detect(str(mountinfo), str(own))
    assert backend.version == 1 and backend.bases["memory"] == str(v1["memory"] / "me")
    assert backend.bases["cpuacct"] == backend.bases["cpu"] == str(v1["cpu,cpuacct"] / "me")
    group = backend.create("run-1-2/k1", 2**30, 64)
    assert (v1["memory"] / "me" / "autograder" / "run-1-2" / "k1" / "memory.limit_in_bytes").read_text() == str(2**30)

    mountinfo.write_text("")
    with pytest.raises(cgroups.Unavailable, match="no cgroup v1 hierarchy with memory, pids, cpuacct"):
        cgroups.detect(str(mountinfo), str(own))


def test_stale_uid_lock_folder_is_refused_if_others_can_write_it(tmp_path, monkeypatch):
    folder = tmp_path / "uids"
    folder.mkdir(mode=0o777)
    os.chmod(folder, 0o777)
    monkeypatch.setattr("autograder.sandbox.sandbox.UID_LOCKS", (str(folder),))
    from autograder.sandbox.sandbox import SandboxUnavailable
    with pytest.raises(SandboxUnavailable, match="root's and writable by root only"):
        lease_uid()


def test_no_leftover_runtime_folders_of_this_process():
    """Every run of this process so far removed its folder under the temporary folder."""
    mine = []
    for folder in glob.glob(os.path.join(runtime.temp_parent(), runtime.RUN_PREFIX + "*")):
        owner = runtime._owner(folder)
        if owner and owner.startswith(f"run-{os.getpid()}-") and not (runtime._own and runtime._own.folder == folder):
            mine.append(folder)
    assert mine == []
