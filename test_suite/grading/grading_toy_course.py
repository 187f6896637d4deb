"""A tiny nbgrader course and the hostile catalogue of submissions for the grader's tests.

The toy course has one assignment, ``toy`` (a second one, ``toy2``, on request), with one notebook of
two stages: ``add`` (test cell worth 2 points) and ``mul`` (3 points), each with a visible check from the
course's ``tests.py`` and a hidden test. ``TEST_ADD`` compares with a reference kept in ``tests.py``'s
globals. It uses the course's real autograding settings (``autograder/grading/autograde_config.py``), due dates
and late policies, but no TensorFlow, so the catalogue grades in a minute or two.

:func:`catalogue` maps each student to a :class:`Case`: the files of the submission (notebooks, bytes,
links, pipes, a timestamp), the expected status and score. Every item of the grader's hostile-input
issue is a case; the comment above each group names the item.
"""

import json
import os
import textwrap
from dataclasses import dataclass

import nbformat

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AUTOGRADE_CONFIG = os.path.join(REPOSITORY, "autograder", "grading", "autograde_config.py")
ASSIGNMENT, NOTEBOOK = "toy", "toy"
POINTS = {"test_add": 2, "test_mul": 3}
MAX_SCORE = sum(POINTS.values())
HIDDEN_ADD = 'assert add(-1, 1) == 0, "add(-1, 1) should be 0"'
HIDDEN_MUL = 'assert mul(-2, 3) == -6, "mul(-2, 3) should be -6"'
HIDDEN_TEXTS = ("HIDDEN TESTS", "add(-1, 1)", "mul(-2, 3)", "should be 0", "should be -6")
"""Text of the hidden tests: none of it may appear in any feedback page."""
DUE = "2030-01-01 00:00:00 UTC"
BEFORE_DUE, AFTER_DUE = "2029-12-31 23:00:00 UTC", "2030-01-02 09:00:00 UTC"

TESTS_PY = '''"""Checks of the toy course."""


def _reference_add(a, b):
    return a + b


def TEST_ADD(add):
    assert add(2, 3) == _reference_add(2, 3), f"add(2, 3) should be 5, got {add(2, 3)!r}"
    print("TEST_ADD passed")


def TEST_MUL(mul):
    assert mul(2, 3) == 6, f"mul(2, 3) should be 6, got {mul(2, 3)!r}"
    print("TEST_MUL passed")
'''

CONFIG = f'''import os
c = get_config()
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
load_subconfig({AUTOGRADE_CONFIG!r})
c.Sandbox.work_files = {{"tests.py": os.path.join(c.CourseDirectory.root, "tests.py")}}
c.Schedule.due = {{"toy": {DUE!r}, "toy2": {DUE!r}}}
c.Schedule.late_policy = {{"toy2": "20% per day"}}
c.LateSubmissionPlugin.penalty_method = "zero"
'''


def _meta(grade_id, *, solution=False, grade=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def solution_notebook():
    cells = [
        nbformat.v4.new_markdown_cell("# Toy assignment\nWrite `add`, then `mul`."),
        nbformat.v4.new_code_cell("from tests import TEST_ADD, TEST_MUL"),
        nbformat.v4.new_code_cell("def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION",
                                  metadata=_meta("add", solution=True)),
        nbformat.v4.new_code_cell(f"TEST_ADD(add)\n### BEGIN HIDDEN TESTS\n{HIDDEN_ADD}\n### END HIDDEN TESTS",
                                  metadata=_meta("test_add", grade=True, locked=True, points=2)),
        nbformat.v4.new_code_cell("def mul(a, b):\n    ### BEGIN SOLUTION\n    return a * b\n    ### END SOLUTION",
                                  metadata=_meta("mul", solution=True)),
        nbformat.v4.new_code_cell(f"TEST_MUL(mul)\n### BEGIN HIDDEN TESTS\n{HIDDEN_MUL}\n### END HIDDEN TESTS",
                                  metadata=_meta("test_mul", grade=True, locked=True, points=3)),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def make_course(root, assignments=(ASSIGNMENT,)):
    """Write the toy course to ``root`` (each assignment the same notebook) and generate its exercises;
    returns the exercise notebook. Its due dates: ``toy`` and ``toy2`` at :data:`DUE`, ``toy`` with the
    ``zero`` late policy, ``toy2`` with 20 % per day."""
    from autograder.course import nbgrader_api

    os.makedirs(root)
    with open(os.path.join(root, "nbgrader_config.py"), "w") as handle:
        handle.write(CONFIG)
    with open(os.path.join(root, "tests.py"), "w") as handle:
        handle.write(TESTS_PY)
    for assignment in assignments:
        os.makedirs(os.path.join(root, "solutions", assignment))
        nbformat.write(solution_notebook(), os.path.join(root, "solutions", assignment, NOTEBOOK + ".ipynb"))
        outcome = nbgrader_api(root).generate_assignment(assignment, force=True, create=True)
        assert outcome["success"], outcome.get("error")
    return nbformat.read(os.path.join(root, "exercises", assignments[0], NOTEBOOK + ".ipynb"), as_version=4)


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _answer(exercise, add=None, mul=None, extra_cell=None):
    nb = nbformat.from_dict(json.loads(json.dumps(exercise)))
    if add is not None:
        _cell(nb, "add").source = textwrap.dedent(add).strip()
    if mul is not None:
        _cell(nb, "mul").source = textwrap.dedent(mul).strip()
    if extra_cell is not None:  # a cell of the learner's own, after the last check
        nb.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(extra_cell).strip()))
    return nb


