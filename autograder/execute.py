"""nbgrader's Execute step, made safe against the code it runs (``GuardedExecute``).

Configured in ``autograde_config.py`` in place of nbgrader's ``Execute``, so ``make grade`` and a plain
``nbgrader autograde`` behave alike. Three things change:

**The kernel runs in the sandbox** (:mod:`autograder.kernel`, :mod:`autograder.sandbox`).

**Hidden tests run after every learner cell.** The notebook is executed in two phases:

1. every cell in order, each check cell with only its *visible* part (the hidden-test regions cut out,
   exactly what learners were given): while any learner code runs, the kernel has never received a
   line of a hidden test, so no hook, tracer, history (``In``) or file can show one;
2. then the outputs of all cells are frozen, and each check cell's hidden part runs, in order, against
   the learner's objects as the notebook left them. Its outputs are appended to the check cell (for
   nbgrader's scoring and the instructor's autograded notebook) and counted in the cell's metadata
   (``autograder.visible_outputs``), so the feedback (:mod:`autograder.feedback`) shows the frozen,
   learner-visible outputs and the grader's verdict instead. Anything the learner's code does during
   phase 2 (printing, updating an earlier display) is thrown away with the frozen outputs restored.

**Check cells call the course's own checks.** Before the first cell, the kernel loads a private copy
of the checks module (``tests.py``) under a random name the learner's code never sees. Right before
each check cell (and each hidden part) runs, every ``TEST_*`` name it uses is bound again to that
copy, so a learner who redefines, aliases or patches ``TEST_FPN`` (or the ``tests`` module) still gets
the course's verdict. :mod:`autograder.scan` flags such code as tampering for review, too.

If the learner's code broke the interpreter so that this binding fails, the check cell fails
(``CheckBindingError``, status ``tampering``). When the kernel dies (``os._exit``, CPU limit), the rest of
the notebook is not run: every check cell not yet run, and every hidden part, gets an error output, so
it scores 0; earlier checks keep their points.
"""

import ast
import copy
import re
import secrets

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbgrader.preprocessors import Execute
from traitlets import Unicode

from .kernel import SandboxKernelManager
from .sandbox import Sandbox, check_support

HIDDEN_BEGIN, HIDDEN_END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
KERNEL_DIED = "KernelDied"
CPU_LIMIT = "CPUTimeLimit"
BINDING_FAILED = "CheckBindingError"
METADATA = "autograder"

_LOAD_CHECKS = '''
def _autograder_load(path):
    import importlib.util, os
    if not os.path.isfile(path):
        return None
    spec = importlib.util.spec_from_file_location("_autograder_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
{token} = _autograder_load({path!r})
del _autograder_load
get_ipython().user_ns_hidden[{token!r}] = {token}
'''


class GuardError(RuntimeError):
    """The grader's own code (loading or binding the checks) failed in the kernel."""


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


def error_output(ename, evalue):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def has_error(outputs):
    return any(output.output_type == "error" for output in outputs)


