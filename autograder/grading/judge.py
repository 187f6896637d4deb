"""The deciding half of every graded check: run it in the grader's process, never in the learner's kernel.

A check cell reads ``TEST_FPN(FeaturePyramidNetwork)`` (plus, in the instructor's copy, hidden tests).
While grading, :class:`Judge` executes that source here, in the process that runs nbgrader, where no
learner code has ever run: ``TEST_*`` are the course's own checks (imported here from the course's
``tests.py``), ``np``, ``tf`` and ``keras`` are this process's modules, and every other free name of the
source is bound to a :class:`course_checks.remote.Remote` handle to the learner's object of that name.
Whatever the check does with a handle (call it with inputs the check chose, read an attribute) is one
request to the probe agent in the kernel (:mod:`course_checks.probe`), answered with plain data over the
kernel's shell channel. The verdict — the passing line the check printed, or its failure message — and
so the points are decided here; the kernel's outputs never enter a check cell (see ``docs/design.md``).
"""

import ast
import builtins
import contextlib
import importlib
import io
import os
import re
import threading
import types

import nbformat
from nbclient.exceptions import DeadKernelError

from course_checks import probe
from course_checks.remote import Link, LearnerError, ProbeFailed

JUDGE_MODULES = {"np": "numpy", "numpy": "numpy", "tf": "tensorflow", "tensorflow": "tensorflow", "keras": "keras",
                 "math": "math"}
"""Names a check cell may use for modules: bound to this process's modules, never to the kernel's."""


class KernelGone(BaseException):
    """The kernel died during a probe: a BaseException, so that no ``except Exception`` in a check (such as
    its ``call_learner``) turns the death into an ordinary failure; :meth:`Judge.run` re-raises the
    ``DeadKernelError`` it carries, and the grader marks the rest of the notebook not run."""


class ProbeTimeout(RuntimeError):
    """The learner's code did not answer a probe within the per-cell time limit (the kernel was interrupted)."""


class Background:
    """A value computed in a thread from now on (the checks import TensorFlow while the kernel starts and
    runs the learner's first cells); :attr:`value` waits for it and re-raises its error."""

    def __init__(self, function, *args):
        self._result, self._error = None, None
        self._thread = threading.Thread(target=self._run, args=(function, *args), daemon=True)
        self._thread.start()

    def _run(self, function, *args):
        try:
            self._result = function(*args)
        except BaseException as error:  # noqa: BLE001 (handed to whoever asks for the value)
            self._error = error

    @property
    def value(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


_LOADED, _LOADING = {}, threading.Lock()


def load_checks(path):
    """The course's checks module, loaded from ``path`` under a private name (the judge's own copy); compiled
    here without writing ``__pycache__`` into the course. Once per process: it loads (TensorFlow and all)
    while the kernel starts, and a second grading step in the process takes the same module."""
    path = os.path.realpath(path)
    with _LOADING:
        if path not in _LOADED:
            with open(path, encoding="utf-8") as handle:
                source = handle.read()
            module = types.ModuleType("_autograder_judge_checks")
            module.__file__ = path
            exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102 (the course's own tests.py)
            _LOADED[path] = module
        return _LOADED[path]


def free_names(source):
    """Names ``source`` reads without binding them itself."""
    tree = ast.parse(source)
    bound, used = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                used.append(node.id)
            else:
                bound.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return [name for name in dict.fromkeys(used) if name not in bound and not hasattr(builtins, name)]


def is_check_call(statement, check_names):
    """A statement that is only a call of a course check: ``TEST_X(...)``."""
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
            and isinstance(statement.value.func, ast.Name) and re.fullmatch(check_names, statement.value.func.id))


def split_setup(source, check_names):
    """``(setup, checks)``: a check cell's statements that prepare objects (run in the kernel, as in the
    notebook) and its check calls (judged here), both as source; ``None`` for a source that does not
    parse or mixes them in another order (then everything is judged here)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    lines = source.split("\n")
    setup, checks = [], []
    for statement in tree.body:
        text = "\n".join(lines[statement.lineno - 1: statement.end_lineno])
        if is_check_call(statement, check_names):
            checks.append(text)
        elif checks:
            return None
        else:
            setup.append(text)
    return "\n".join(setup), "\n".join(checks)


def error_output(ename, evalue):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class Judge:
    """Runs check-cell sources here with the learner's objects as handles; returns nbformat outputs.

    ``send(request: str) -> str | None`` delivers one probe request to the kernel's agent and returns
    its answer (``None``: the kernel timed out and was interrupted).
    """

    def __init__(self, checks_module, send):
        """``checks_module``: the course's checks, or a :class:`Background` loading them."""
        self._checks = checks_module
        self.link = Link(self._guarded(send))

    @property
    def checks(self):
        return self._checks.value if isinstance(self._checks, Background) else self._checks

    @staticmethod
    def _guarded(send):
        def deliver(request):
            try:
                answer = send(request)
            except DeadKernelError as error:
                raise KernelGone() from error
            if answer is None:
                raise ProbeTimeout("the learner's code ran past the per-cell time limit and was interrupted")
            return answer
        return deliver

    def namespace(self, source):
        """The names ``source`` needs: checks and modules from here, everything else as handles."""
        names = {name: getattr(self.checks, name) for name in dir(self.checks) if name.startswith("TEST_")}
        for name in free_names(source):
            if name in names:
                continue
            if name in JUDGE_MODULES:
                names[name] = importlib.import_module(JUDGE_MODULES[name])
                continue
            try:
                value = self.link.bind(name)
            except NameError:
                continue  # running the source raises NameError, as in the notebook
            if isinstance(value, probe.ModuleName):
                if value.split(".")[0] in set(JUDGE_MODULES.values()):
                    names[name] = importlib.import_module(value)
                continue
            names[name] = value
        return names

    def run(self, source):
        """Run ``source`` here; ``(outputs, passed)``: its printed lines, then its error if it failed."""
        stdout = io.StringIO()
        failure = None
        try:
            code = compile(source, "<check>", "exec")
            namespace = self.namespace(source)
            with contextlib.redirect_stdout(stdout):
                exec(code, namespace)  # noqa: S102 (the course's own check source, never the learner's)
        except (ProbeTimeout, ProbeFailed) as error:
            failure = error_output("CellTimeoutError" if isinstance(error, ProbeTimeout) else "ProbeFailed",
                                   str(error))
        except KernelGone as gone:
            raise gone.__cause__ from None
        except (KeyboardInterrupt, DeadKernelError):
            raise
        except BaseException as error:  # noqa: BLE001 (a failed check, or the learner's error through a handle)
            name = type(error).__name__
            message = str(error) if not isinstance(error, KeyError) else repr(error.args[0] if error.args else "")
            if isinstance(error, LearnerError) or not isinstance(error, AssertionError):
                message = message.split("\n")[0][:2000]
            failure = error_output(name, message)
        outputs = []
        if stdout.getvalue():
            outputs.append(nbformat.v4.new_output("stream", name="stdout", text=stdout.getvalue()))
        if failure is not None:
            outputs.append(failure)
        return outputs, failure is None

