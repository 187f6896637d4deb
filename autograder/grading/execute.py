"""nbgrader's Execute step, made safe against the code it runs (``GuardedExecute``).

Configured in ``autograde_config.py`` in place of nbgrader's ``Execute``, so ``make grade`` and a plain
``nbgrader autograde`` behave alike. What changes:

**The kernel runs in the sandbox** (:mod:`autograder.sandbox.kernel`, :mod:`autograder.sandbox.sandbox`).

**Checks are decided here, not in the kernel** (:mod:`autograder.grading.judge`, ``docs/design.md``). Before
the first cell, the probe agent (:mod:`course_checks.probe`, sent as source) is loaded into the kernel
under a random name. The learner's cells run in order in the kernel; a check cell does not: its
statements that prepare objects (``model = RetinaNet(num_classes=10)``) run there, as in the notebook,
and its ``TEST_*`` calls run in the judge, in this process, with the learner's objects as handles. The
check cell's outputs are the judge's alone: the line the check printed, or its failure message. Nothing
the learner's code prints, displays or hooks can stand in a check cell's outputs or change its points.

**Hidden tests never reach the kernel.** After every learner cell has run, the outputs of all cells are
frozen and each check cell's hidden part runs in the judge, in order, against the learner's objects as
the notebook left them (a hidden part whose visible check failed is not run). Its outputs are appended
to the check cell (for nbgrader's scoring and the instructor's autograded notebook) and counted in the
cell's metadata (``autograder.visible_outputs``), so the feedback (:mod:`autograder.grading.feedback`) shows the
learner-visible verdict only. Anything the learner's code does meanwhile is thrown away with the
frozen outputs restored.

When the kernel dies (``os._exit``, CPU limit), the rest of the notebook is not run: every check cell
not yet judged, and every hidden part, gets an error output, so it scores 0; earlier checks keep their
points. A probe that runs past the per-cell time limit interrupts the kernel and fails its check
(``CellTimeoutError``).

**A kernel that ignores the interrupt is stopped.** At the per-cell time limit (a cell or a probe) the
kernel is interrupted, as nbclient does; then it has :attr:`GuardedExecute.interrupt_grace` seconds to
answer a ``kernel_info`` request, which it can only do once the interrupted code has stopped (its shell
handles one request at a time). Code that swallows ``KeyboardInterrupt`` (a bare ``except:`` in a retry
loop) never does: the kernel is then stopped with its whole sandbox (:class:`KernelStopped`), the cell
gets a ``CellTimeoutError`` output, and the rest is handled as after a death: the checks judged before
keep their points, the cells after it are not run and the checks without a verdict score 0.
"""

import ast
import copy
import inspect
import os
import secrets
import time
from queue import Empty

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbclient.util import ensure_async
from nbgrader.preprocessors import Execute
from traitlets import Enum, Float, Unicode

from course_checks import probe

from ..sandbox.kernel import SandboxKernelManager
from ..sandbox.sandbox import Sandbox, check_support
from .judge import Background, Judge, error_output, load_checks, split_setup

HIDDEN_BEGIN, HIDDEN_END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
KERNEL_DIED = "KernelDied"
CPU_LIMIT = "CPUTimeLimit"
METADATA = "autograder"

_LOAD_AGENT = '''
def _autograder_agent(source, token, shell):
    import sys, types
    module = types.ModuleType(token)
    exec(compile(source, "<autograder probe>", "exec"), module.__dict__)
    module.agent = module.Agent(lambda: shell.user_ns)
    sys.modules[token] = module
_autograder_agent({source!r}, {token!r}, get_ipython())
del _autograder_agent
'''
"""Loads the probe agent as a module of its own under a random name in ``sys.modules`` (not in the
learner's namespace, so ``%reset`` or ``del globals()[...]`` of the learner's names leaves it in place)."""


class GuardError(RuntimeError):
    """The grader's own code (loading the probe agent) failed in the kernel."""


class KernelStopped(DeadKernelError):
    """The kernel ran past the per-cell time limit and did not stop when interrupted: the grader stopped it
    (with its sandbox). A :class:`DeadKernelError`, so the rest of the notebook is handled as after a death."""


def is_check(cell):
    """A read-only graded code cell: nbgrader's test cells (the ``TEST_*`` calls and hidden tests)."""
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and meta.get("grade", False) and not meta.get("solution", False)


def split_hidden(source):
    """``(visible, hidden)`` parts of a cell's source: the lines outside and inside hidden-test regions."""
    visible, hidden, inside = [], [], False
    for line in source.split("\n"):
        if HIDDEN_BEGIN in line:
            inside = True
        elif HIDDEN_END in line:
            inside = False
        else:
            (hidden if inside else visible).append(line)
    return "\n".join(visible).rstrip(), "\n".join(hidden).strip()