class GuardedExecute(Execute):
    """nbgrader's ``Execute`` with the kernel sandboxed, hidden tests deferred and checks re-bound."""

    check_names = Unicode(r"\bTEST_\w+", help="Regular expression of the check functions' names").tag(config=True)
    checks_file = Unicode("tests.py", help="The checks module, relative to the kernel's working folder; "
                          "loaded privately before any learner code runs").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        """Execute ``nb`` in the two phases described in the module docstring."""
        NotebookClient.__init__(self, nb, km)  # as nbconvert's ExecutePreprocessor does: a fresh execution
        sandboxed = Sandbox(config=self.config).enabled
        if sandboxed:
            check_support()  # a clear message (plain nbgrader too) rather than a kernel that dies at start
        self.kernel_manager_class = SandboxKernelManager if sandboxed else AsyncKernelManager
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self.skip_cells_with_tag = "autograder-never-" + secrets.token_hex(8)  # learners' tags skip nothing
        self.token = "_autograder_" + secrets.token_hex(8)
        hidden = {}
        for index, cell in enumerate(nb.cells):
            cell.metadata.pop(METADATA, None)  # whatever the submission put there
            if is_check(cell):
                visible, hidden_part = split_hidden(cell.source)
                cell.metadata[METADATA] = {"full_source": cell.source}
                cell.source = visible
                if hidden_part:
                    hidden[index] = hidden_part
        nb.metadata[METADATA] = {"guarded": True, "kernel": "ok"}
        try:
            with self.setup_kernel():
                info = self.wait_for_reply(self.kc.kernel_info())
                nb.metadata["language_info"] = info["content"]["language_info"]
                self.checks = self._load_checks()
                died = self._run_cells(nb)
                frozen = [copy.deepcopy(cell.get("outputs", [])) for cell in nb.cells]
                if not died:
                    died = self._run_hidden(nb, hidden, frozen)
                self._restore(nb, hidden, frozen)
                if died:
                    self._mark_not_run(nb, hidden, died)
        finally:
            for cell in nb.cells:
                if METADATA in cell.metadata and "full_source" in cell.metadata[METADATA]:
                    cell.source = cell.metadata[METADATA].pop("full_source")
        self.set_widgets_metadata()
        return nb, self.resources

    def _run_cells(self, nb):
        """Phase 1. Returns the kernel's cause of death (an error output), or None."""
        for index, cell in enumerate(nb.cells):
            try:
                if is_check(cell) and not self._bound(cell, cell):
                    continue
                self.execute_cell(cell, index, store_history=True)
            except DeadKernelError:
                died = self._death()
                cell.outputs = list(cell.get("outputs", [])) + [died]
                return died
        return None

    def _run_hidden(self, nb, hidden, frozen):
        """Phase 2: each hidden part whose visible check passed. Returns the kernel's cause of death or None."""
        for index, source in sorted(hidden.items()):
            cell = nb.cells[index]
            cell.metadata[METADATA]["visible_outputs"] = len(frozen[index])
            if has_error(frozen[index]):
                cell.metadata[METADATA]["hidden_tests"] = "not run"
                continue
            part = nbformat.v4.new_code_cell(source)
            nb.cells.append(part)  # nbclient writes an executed cell back into the notebook at its index
            try:
                if self._bound(cell, part):
                    self.execute_cell(part, len(nb.cells) - 1, store_history=False)
            except DeadKernelError:
                died = self._death()
                cell.metadata[METADATA]["hidden_outputs"] = [died]
                return died
            finally:
                nb.cells.pop()
            cell.metadata[METADATA]["hidden_outputs"] = part.outputs
            cell.metadata[METADATA]["hidden_tests"] = "failed" if has_error(part.outputs) else "passed"
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
            elif not has_error(cell.outputs) and "execution_count" in cell and cell.execution_count is None:
                cell.outputs.append(error_output(died.ename, "not run: " + died.evalue))

    def _death(self):
        """The error output that says why the kernel died (the CPU limit, or anything else)."""
        signal_name = getattr(self.km, "exit_signal", lambda: None)()
        if signal_name is not None and signal_name.name == "SIGXCPU":
            return error_output(CPU_LIMIT, "the kernel used up its CPU time limit and was stopped")
        cause = f" (signal {signal_name.name})" if signal_name is not None else ""
        return error_output(KERNEL_DIED, f"the kernel died{cause}; the cells after this one were not run")

    def _bound(self, cell, target):
        """Bind ``cell``'s checks again; if the learner's code broke that, ``target`` fails (and is not run)."""
        try:
            self._rebind_checks(cell.metadata[METADATA]["full_source"])
        except GuardError as error:
            target.outputs = [error_output(BINDING_FAILED, f"the course's checks could not be bound: {error}")]
            return False
        return True

    def _load_checks(self):
        """Load the private copy of the checks (before any learner code); the names of its checks."""
        listing = (f"[] if {self.token} is None else "
                   f"[n for n in dir({self.token}) if __import__('re').fullmatch({self.check_names!r}, n)]")
        content = self._run_silently(_LOAD_CHECKS.format(token=self.token, path=self.checks_file),
                                     "loading the course's checks", {"names": listing})
        return set(ast.literal_eval(content["user_expressions"]["names"]["data"]["text/plain"]))

    def _rebind_checks(self, source):
        names = sorted(set(re.findall(self.check_names, source)) & self.checks)
        if names:
            code = "\n".join(f"{name} = {self.token}.{name}" for name in names)
            self._run_silently(code, "binding the course's checks")

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
