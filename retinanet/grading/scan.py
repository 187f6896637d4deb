"""Find learner code that calls the reference solution or tampers with the checks.

The checks in ``tests.py`` compare a learner's code with the reference package ``retinanet``, so the
package has to be importable in the kernel, and the checks run in the same Python process as the
learner's code. The sandbox stops a submission from *reading* the solution notebooks or the hidden tests
and from *changing* ``tests.py`` on disk; what it cannot stop is code in the same process that imports
the reference or rebinds a check. This scan looks for that in every code cell the learner wrote or
changed (cells identical to the released notebook or to nbgrader's stored source are skipped):

``uses-reference``  imports ``retinanet`` (other than ``retinanet._tf``, the quiet TensorFlow import the
                    notebooks themselves use) or names the ``solutions`` folder, a gradebook or a
                    notebook file in a string;
``tampering``       imports or names ``tests``, assigns or deletes a ``TEST_*`` name, or uses
                    ``sys.modules``, ``builtins``, ``globals()``, ``setattr``, ``__import__``,
                    ``importlib``, ``exec``/``eval``/``compile``.

A flagged notebook scores 0 (nbgrader's manual score is set to 0 with a comment saying why), so an
instructor can see the reason in the feedback and override it in the formgrader.
"""

import ast

ALLOWED_REFERENCE_MODULES = ("retinanet._tf",)
DYNAMIC_CALLS = ("setattr", "__import__", "exec", "eval", "compile", "globals", "vars")
SUSPICIOUS_STRINGS = {"solutions": "uses-reference", "gradebook": "uses-reference", ".ipynb": "uses-reference",
                      "tests.py": "tampering", "retinanet": "uses-reference"}


def _python_source(source):
    """Cell source without IPython magics and shell escapes, which are not Python."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _module_flag(module):
    root = module.split(".")[0]
    if root == "retinanet" and not module.startswith(ALLOWED_REFERENCE_MODULES):
        return "uses-reference", f"imports {module}"
    if root in ("tests", "builtins", "importlib"):
        return "tampering", f"imports {module}"
    return None


def scan_source(source):
    """``[(flag, reason), ...]`` for one code cell's source."""
    try:
        tree = ast.parse(_python_source(source))
    except SyntaxError:
        return []  # it failed in the kernel too, so it changed nothing
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [flag for alias in node.names if (flag := _module_flag(alias.name))]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            flag = _module_flag(node.module)
            if node.module == "retinanet":
                flag = flag or ("uses-reference", "imports from retinanet")
            if flag:
                found.append(flag)
        elif isinstance(node, ast.Name):
            if node.id.startswith("TEST_") and isinstance(node.ctx, (ast.Store, ast.Del)):
                found.append(("tampering", f"rebinds the check {node.id}"))
            elif node.id in DYNAMIC_CALLS or node.id in ("tests", "builtins", "importlib"):
                found.append(("tampering", f"uses {node.id}"))
        elif isinstance(node, ast.Attribute):
            if node.attr == "modules" and isinstance(node.value, ast.Name) and node.value.id == "sys":
                found.append(("tampering", "uses sys.modules"))
            elif node.attr.startswith("TEST_") and isinstance(node.ctx, (ast.Store, ast.Del)):
                found.append(("tampering", f"rebinds the check {node.attr}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for text, flag in SUSPICIOUS_STRINGS.items():
                if text in node.value and not node.value.startswith(ALLOWED_REFERENCE_MODULES):
                    found.append((flag, f"names {text!r} in a string"))
    return found


def scan_notebook(nb, known_sources):
    """Flags of every code cell of ``nb`` whose source is not in ``known_sources``; sorted, unique."""
    known = {source.strip() for source in known_sources}
    found = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = cell.source
        if "was missing from the submission. It was added back by nbgrader." in source.split("\n", 1)[0]:
            continue  # nbgrader restored this grade cell from its stored source
        if source.strip() in known:
            continue
        found.update(scan_source(source))
    return sorted(found)