def has_error(outputs):
    return any(output.output_type == "error" for output in outputs)


KERNEL_CHECKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel_checks.py")
"""The kernel's ``tests.py`` while grading: ``TEST_*`` names that do nothing
(see :mod:`autograder.grading.kernel_checks`)."""


class GuardedExecute(Execute):
    """nbgrader's ``Execute`` with the kernel sandboxed, checks judged here and hidden tests never sent."""

    check_names = Unicode(r"TEST_\w+", help="Regular expression of the check functions' names").tag(config=True)
    shutdown_kernel = Enum(["graceful", "immediate"], default_value="immediate",
                           help="How the kernel stops after the last cell: 'immediate' (its sandbox and cgroup are "
                           "removed at once; a kernel that loaded TensorFlow takes about a second to exit "
                           "gracefully, and nothing it would do then counts)").tag(config=True)
    checks_file = Unicode("tests.py", help="The checks module: the kernel's working-folder name of it "
                          "(c.Sandbox.work_files maps it to the course's file, which the judge loads)").tag(config=True)
    interrupt_grace = Float(10.0, help="Seconds a kernel interrupted at the per-cell time limit has to stop; one "
                            "that has not (its code ignores KeyboardInterrupt) is stopped with its sandbox, and the "
                            "cells after it are not run").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        """Execute ``nb`` as described in the module docstring."""
        NotebookClient.__init__(self, nb, km)  # as nbconvert's ExecutePreprocessor does: a fresh execution
        sandbox = Sandbox(config=self.config)
        if sandbox.enabled:
            check_support()  # a clear message (plain nbgrader too) rather than a kernel that dies at start
        self.kernel_manager_class = SandboxKernelManager if sandbox.enabled else AsyncKernelManager
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self.skip_cells_with_tag = "autograder-never-" + secrets.token_hex(8)  # learners' tags skip nothing
        self.token = "_autograder_" + secrets.token_hex(8)
        self.stopped_after_timeout, self.stopped_at = False, None
        run_seed = secrets.randbits(31)
        checks = Background(self._load_checks, self._checks_path(sandbox, resources), run_seed)
        course_files = None
        if sandbox.enabled and self.checks_file in sandbox.work_files:  # the kernel gets no checks at all
            course_files = dict(sandbox.work_files)
            self.config.Sandbox.work_files = {**course_files, self.checks_file: KERNEL_CHECKS}
        hidden = {}
        for index, cell in enumerate(nb.cells):
            cell.metadata.pop(METADATA, None)  # whatever the submission put there
            if is_check(cell):
                visible, hidden_part = split_hidden(cell.source)
                cell.metadata[METADATA] = {"full_source": cell.source}
                cell.source = visible
                if hidden_part:
                    hidden[index] = hidden_part
        nb.metadata[METADATA] = {"guarded": True, "kernel": "ok", "run_seed": run_seed}
        try:
            with self.setup_kernel():
                info = self.wait_for_reply(self.kc.kernel_info())
                nb.metadata["language_info"] = info["content"]["language_info"]
                self._load_agent()
                self.judge = Judge(checks, self._probe)
                died = self._run_cells(nb)
                frozen = [copy.deepcopy(cell.get("outputs", [])) for cell in nb.cells]
                if not died:
                    died = self._run_hidden(nb, hidden, frozen)
            if died and self.stopped_at is not None:
                self._replay_for_hidden(nb, hidden, frozen, checks)
            self._restore(nb, hidden, frozen)
            if died:
                self._mark_not_run(nb, hidden, died)
        finally:
            if course_files is not None:
                self.config.Sandbox.work_files = course_files
            for cell in nb.cells:
                if METADATA in cell.metadata and "full_source" in cell.metadata[METADATA]:
                    cell.source = cell.metadata[METADATA].pop("full_source")
        self.set_widgets_metadata()
        return nb, self.resources

    @staticmethod
    def _load_checks(path, run_seed):
        """The course's checks (importing them takes seconds: done while the kernel starts), their random
        inputs drawn for this grading run."""
        checks = load_checks(path)
        if callable(getattr(checks, "draw_inputs", None)):
            checks.draw_inputs(run_seed)  # the checks' random inputs differ in every grading run
        return checks

    def _checks_path(self, sandbox, resources):
        """The course's checks file on this machine: the sandbox's work file, else next to the notebook."""
        if self.checks_file in sandbox.work_files:
            return sandbox.work_files[self.checks_file]
        folder = (resources or {}).get("metadata", {}).get("path") or "."
        return os.path.join(folder, self.checks_file)

    def _run_cells(self, nb):
        """Phase 1. Returns the kernel's cause of death (an error output), or None."""
        for index, cell in enumerate(nb.cells):
            try:
                if is_check(cell):
                    self._judge_cell(cell, index)
                else:
                    self.execute_cell(cell, index, store_history=True)
            except DeadKernelError:
                died = self._death()
                cell.outputs = list(cell.get("outputs", [])) + [died]
                if self.stopped_after_timeout:
                    self.stopped_at = index
                return died
        return None

    def _replay_for_hidden(self, nb, hidden, frozen, checks):
        """After the kernel was stopped at cell ``stopped_at`` (it ignored the interrupt), the hidden parts of
        the checks judged before it still run, as phase 2 would have run them: in a fresh kernel, the learner's
        cells before ``stopped_at`` (and the check cells' preparing statements) run again, on copies whose
        outputs are thrown away, then those hidden parts are judged there. So a check that passed before the
        hang keeps its points only if its hidden tests pass too, and a hang after a check cannot spare it its
        hidden tests. A second stop or a death leaves the hidden parts not yet run to :meth:`_mark_not_run`."""
        earlier = {index: source for index, source in hidden.items() if index < self.stopped_at
                   and not has_error(frozen[index])}
        if not earlier:
            return
        self.stopped_after_timeout = False
        try:
            with self.setup_kernel():
                self.wait_for_reply(self.kc.kernel_info())
                self._load_agent()
                self.judge = Judge(checks, self._probe)
                for index, cell in enumerate(nb.cells[: self.stopped_at]):
                    if cell.cell_type != "code":
                        continue
                    scratch = copy.deepcopy(cell)
                    if is_check(cell):
                        parts = split_setup(cell.source, self.check_names)
                        if parts is None or not parts[0].strip():
                            continue
                        scratch.source = parts[0]
                    self.execute_cell(scratch, index, store_history=not is_check(cell))
                self._run_hidden(nb, earlier, frozen)
        except DeadKernelError:
            return
        except Exception as error:  # noqa: BLE001 (the notebook was graded without them: they score 0)
            self.log.warning("autograder: the hidden tests before the stopped cell could not be run: %s", error)

    def _judge_cell(self, cell, index):
        """A check cell: its preparing statements in the kernel, its checks here; the judge's outputs only."""
        cell.metadata[METADATA]["judged"] = True
        parts = split_setup(cell.source, self.check_names)
        source = cell.source
        if parts is not None:
            setup, source = parts
            if setup.strip():
                checks_source = cell.source
                cell.source = setup
                try:
                    self.execute_cell(cell, index, store_history=False)
                finally:
                    cell.source = checks_source
                errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
                if errors:
                    cell.outputs = [error_output(errors[0].ename, errors[0].evalue)]
                    return
        started = time.monotonic()
        cell.outputs, _ = self.judge.run(source)
        cell.metadata[METADATA]["judge_seconds"] = round(time.monotonic() - started, 2)
        cell.execution_count = None

    def _run_hidden(self, nb, hidden, frozen):
        """Phase 2: each hidden part whose visible check passed. Returns the kernel's cause of death or None."""
        for index, source in sorted(hidden.items()):
            cell = nb.cells[index]
            cell.metadata[METADATA]["visible_outputs"] = len(frozen[index])
            if has_error(frozen[index]):
                cell.metadata[METADATA]["hidden_tests"] = "not run"
                continue
            try:
                outputs, _ = self.judge.run(source)
            except DeadKernelError:
                died = self._death()
                cell.metadata[METADATA]["hidden_outputs"] = [died]
                return died
            cell.metadata[METADATA]["hidden_outputs"] = outputs
            cell.metadata[METADATA]["hidden_tests"] = "failed" if has_error(outputs) else "passed"
        return None

    def _restore(self, nb, hidden, frozen):
        """Every cell gets its frozen phase-1 outputs back, check cells their hidden parts' outputs after them."""
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            cell.outputs = copy.deepcopy(frozen[index])
            if index in hidden:
                cell.outputs += cell.metadata[METADATA].pop("hidden_outputs", [])

    def _mark_not_run(self, nb, hidden, died):
        """After the kernel died: checks without a verdict score 0 (an error output each)."""
        nb.metadata[METADATA]["kernel"] = died.ename
        for index, cell in enumerate(nb.cells):
            if not is_check(cell):
                continue
            meta = cell.metadata[METADATA]
            if index in hidden and meta.get("hidden_tests") in (None, "not run") and not has_error(cell.outputs):
                meta.setdefault("visible_outputs", len(cell.outputs))
                meta["hidden_tests"] = "not run"
                cell.outputs.append(error_output(died.ename, "hidden tests not run: " + died.evalue))
            elif not has_error(cell.outputs) and not meta.get("judged"):
                cell.outputs.append(error_output(died.ename, "not run: " + died.evalue))

    async def _async_handle_timeout(self, timeout, cell=None):
        """At the per-cell time limit: interrupt the kernel (nbclient), then give it :attr:`interrupt_grace`
        seconds to stop; a kernel that does not is stopped with its sandbox (:class:`KernelStopped`)."""
        reply = await super()._async_handle_timeout(timeout, cell)
        if not await self._async_stops_after_interrupt():
            self.log.error("autograder: the kernel did not stop within %s s of the interrupt; stopping it",
                           self.interrupt_grace)
            self.stopped_after_timeout = True
            await ensure_async(self.km._async_kill_kernel())  # the launcher stops the sandbox and its group
            raise KernelStopped("the kernel ignored the interrupt at the time limit and was stopped")
        return reply

    async def _async_stops_after_interrupt(self):
        """True once the interrupted kernel answers a ``kernel_info`` request (its shell answers only after the
        interrupted request ended); False if it has not within :attr:`interrupt_grace` seconds. A kernel
        that dies meanwhile raises ``DeadKernelError``. Shell replies read here (the interrupted request's
        own) are ones nbclient no longer waits for."""
        request = self.kc.kernel_info()
        deadline = time.monotonic() + self.interrupt_grace
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                message = await ensure_async(self.kc.shell_channel.get_msg(timeout=min(remaining, 1.0)))
            except Empty:
                await self._async_check_alive()
                continue
            if message.get("parent_header", {}).get("msg_id") == request:
                return True

    def _death(self):
        """The error output that says why the kernel died (a limit of the submission, or anything else)."""
        if self.stopped_after_timeout:
            return error_output("CellTimeoutError", "the cell ran past the per-cell time limit and did not stop "
                                "when interrupted: the kernel was stopped; the cells after this one were not run")
        if getattr(self.km, "limit_hit", lambda: None)() == "memory":
            return error_output("MemoryError", "the submission's processes together passed its memory limit "
                                "and were stopped")
        signal_name = getattr(self.km, "exit_signal", lambda: None)()
        if signal_name is not None and signal_name.name == "SIGXCPU":
            return error_output(CPU_LIMIT, "the kernel used up its CPU time limit and was stopped")
        cause = f" (signal {signal_name.name})" if signal_name is not None else ""
        return error_output(KERNEL_DIED, f"the kernel died{cause}; the cells after this one were not run")

    def _load_agent(self):
        """Load the probe agent into the kernel, before any learner code runs."""
        source = inspect.getsource(probe)
        self._run_silently(_LOAD_AGENT.format(token=self.token, source=source), "loading the probe agent")

    def _probe(self, request):
        """One probe request to the kernel's agent; its answer (a string), or None after a timeout."""
        expression = f"__import__('sys').modules[{self.token!r}].agent.handle({request!r})"
        message_id = self.kc.execute("", silent=True, store_history=False, user_expressions={"answer": expression})
        placeholder = nbformat.v4.new_code_cell("# a probe of the autograder")
        reply = self.wait_for_reply(message_id, placeholder)
        if reply is None:
            return None
        answer = reply.get("content", {}).get("user_expressions", {}).get("answer", {})
        if answer.get("status") != "ok":
            return json_error(f"the probe agent did not answer ({answer.get('ename', 'no reply')})")
        try:
            value = string_from_repr(answer.get("data", {}).get("text/plain", ""))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return json_error("the probe agent's answer is not a string")
        return value if isinstance(value, str) else json_error("the probe agent's answer is not a string")

    def _run_silently(self, code, what, expressions=None):
        """Run grader code in the kernel without history, events or outputs; its reply, or GuardError."""
        message_id = self.kc.execute(code, silent=True, store_history=False, user_expressions=expressions or {})
        content = (self.wait_for_reply(message_id) or {}).get("content", {})
        failed = [v for v in content.get("user_expressions", {}).values() if v.get("status") != "ok"]
        if content.get("status") != "ok" or failed:
            error = content if content.get("status") != "ok" else failed[0]
            raise GuardError(f"autograder: {what} failed in the kernel: "
                             f"{error.get('ename', 'no reply')}: {error.get('evalue', '')}")
        return content


def string_from_repr(text):
    """The string whose ``repr`` is ``text`` (the kernel shows a user expression's value as its repr). A
    repr in single quotes with no quote or backslash inside is the string itself between them (the probe
    answers are JSON, whose arrays are base64: tens of megabytes that ``ast.literal_eval`` would parse);
    anything else goes through ``ast.literal_eval``, and must come out a string."""
    if len(text) >= 2 and text[0] == text[-1] == "'" and "'" not in text[1:-1] and "\\" not in text:
        return text[1:-1]
    value = ast.literal_eval(text)
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


def json_error(message):
    """A probe answer that says the agent failed (the judge raises it as ProbeFailed)."""
    import json  # noqa: PLC0415
    return json.dumps({"wire_error": message})
