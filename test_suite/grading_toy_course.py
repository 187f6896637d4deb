"""A tiny nbgrader course and the robustness catalogue of submissions for the grading driver's tests.

The toy course has one assignment, ``toy``, with one notebook of two stages: ``add`` (test cell worth 2
points) and ``mul`` (3 points), each with visible checks from the course's ``tests.py`` and a hidden test.
It uses the course's real autograding settings (``retinanet/grading/autograde_config.py``) but no
TensorFlow, so the catalogue grades in about a minute.
"""

import json
import os
import textwrap

import nbformat

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AUTOGRADE_CONFIG = os.path.join(REPOSITORY, "retinanet", "grading", "autograde_config.py")
ASSIGNMENT, NOTEBOOK = "toy", "toy"
POINTS = {"test_add": 2, "test_mul": 3}
MAX_SCORE = sum(POINTS.values())
HIDDEN_ADD = 'assert add(-1, 1) == 0, "add(-1, 1) should be 0"'
HIDDEN_MUL = 'assert mul(-2, 3) == -6, "mul(-2, 3) should be -6"'

TESTS_PY = '''"""Checks of the toy course."""


def TEST_ADD(add):
    assert add(2, 3) == 5, f"add(2, 3) should be 5, got {add(2, 3)!r}"
    print("TEST_ADD passed")


def TEST_MUL(mul):
    assert mul(2, 3) == 6, f"mul(2, 3) should be 6, got {mul(2, 3)!r}"
    print("TEST_MUL passed")
'''

