"""A tiny nbgrader course and the hostile catalogue of submissions for the grader's tests.

The toy course has one assignment, ``toy`` (a second one, ``toy2``, on request), with one notebook of
two stages: ``add`` (test cell worth 2 points) and ``mul`` (3 points), each with a visible check from the
course's ``tests.py`` and a hidden test. ``TEST_ADD`` compares with a reference kept in ``tests.py``'s
globals. It uses the course's real autograding settings (``autograder/autograde_config.py``), due dates
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

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AUTOGRADE_CONFIG = os.path.join(REPOSITORY, "autograder", "autograde_config.py")
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
        "hook": Case({nb: _answer(exercise, hook, MUL)}, "tampering", 0),
        "echoes": Case({nb: _answer(exercise, ADD, MUL + "\n" + textwrap.dedent(spy))}, "ok", MAX_SCORE),
        # Checks that cannot be rebound; the reference through a check or a magic (item 6).
        "monkeypatch": Case({nb: _answer(exercise, SNEAKY_ADD + "\nTEST_ADD = lambda add: print('TEST_ADD passed')",
                                         MUL)}, "tampering", 0),
        "defcheck": Case({nb: _answer(exercise, WRONG_ADD + "\ndef TEST_ADD(add):\n    print('TEST_ADD passed')",
                                      MUL)}, "tampering", 0),
        "mockcheck": Case({nb: _answer(exercise, WRONG_ADD + "\nfrom unittest.mock import MagicMock as TEST_ADD",
                                       MUL)}, "tampering", 0),
        "patchcode": Case({nb: _answer(exercise, WRONG_ADD + "\nTEST_ADD.__code__ = (lambda add: None).__code__",
                                       MUL)}, "tampering", 0),
        "magiccheck": Case({nb: _answer(exercise, WRONG_ADD + "\n%time TEST_ADD = lambda add: None", MUL)},
                           "tampering", 0),
        "skiptag": Case({nb: skipping}, "ok", 0),
        "unbinds": Case({nb: _answer(exercise, ADD + "\nfor name in dir():\n    if name.startswith('_autograder'):\n"
                                     "        del globals()[name]", MUL)}, "tampering", 0),
        "globalsref": Case({nb: _answer(exercise, "add = TEST_ADD.__globals__['_reference_add']", MUL)},
                           "uses-reference", 0),
        "importsreference": Case({nb: _answer(exercise, "if False:  # never runs: the scan alone must catch it\n"
                                                "    from retinanet.boxes import iou\n" + ADD, MUL)},
                                 "uses-reference", 0),
        "magicimport": Case({nb: _answer(exercise, ADD + "\n%time from retinanet.boxes import iou", MUL)},
                            "uses-reference", 0),
        # Intake: links, pipes, timestamps (items 7, 8).
        "linktosolution": Case({nb: Link(os.path.join(course, "solutions", "toy", "toy.ipynb"))}, "refused", 0),
        "linktostudent": Case({nb: Link("../../correct/toy/toy.ipynb")}, "refused", 0),
        "pipefile": Case({nb: _answer(exercise, ADD, MUL), "data.txt": Fifo()}, "refused", 0),
        "badtimestamp": Case({nb: _answer(exercise, ADD, MUL)}, "refused", 0, timestamp="the day before the deadline"),
        "ontime": Case({nb: _answer(exercise, ADD, MUL)}, "ok", MAX_SCORE, timestamp=BEFORE_DUE),
        "late": Case({nb: _answer(exercise, ADD, MUL)}, "late", 0, timestamp=AFTER_DUE),
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