ADD = "def add(a, b):\n    return a + b"
MUL = "def mul(a, b):\n    return a * b"
WRONG_ADD = "def add(a, b):\n    return a - b"
WRONG_MUL = "def mul(a, b):\n    return a + b"
SNEAKY_ADD = "def add(a, b):\n    return 0 if a == -b else a - b"  # passes the hidden test only


@dataclass
class Link:
    """A symbolic link to ``target`` in the submission (intake must refuse it, never follow it)."""

    target: str


@dataclass
class Fifo:
    """A named pipe in the submission (reading it would block forever)."""


@dataclass
class Case:
    files: dict  # name -> notebook, bytes, Link or Fifo
    status: str
    score: float
    timestamp: str = ""  # nbgrader collect's timestamp.txt
    absent: tuple = ()  # more text that must not appear in the feedback page (besides HIDDEN_TEXTS)


RETRY_FOREVER = """import time
def fetch():
    time.sleep(1)
    raise ConnectionError("offline")
while True:
    try:
        data = fetch()
        break
    except:
        print("retrying")"""
"""A retry loop whose bare ``except:`` also catches the KeyboardInterrupt of the grader's interrupt."""

AST_SWALLOW = """
import ast
class Swallow(ast.NodeTransformer):
    def visit_Module(self, node):
        handler = ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()), name=None, body=[ast.Pass()])
        node.body = [ast.Try(body=node.body or [ast.Pass()], handlers=[handler], orelse=[], finalbody=[])]
        return ast.fix_missing_locations(node)
get_ipython().ast_transformers.append(Swallow())
"""

TRICKS = {
    # name: (code in add's body, code after it in the cell, the scan's flag or "ok").
    # Each is tried with a wrong add (it must earn nothing: 3/5, mul's points) and a right one (5/5): the
    # score is what the honest part of the work is worth, whatever the trick; the scan only flags.
    "displayhook": ("import sys\n    sys.displayhook('TEST_ADD passed')", "", "tampering"),
    "displayscore": ("import sys\n    sys.displayhook(2)", "", "tampering"),
    "displaysverdict": ("from IPython.display import display\n    display('TEST_ADD passed')", "", "ok"),
    "printsverdict": ("print('TEST_ADD passed')", "", "ok"),
    "asttransformer": ("", AST_SWALLOW, "tampering"),
    "inputtransformer": ("", "get_ipython().input_transformers_post.append(\n    lambda lines: ['try:\\n'] + "
                         "['    ' + line for line in lines] + ['except BaseException:\\n    pass\\n'])", "tampering"),
    "customexc": ("", "get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)", "tampering"),
    "numpyalias": ("", "import numpy as _n\n_n.allclose = lambda *a, **k: True\n_n.array_equal = lambda *a, **k: True",
                   "tampering"),
    "sysmodules": ("", "import sys as _s\n_s.modules['tests'].TEST_ADD = lambda add: print('TEST_ADD passed')",
                   "tampering"),
    "aliasmagic": ("", "%alias_magic t time", "tampering"),
    "resolvename": ("", "import pkgutil\npkgutil.resolve_name('tests:TEST_ADD').__code__ = (lambda add: None).__code__",
                    "tampering"),
    "framewalk": ("import operator, sys as _s\n    frame = operator.attrgetter('f_back')(_s._getframe())\n"
                  "    frame.f_locals['expected'] = a - b", "", "tampering"),
    "builtinsassert": ("", "import builtins\nbuiltins.AssertionError = type('Quiet', (Exception,), {})", "tampering"),
}