CONFIG = f'''c = get_config()
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
load_subconfig({AUTOGRADE_CONFIG!r})
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


def make_course(root):
    """Write the toy course to ``root`` and generate its exercise; returns the exercise notebook."""
    from retinanet.grading.worker import nbgrader_api

    os.makedirs(os.path.join(root, "solutions", ASSIGNMENT))
    with open(os.path.join(root, "nbgrader_config.py"), "w") as handle:
        handle.write(CONFIG)
    with open(os.path.join(root, "tests.py"), "w") as handle:
        handle.write(TESTS_PY)
    nbformat.write(solution_notebook(), os.path.join(root, "solutions", ASSIGNMENT, NOTEBOOK + ".ipynb"))
    outcome = nbgrader_api(root).generate_assignment(ASSIGNMENT, force=True, create=True)
    assert outcome["success"], outcome.get("error")
    return nbformat.read(os.path.join(root, "exercises", ASSIGNMENT, NOTEBOOK + ".ipynb"), as_version=4)


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _answer(exercise, add=None, mul=None):
    nb = nbformat.from_dict(json.loads(json.dumps(exercise)))
    if add is not None:
        _cell(nb, "add").source = textwrap.dedent(add).strip()
    if mul is not None:
        _cell(nb, "mul").source = textwrap.dedent(mul).strip()
    return nb


ADD = "def add(a, b):\n    return a + b"
MUL = "def mul(a, b):\n    return a * b"
WRONG_ADD = "def add(a, b):\n    return a - b"
WRONG_MUL = "def mul(a, b):\n    return a + b"
SNEAKY_ADD = "def add(a, b):\n    return 0 if a == -b else a - b"  # passes the hidden test only


def catalogue(exercise, course, out):
    """``{student: (files {name: bytes or notebook}, expected status, expected score)}``.

    ``course`` and ``out`` are the folders a hostile submission tries to reach. Paths that the scan
    would flag (``solutions``, ``gradebook``, ``.ipynb``) are spelled in pieces, as an attacker would.
    """
    nb = NOTEBOOK + ".ipynb"
    deleted = _answer(exercise, ADD, MUL)
    deleted.cells = [c for c in deleted.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    edited = _answer(exercise, WRONG_ADD, WRONG_MUL)
    for grade_id in POINTS:
        _cell(edited, grade_id).source = 'print("all tests passed")'
    writes = f"""
        import os
        for target in [{course!r} + "/escape.txt", {out!r} + "/escape.txt", "/tmp/escape-grading.txt",
                       os.path.expanduser("~/../escape.txt"), "../../../../escape.txt", "/escape.txt"]:
            try:
                with open(target, "w") as handle:
                    handle.write("escaped")
                print("wrote", target)
            except OSError as error:
                print("blocked", target, type(error).__name__)
    """
    snoop = f"""
        import glob, os
        found = glob.glob({out!r} + "/**/*.ip" + "ynb", recursive=True)
        found += glob.glob({out!r} + "/**/grade" + "book.db", recursive=True)
        found += glob.glob({course!r} + "/**/*", recursive=True)
        found += glob.glob("../../../**/*.ip" + "ynb", recursive=True)
        found = [path for path in found if os.path.dirname(os.path.abspath(path)) != os.getcwd()]  # not its own
        for path in found:
            try:
                os.remove(path)
            except OSError:
                pass
        print("visible files:", len(found))
        print("own notebook bytes:", len(open("toy.ip" + "ynb").read()))
        print("grader secret:", os.environ.get("GRADER_SECRET"))
    """
    return {
        "correct": ({nb: _answer(exercise, ADD, MUL)}, "ok", MAX_SCORE),
        "untouched": ({nb: exercise}, "ok", 0),
        "partial": ({nb: _answer(exercise, ADD, WRONG_MUL)}, "ok", 2),
        "hiddenfail": ({nb: _answer(exercise, "def add(a, b):\n    return abs(a) + abs(b)", MUL)}, "ok", 3),
        "invalidjson": ({nb: b'{"cells": [ this is not json'}, "invalid-notebook", 0),
        "missing": ({"notes.txt": b"I forgot the notebook"}, "missing", 0),
        "renamed": ({"toy-Copy1.ipynb": _answer(exercise, ADD, MUL)}, "renamed", MAX_SCORE),
        "deletedtests": ({nb: deleted}, "restored-tests", MAX_SCORE),
        "editedtests": ({nb: edited}, "restored-tests", 0),
        "infiniteloop": ({nb: _answer(exercise, "def add(a, b):\n    while True:\n        pass", MUL)},
                         "cell-timeout", 3),
        "kerneldies": ({nb: _answer(exercise, ADD, MUL + "\nimport os\nos._exit(1)")}, "kernel-died", 0),
        "memorybomb": ({nb: _answer(exercise, "def add(a, b):\n    hog = []\n    while True:\n"
                                    "        hog.append(bytearray(2**28))", MUL)}, "memory-limit", 3),
        "flood": ({nb: _answer(exercise, ADD + "\nimport sys\nfor i in range(20000):\n    print(i)\n"
                               "    print(i, file=sys.stderr)", MUL)}, "ok", MAX_SCORE),
        "tfnoise": ({nb: _answer(exercise, "import sys\ndef add(a, b):\n    print('2026-01-01 00:00:00.000001: "
                                 "I tensorflow/core/util/port.cc:153] oneDNN custom operations are on.', "
                                 "file=sys.stderr)\n    return a + b", MUL)}, "ok", MAX_SCORE),
        "writesoutside": ({nb: _answer(exercise, ADD + "\n" + textwrap.dedent(writes), MUL)}, "ok", MAX_SCORE),
        "snooping": ({nb: _answer(exercise, ADD + "\n" + textwrap.dedent(snoop), MUL)}, "ok", MAX_SCORE),
        "importsreference": ({nb: _answer(exercise, "if False:  # never runs: the scan alone must catch it\n"
                                            "    from retinanet.boxes import iou\n" + ADD, MUL)},
                             "uses-reference", 0),
        "teststampered": ({nb: _answer(exercise, SNEAKY_ADD + "\ntry:\n    open('tes' + 'ts.py', 'w').write("
                                       "'def TEST_ADD(f): pass')\nexcept OSError as error:\n"
                                       "    print('blocked', type(error).__name__)", MUL),
                           "tests.py": TESTS_PY.replace('assert add(2, 3) == 5', 'assert True').encode()},
                          "ok", 3),
        "monkeypatch": ({nb: _answer(exercise, SNEAKY_ADD + "\nTEST_ADD = lambda add: print('TEST_ADD passed')",
                                     MUL)}, "tampering", 0),
    }


def write_submissions(folder, cases):
    """Write ``cases`` in nbgrader's layout, ``folder/<student>/toy/<file>``."""
    for student, (files, _, _) in cases.items():
        directory = os.path.join(folder, student, ASSIGNMENT)
        os.makedirs(directory)
        for name, content in files.items():
            path = os.path.join(directory, name)
            if isinstance(content, bytes):
                with open(path, "wb") as handle:
                    handle.write(content)
            else:
                nbformat.write(content, path)