def _trick(add_body, name):
    body, after, _ = TRICKS[name]
    lines = ["def add(a, b):"] + ([f"    {body}"] if body else []) + [f"    return {add_body}"]
    return "\n".join(lines) + ("\n" + after.strip() if after else "")


def _crlf(nb):
    for cell in nb.cells:
        cell.source = cell.source.replace("\n", "\r\n")
    return nb


def _with_import(exercise, line):
    nb = _answer(exercise, ADD, MUL)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "from tests import" in c.source)
    cell.source = line + "\n" + cell.source
    return nb


def _with_markdown(exercise):
    nb = _answer(exercise, ADD, MUL)
    nb.cells.insert(2, nbformat.v4.new_markdown_cell("My notes: *add* first, then **mul**. $a + b$"))
    return nb


HONEST_ADDS = {
    # Correct answers in other styles, and ordinary habits an earlier scan mistook for tampering: full marks,
    # no flag.
    "ownimport": "from tests import TEST_ADD\n" + ADD,
    "starimport": "from tests import *\n" + ADD,
    "printsolutions": ADD + "\nprint('my solutions are below; see the .ipynb next to the gradebook')",
    "dunderclass": ADD + "\nkind = add.__class__.__name__\nstate = add.__dict__",
    "computedgetattr": "class Ops:\n    def plus(self, a, b):\n        return a + b\n\n\ndef add(a, b):\n"
                       "    name = 'plus'\n    return getattr(Ops(), f'{name}')(a, b)",
    "lambda": "add = lambda a, b: a + b",
    "callable": "class Adder:\n    def __call__(self, a, b):\n        return a + b\n\n\nadd = Adder()",
    "numpyint": "import numpy as np\ndef add(a, b):\n    return np.int64(a) + np.int64(b)",
    "floatresult": "def add(a, b):\n    return float(a + b)",
    "zerodarray": "import numpy as np\ndef add(a, b):\n    return np.array(a + b)",
    "npadd": "import numpy as np\ndef add(a, b):\n    return np.add(a, b)",
    "lrucache": "import functools\n@functools.lru_cache(maxsize=None)\ndef add(a, b):\n    return a + b",
    "annotated": 'def add(a: int, b: int) -> int:\n    """The sum."""\n    return a + b',
    "debugprints": "def add(a, b):\n    print('adding', a, b)\n    return a + b",
    "warns": "import warnings\ndef add(a, b):\n    warnings.warn('careful')\n    return a + b",
    "runsowncheck": ADD + "\nTEST_ADD(add)",
    "unicode": "def add(α, β):\n    # Σ of two numbers ✓\n    return α + β",
    "globalcounter": "calls = 0\ndef add(a, b):\n    global calls\n    calls += 1\n    return a + b",
}


def _honest(exercise):
    cases = {f"honest-{name}": Case({NOTEBOOK + ".ipynb": _answer(exercise, add, MUL)}, "ok", MAX_SCORE)
             for name, add in HONEST_ADDS.items()}
    nb = NOTEBOOK + ".ipynb"
    cases["honest-importmath"] = Case({nb: _with_import(exercise, "import math")}, "ok", MAX_SCORE)
    cases["honest-crlf"] = Case({nb: _crlf(_answer(exercise, ADD, MUL))}, "ok", MAX_SCORE)
    cases["honest-markdown"] = Case({nb: _with_markdown(exercise)}, "ok", MAX_SCORE)
    cases["honest-operatormul"] = Case({nb: _answer(exercise, ADD, "import operator\nmul = operator.mul")}, "ok",
                                       MAX_SCORE)
    return cases


def _tricks(exercise):
    nb = NOTEBOOK + ".ipynb"
    cases = {}
    for name, (_, _, flag) in TRICKS.items():
        cases[f"trick-{name}-wrong"] = Case({nb: _answer(exercise, _trick("a - b", name), MUL)}, flag, 3)
        cases[f"trick-{name}-right"] = Case({nb: _answer(exercise, _trick("a + b", name), MUL)}, flag, MAX_SCORE)
    return cases


SPY_ARGUMENTS = """
seen = []
def add(a, b):
    seen.append((a, b))
    return a + b
import threading, time
from IPython.display import display
board = display("arguments", display_id=True)
def watch():
    while True:
        board.update(repr(seen))
        print("arguments:", seen)
        time.sleep(0.05)
threading.Thread(target=watch, daemon=True).start()
"""

LINECACHE = """
import linecache, traceback
print(sorted(linecache.cache))
try:
    add(None, None)
except Exception:
    traceback.print_exc()
"""

FORGED_AGENT = """
import sys
for key, module in list(sys.modules.items()):
    if key.startswith("_autograder") and hasattr(module, "agent"):
        module.agent.handle = lambda request: '{"value": 5}'
"""


def _leaks_and_sabotage(exercise):
    nb = NOTEBOOK + ".ipynb"
    noisy_add = ("import sys\ndef add(a, b):\n    for _ in range(50):\n        print('2026-01-01 00:00:00.000001: "
                 "I tensorflow/core/util/port.cc:153] noise', file=sys.stderr)\n    return abs(a) + abs(b)")

    class Weird:
        pass

    return {
        # The hidden tests' inputs never reach anything the learner sees.
        "leak-spyarguments": Case({nb: _answer(exercise, SPY_ARGUMENTS, MUL, extra_cell="print('seen:', seen)")},
                                  "ok", MAX_SCORE, absent=("(-1, 1)",)),
        "leak-linecache": Case({nb: _answer(exercise, ADD, MUL, extra_cell=LINECACHE)}, "ok", MAX_SCORE),
        "leak-shiftsoutputs": Case({nb: _answer(exercise, noisy_add, MUL)}, "ok", 3),
        # Answers that are not what they seem, and a kernel that breaks its own grading: never more points.
        "odd-alwaysequal": Case({nb: _answer(exercise, "class Yes:\n    def __eq__(self, other):\n        return True"
                                             "\n\n\ndef add(a, b):\n    return Yes()", MUL)}, "ok", 3),
        "odd-deepnesting": Case({nb: _answer(exercise, "def add(a, b):\n    value = a + b\n    for _ in range(100):\n"
                                             "        value = [value]\n    return value", MUL)}, "ok", 3),
        "odd-interrupts": Case({nb: _answer(exercise, "def add(a, b):\n    raise KeyboardInterrupt", MUL)}, "ok", 3),
        "odd-exitsinprobe": Case({nb: _answer(exercise, "import os\ndef add(a, b):\n    os._exit(3)", MUL)},
                                 "kernel-died", 0),
        "odd-clearsnamespace": Case({nb: _answer(exercise, ADD, MUL, extra_cell="for name in list(globals()):\n"
                                                 "    if name.startswith('_'):\n        del globals()[name]")},
                                    "tampering", MAX_SCORE),
        "odd-forgedagent": Case({nb: _answer(exercise, WRONG_ADD + "\n" + FORGED_AGENT, MUL)}, "tampering", 0),
        # Grading metadata made by hand: nbgrader refuses the notebook, the rest of the class is graded.
        "odd-emptymetadata": Case({nb: _with_cell_metadata(exercise, {})}, "rejected-notebook", 0),
        "odd-madeupcell": Case({nb: _with_cell_metadata(exercise, {
            "grade": True, "grade_id": "made_up", "locked": True, "points": 5, "schema_version": 3,
            "solution": False, "task": False})}, "rejected-notebook", 0),
    }


def _with_cell_metadata(exercise, nbgrader):
    """The correct answers, plus a cell of the learner's own carrying ``nbgrader`` metadata."""
    nb = _answer(exercise, ADD, MUL, extra_cell="print('mine')")
    nb.cells[-1].metadata["nbgrader"] = nbgrader
    return nb


def catalogue(exercise, course, out, other_checkout):
    """``{student: Case}``. ``course``, ``out`` and ``other_checkout`` are what hostile code reaches for.

    Paths the scan would flag (``solutions``, ``gradebook``, ``.ipynb``) are spelled in pieces, as an
    attacker would; the tampering cases pair a wrong answer with the trick, so only the trick could score.
    """
    nb = NOTEBOOK + ".ipynb"
    deleted = _answer(exercise, ADD, MUL)
    deleted.cells = [c for c in deleted.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    edited = _answer(exercise, WRONG_ADD, WRONG_MUL)
    for grade_id in POINTS:
        _cell(edited, grade_id).source = 'print("all tests passed")'
    skipping = _answer(exercise, WRONG_ADD, WRONG_MUL)
    for grade_id in POINTS:
        _cell(skipping, grade_id).metadata["tags"] = ["skip-execution"]
    writes = f"""
        import os
        for target in [{course!r} + "/escape.txt", {out!r} + "/escape.txt", "/tmp/escape-grading.txt",
                       os.path.expanduser("~/../escape.txt"), "../../../../escape.txt", "/escape.txt",
                       "/etc/passwd", "/usr/escape.txt"]:
            try:
                with open(target, "a") as handle:
                    handle.write("escaped")
                print("wrote", target)
            except OSError as error:
                print("blocked", target, type(error).__name__)
    """
    snoop = f"""
        import glob, os
        found = []
        for folder in [{out!r}, {course!r}, {other_checkout!r}, "/root", "/work", "/home", "/srv", "/mnt"]:
            found += [p for p in glob.glob(folder + "/**/*", recursive=True)
                      if os.path.isfile(p) and not p.startswith(os.getcwd())]
        for path in found:
            try:
                os.remove(path)
            except OSError:
                pass
        print("visible files:", len(found))
        print("other processes:", len([p for p in os.listdir("/proc") if p.isdigit()]) - 2)
        print("cmdlines:", [open(f"/proc/{{p}}/cmdline").read() for p in os.listdir("/proc") if p.isdigit()])
        print("own notebook files:", glob.glob("*.ip" + "ynb"))
        print("grader secret:", os.environ.get("GRADER_SECRET"))
    """
    leave_links = f"""
        import os
        for name, target in [("solution.txt", {course!r} + "/sol" + "utions/toy/toy.ip" + "ynb"),
                             ("secret.txt", {course!r} + "/instructor-secret.txt"),
                             ("book.db", {out!r} + "/grade" + "book.db"),
                             ("other.html", {out!r} + "/feedback/correct/toy/toy.html"),
                             ("zero.txt", "/dev/zero"), ("tmp-link", "/tmp")]:
            os.symlink(target, name)
        os.mkfifo("pipe.txt")
        os.mkfifo("/tmp/pipe")
        print("left", sorted(os.listdir(".")))
    """
    spy = """
        import threading, time
        from IPython.display import display
        handle = display("watching", display_id=True)
        def watch():
            while True:
                handle.update("seen: " + In[-1])
                print("seen:", In[-1])
                time.sleep(0.05)
        threading.Thread(target=watch, daemon=True).start()
        print(In)
    """
    hook = ADD + "\nget_ipython().events.register('pre_run_cell', lambda info: print('CELL:', info.raw_cell))"
    return {
        # The basics: what nbgrader itself scores, and how a broken notebook is reported.
        "correct": Case({nb: _answer(exercise, ADD, MUL)}, "ok", MAX_SCORE),
        "untouched": Case({nb: exercise}, "ok", 0),
        "partial": Case({nb: _answer(exercise, ADD, WRONG_MUL)}, "ok", 2),
        "hiddenfail": Case({nb: _answer(exercise, "def add(a, b):\n    return abs(a) + abs(b)", MUL)}, "ok", 3),
        "invalidjson": Case({nb: b'{"cells": [ this is not json'}, "invalid-notebook", 0),
        "missing": Case({"notes.txt": b"I forgot the notebook"}, "missing", 0),
        "renamed": Case({"toy-Copy1.ipynb": _answer(exercise, ADD, MUL)}, "renamed", MAX_SCORE),
        "deletedtests": Case({nb: deleted}, "restored-tests", MAX_SCORE),
        "editedtests": Case({nb: edited}, "restored-tests", 0),
        # Resource limits: time, memory, processes' outputs, disk (item 5).
        "infiniteloop": Case({nb: _answer(exercise, "def add(a, b):\n    while True:\n        pass", MUL)},
                             "cell-timeout", 3),
        # Code that swallows the interrupt (a bare except in a retry loop): the kernel is stopped after the grace
        # period; the check judged before keeps its points (its hidden test still runs), the rest is not run.
        "ignoresinterrupt": Case({nb: _answer(exercise, ADD, MUL + "\n" + RETRY_FOREVER)}, "cell-timeout", 2),
        "ignoresinterrupt-hiddenfail": Case({nb: _answer(exercise, "def add(a, b):\n    return abs(a) + abs(b)",
                                                         MUL + "\n" + RETRY_FOREVER)}, "cell-timeout", 0),
        "ignoresinterruptinprobe": Case({nb: _answer(exercise, ADD, "import time\ndef mul(a, b):\n"
                                                     "    while True:\n        try:\n            time.sleep(1)\n"
                                                     "        except:\n            pass")}, "cell-timeout", 2),
        "kerneldies": Case({nb: _answer(exercise, ADD, MUL + "\nimport os\nos._exit(1)")}, "kernel-died", 0),
        "memorybomb": Case({nb: _answer(exercise, "def add(a, b):\n    hog = []\n    while True:\n"
                                        "        hog.append(bytearray(2**28))", MUL)}, "memory-limit", 3),
        "flood": Case({nb: _answer(exercise, ADD + "\nimport sys\nfor i in range(20000):\n    print(i)\n"
                                   "    print(i, file=sys.stderr)", MUL)}, "output-limit", MAX_SCORE),
        "bigoutput": Case({nb: _answer(exercise, ADD + "\nprint('x' * 50_000_000)", MUL)}, "output-limit", MAX_SCORE),
        "diskfill": Case({nb: _answer(exercise, ADD, MUL, extra_cell="""
            with open("big.bin", "wb") as handle:
                for _ in range(600):
                    handle.write(b"0" * 2**20)""")}, "disk-limit", MAX_SCORE),
        "tfnoise": Case({nb: _answer(exercise, "import sys\ndef add(a, b):\n    print('2026-01-01 00:00:00.000001: "
                                     "I tensorflow/core/util/port.cc:153] oneDNN custom operations are on.', "
                                     "file=sys.stderr)\n    return a + b", MUL)}, "ok", MAX_SCORE),
        # The sandbox: an allow-list (item 4), nothing a worker leaves is followed (items 1, 2).
        "writesoutside": Case({nb: _answer(exercise, ADD + "\n" + textwrap.dedent(writes), MUL)}, "ok", MAX_SCORE),
        "snooping": Case({nb: _answer(exercise, ADD + "\n" + textwrap.dedent(snoop), MUL)}, "ok", MAX_SCORE),
        "leaveslinks": Case({nb: _answer(exercise, ADD + "\n" + textwrap.dedent(leave_links), MUL)}, "ok",
                            MAX_SCORE),
        "teststampered": Case({nb: _answer(exercise, SNEAKY_ADD + "\ntry:\n    open('tes' + 'ts.py', 'w').write("
                                           "'def TEST_ADD(f): pass')\nexcept OSError as error:\n"
                                           "    print('blocked', type(error).__name__)", MUL),
                               "tests.py": TESTS_PY.replace("assert add(2, 3) ==", "assert True or").encode()},
                              "ok", 3),
        # Hidden tests out of reach of the learner's kernel (item 3).
        "hook": Case({nb: _answer(exercise, hook, MUL)}, "tampering", MAX_SCORE),
        "echoes": Case({nb: _answer(exercise, ADD, MUL + "\n" + textwrap.dedent(spy))}, "ok", MAX_SCORE),
        # Rebinding a check changes nothing the judge decides (add wrong: mul's 3 points); the scan flags it for
        # review. Using the reference is flagged, not scored: the instructor decides (item 6).
        "monkeypatch": Case({nb: _answer(exercise, SNEAKY_ADD + "\nTEST_ADD = lambda add: print('TEST_ADD passed')",
                                         MUL)}, "tampering", 3),
        "defcheck": Case({nb: _answer(exercise, WRONG_ADD + "\ndef TEST_ADD(add):\n    print('TEST_ADD passed')",
                                      MUL)}, "tampering", 3),
        "mockcheck": Case({nb: _answer(exercise, WRONG_ADD + "\nfrom unittest.mock import MagicMock as TEST_ADD",
                                       MUL)}, "tampering", 3),
        "patchcode": Case({nb: _answer(exercise, WRONG_ADD + "\nTEST_ADD.__code__ = (lambda add: None).__code__",
                                       MUL)}, "tampering", 3),
        "magiccheck": Case({nb: _answer(exercise, WRONG_ADD + "\n%time TEST_ADD = lambda add: None", MUL)},
                           "tampering", 3),
        "skiptag": Case({nb: skipping}, "ok", 0),
        "unbinds": Case({nb: _answer(exercise, ADD + "\nfor name in dir():\n    if name.startswith('_autograder'):\n"
                                     "        del globals()[name]", MUL)}, "tampering", MAX_SCORE),
        "globalsref": Case({nb: _answer(exercise, "add = TEST_ADD.__globals__['_reference_add']", MUL)},
                           "uses-reference", POINTS["test_mul"]),
        "importsreference": Case({nb: _answer(exercise, "if False:  # never runs: the scan alone must catch it\n"
                                                "    from retinanet.boxes import iou\n" + ADD, MUL)},
                                 "uses-reference", MAX_SCORE),
        "magicimport": Case({nb: _answer(exercise, ADD + "\n%time from retinanet.boxes import iou", MUL)},
                            "uses-reference", MAX_SCORE),
        # Intake: links, pipes, timestamps (items 7, 8).
        "linktosolution": Case({nb: Link(os.path.join(course, "solutions", "toy", "toy.ipynb"))}, "refused", 0),
        "linktostudent": Case({nb: Link("../../correct/toy/toy.ipynb")}, "refused", 0),
        "pipefile": Case({nb: _answer(exercise, ADD, MUL), "data.txt": Fifo()}, "refused", 0),
        "badtimestamp": Case({nb: _answer(exercise, ADD, MUL)}, "refused", 0, timestamp="the day before the deadline"),
        "ontime": Case({nb: _answer(exercise, ADD, MUL)}, "ok", MAX_SCORE, timestamp=BEFORE_DUE),
        "late": Case({nb: _answer(exercise, ADD, MUL)}, "late", 0, timestamp=AFTER_DUE),
        **_tricks(exercise),
        **_honest(exercise),
        **_leaks_and_sabotage(exercise),
    }


LINKED_FOLDER = "linkedfolder"
ODD_FOLDER = "José García"
"""Two more entries of the submissions folder: an assignment folder that is a link, a name that is no id."""


def write_submissions(folder, cases):
    """Write ``cases`` in nbgrader's layout, ``folder/<student>/toy/<file>``, and the two odd entries."""
    for student, case in cases.items():
        directory = os.path.join(folder, student, ASSIGNMENT)
        os.makedirs(directory)
        if case.timestamp:
            with open(os.path.join(directory, "timestamp.txt"), "w") as handle:
                handle.write(case.timestamp)
        for name, content in case.files.items():
            path = os.path.join(directory, name)
            if isinstance(content, Link):
                os.symlink(content.target, path)
            elif isinstance(content, Fifo):
                os.mkfifo(path)
            elif isinstance(content, bytes):
                with open(path, "wb") as handle:
                    handle.write(content)
            else:
                nbformat.write(content, path)
    os.makedirs(os.path.join(folder, LINKED_FOLDER))
    os.symlink(os.path.join(folder, "correct", ASSIGNMENT), os.path.join(folder, LINKED_FOLDER, ASSIGNMENT))
    os.makedirs(os.path.join(folder, ODD_FOLDER, ASSIGNMENT))
    nbformat.write(cases["correct"].files[NOTEBOOK + ".ipynb"],
                   os.path.join(folder, ODD_FOLDER, ASSIGNMENT, NOTEBOOK + ".ipynb"))


DESCRIPTIONS = {
    "correct": "correct", "untouched": "the untouched exercise", "partial": "`add` right, `mul` wrong",
    "hiddenfail": "passes a visible check, fails its hidden test", "invalidjson": "invalid notebook JSON",
    "missing": "no notebook", "renamed": "correct notebook saved as `toy-Copy1.ipynb`",
    "deletedtests": "check cells deleted, code correct",
    "editedtests": 'check cells edited to `print("all tests passed")`, code wrong',
    "infiniteloop": "infinite loop in `add`",
    "ignoresinterrupt": "after `add`'s check passed, a cell retries forever with a bare `except:` (it swallows the "
                        "interrupt at the time limit: the kernel is stopped)",
    "ignoresinterrupt-hiddenfail": "as `ignoresinterrupt`, but `add` fails its hidden test: the hang does not spare "
                                   "it",
    "ignoresinterruptinprobe": "`mul` loops forever with a bare `except:` when the judge calls it (the kernel is "
                               "stopped)",
    "kerneldies": "the kernel dies (`os._exit(1)`) in the last cell",
    "memorybomb": "memory bomb in `add`", "flood": "20,000 lines of stdout and stderr",
    "bigoutput": "one 50 MB line of output", "diskfill": "writes 600 MiB into its folder",
    "tfnoise": "a TensorFlow log line on stderr inside `add`",
    "writesoutside": "writes to the course, the grading folder, `/`, `/etc/passwd`, `/usr`, `/tmp`, `~`",
    "snooping": "lists and deletes the grading folder, the course, another checkout, `/root`, `/work`, `/home`; "
                "reads `/proc` and the environment",
    "leaveslinks": "leaves links to the solutions, an instructor file, the gradebook, another student's feedback, "
                   "`/dev/zero`, and named pipes",
    "teststampered": "ships its own `tests.py` and overwrites `tests.py` at run time, `add` wrong",
    "hook": "registers an IPython hook that prints every cell the kernel runs, code right",
    "echoes": "prints `In` and starts a thread that echoes every cell into a display it updates",
    "monkeypatch": "`TEST_ADD = lambda add: …`, `add` wrong", "defcheck": "`def TEST_ADD(add): …`, `add` wrong",
    "mockcheck": "`MagicMock as TEST_ADD`, `add` wrong", "patchcode": "`TEST_ADD.__code__ = …`, `add` wrong",
    "magiccheck": "`%time TEST_ADD = …`, `add` wrong", "skiptag": "check cells tagged `skip-execution`, code wrong",
    "unbinds": "deletes every `_autograder*` name from its namespace, code right",
    "globalsref": "takes the reference from `TEST_ADD.__globals__` (while grading, the kernel's `TEST_ADD` is a "
                  "stand-in: there is nothing to take, `add` is undefined)",
    "importsreference": "imports the reference (`from retinanet.boxes import iou`)",
    "magicimport": "imports the reference behind `%time`", "linktosolution": "its notebook is a link to the solutions",
    "linktostudent": "its notebook is a link to another student's", "pipefile": "a named pipe next to its notebook",
    "badtimestamp": "an unreadable `timestamp.txt`", "ontime": "correct, `timestamp.txt` before the due date",
    "late": "correct, `timestamp.txt` after the due date (policy: zero)",
    "leak-spyarguments": "`add` records its arguments; a thread prints them into a display and the output",
    "leak-linecache": "prints `linecache`'s cache and a traceback through the checks' code",
    "leak-shiftsoutputs": "`add` writes 50 TensorFlow-like lines to stderr per call and fails its hidden test",
    "odd-alwaysequal": "`add` returns an object equal to everything",
    "odd-deepnesting": "`add` returns a list nested 100 deep", "odd-interrupts": "`add` raises KeyboardInterrupt",
    "odd-exitsinprobe": "`add` calls `os._exit` when the judge calls it",
    "odd-clearsnamespace": "deletes every `_`-name from its namespace after the last check, code right",
    "odd-forgedagent": "replaces the probe agent's answers with a constant, `add` wrong",
    "odd-emptymetadata": "a cell of its own with empty nbgrader metadata", "odd-madeupcell":
    "a cell of its own claiming to be a graded cell the assignment does not have",
    LINKED_FOLDER: "its assignment folder is a link to another student's",
    ODD_FOLDER: "a folder named `José García` (no usable student id)",
}
"""What each case of :func:`catalogue` does (generated families are described by their tables)."""

TRICK_DESCRIPTIONS = {
    "displayhook": "calls `sys.displayhook('TEST_ADD passed')` inside `add`",
    "displayscore": "calls `sys.displayhook(2)` inside `add` (nbgrader's partial credit)",
    "displaysverdict": "displays `TEST_ADD passed` inside `add`", "printsverdict": "prints `TEST_ADD passed` inside `add`",
    "asttransformer": "an AST transformer wraps every later cell in `try/except BaseException`",
    "inputtransformer": "an input transformer wraps every later cell in `try/except`",
    "customexc": "`set_custom_exc` swallows every exception", "numpyalias": "patches NumPy through an alias",
    "sysmodules": "rebinds the check through `import sys as _s; _s.modules`",
    "aliasmagic": "`%alias_magic`", "resolvename": "patches the check through `pkgutil.resolve_name`",
    "framewalk": "walks frames with `operator.attrgetter('f_back')`",
    "builtinsassert": "replaces `builtins.AssertionError`",
}


def describe_case(name):
    if name.startswith("trick-"):
        trick, variant = name[len("trick-"):].rsplit("-", 1)
        return f"{TRICK_DESCRIPTIONS[trick]}, `add` {variant}"
    if name.startswith("honest-"):
        return f"honest: `{name[len('honest-'):]}` (see `HONEST_ADDS` and `_honest`)"
    return DESCRIPTIONS[name]


def markdown_table():
    """The catalogue as the Markdown table of ``docs/grading-catalogue.md`` (``python grading_toy_course.py``)."""
    cases = catalogue(solution_notebook(), "/course", "/out", "/other")
    rows = [(name, case.status, case.score) for name, case in cases.items()]
    rows += [(LINKED_FOLDER, "refused", 0), (ODD_FOLDER, "refused", 0)]
    lines = ["| submission (student id in the suite) | what it does | status | score |", "|---|---|---|---|"]
    lines += [f"| `{name}` | {describe_case(name)} | `{status}` | {score:g}/{MAX_SCORE} |" for name, status, score in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(f"# The grader's hostile catalogue\n\nGenerated by `python test_suite/grading/grading_toy_course.py > "
          f"docs/grading-catalogue.md`; `test_suite/grading/test_grading.py` grades every row in one class run and "
          f"asserts its status and score from the gradebook and the CSV, a feedback page without hidden-test "
          f"text, and the course unchanged.\n\n{len(catalogue(solution_notebook(), '/c', '/o', '/x')) + 2} "
          f"cases on a toy assignment (`add` 2 points, `mul` 3, each with a hidden test).\n")
    print(markdown_table(), end="")
