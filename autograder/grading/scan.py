"""Find learner code that uses the reference solution or tries to reach into the grader (a static scan).

Advice for the instructor, never a score. The points are decided by the judge (:mod:`autograder.grading.judge`),
outside the learner's kernel, so nothing found here can have raised them; a finding flags the notebook
for review in the formgrader, with the evidence as a comment, and the score stays as graded. So the scan
errs on the side of silence: ordinary code (imports, the course's own ``from tests import ...``, prints,
``getattr`` with a computed name, ``x.__class__``, CRLF line endings) is never flagged.

It reads every code cell the learner wrote or changed; top-level statements identical to one of the
released notebook's or nbgrader's stored cells are skipped (line endings normalised), so adding a line to
the import cell flags nothing that was already there. IPython's own transformer turns magics (``%time``,
``%%capture``…) and shell escapes into Python first: a magic that runs Python has its argument scanned
as Python, any other magic or ``!`` command as text.

``uses-reference``  imports the reference package (``Scan.reference_packages``, other than
                    ``retinanet._tf``, the quiet TensorFlow import behind ``course`` that the notebooks
                    used before; ``course`` and ``course.widgets``, the notebooks' own imports, are not
                    the reference and never flagged), takes anything from a check's
                    ``__globals__``, or names the ``solutions`` folder, a gradebook or a notebook file in
                    a shell command;
``tampering``       defines, assigns or deletes a ``TEST_*`` name, patches an imported module's
                    attributes, or reaches into the interpreter: ``get_ipython``, ``sys.modules``,
                    ``sys.settrace`` and other hooks, frames, ``gc``, ``inspect``, ``ctypes``,
                    ``builtins``, ``importlib``, ``exec``/``eval``/``compile``, ``globals()``/``locals()``,
                    code and frame attributes such as ``__code__``, ``__wrapped__`` or ``f_locals``.
"""

import ast

from IPython.core.inputtransformer2 import TransformerManager

USES_REFERENCE, TAMPERING = "uses-reference", "tampering"

REFERENCE_PACKAGES = ("retinanet",)
ALLOWED_REFERENCE_MODULES = ("retinanet._tf",)
CHECK_PREFIX = "TEST_"
CHECKS_MODULES = ("tests", "course_checks")
"""The checks: ``tests.py`` and the package behind it; a learner has no reason to import either."""
INTERPRETER_MODULES = ("builtins", "importlib", "gc", "inspect", "ctypes", "__main__", "sys.monitoring", "_thread",
                       "pkgutil")
DYNAMIC_CALLS = ("setattr", "delattr", "__import__", "exec", "eval", "compile", "globals", "locals", "vars",
                 "breakpoint", "get_ipython")
SYS_HOOKS = ("modules", "settrace", "setprofile", "_getframe", "_current_frames", "addaudithook", "meta_path",
             "path_hooks", "path_importer_cache", "excepthook", "displayhook", "breakpointhook", "monitoring")
INTROSPECTION = ("__code__", "__wrapped__", "__closure__", "__defaults__", "__kwdefaults__", "__builtins__",
                 "__subclasses__", "__self__", "__func__", "__loader__", "__spec__", "__import__", "f_locals",
                 "f_back", "f_builtins", "f_code", "tb_frame", "gi_frame", "cr_frame", "ag_frame", "co_code",
                 "co_consts")
"""Attributes that reach into code objects, frames and the import system (``__class__``, ``__dict__`` and
``__mro__`` are everyday Python and not listed)."""
GLOBALS_ATTRIBUTES = ("__globals__", "func_globals", "f_globals")
CODE_MAGICS = ("time", "timeit", "prun", "capture", "debug", "writefile")
SUSPICIOUS_STRINGS = {"solutions": USES_REFERENCE, "gradebook": USES_REFERENCE, ".ipynb": USES_REFERENCE,
                      "retinanet": USES_REFERENCE, "tests.py": TAMPERING, "course_checks": TAMPERING}

_transformer = TransformerManager()


def _flag_module(module):
    root = module.split(".")[0]
    if root in REFERENCE_PACKAGES and not module.startswith(ALLOWED_REFERENCE_MODULES):
        return USES_REFERENCE, f"imports {module}"
    if module in INTERPRETER_MODULES or root in INTERPRETER_MODULES:
        return TAMPERING, f"imports {module}"
    return None


def _text_flags(text, where):
    """Flags for text that is not Python: a string constant, a shell command, a magic's argument."""
    return [(flag, f"names {needle!r} in {where}") for needle, flag in SUSPICIOUS_STRINGS.items()
            if needle in text and not text.startswith(ALLOWED_REFERENCE_MODULES)]


def _magic_call(node):
    """``(kind, name, arguments)`` for IPython's ``get_ipython().run_line_magic(...)`` and relatives."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Name)
            and node.func.value.func.id == "get_ipython"):
        return None
    arguments = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if node.func.attr in ("run_line_magic", "run_cell_magic") and arguments:
        return node.func.attr, arguments[0], arguments[1:]
    if node.func.attr in ("system", "getoutput"):
        return "shell", "!", arguments
    return None


def _constant_text(node):
    """The string an expression of string constants joined with ``+`` evaluates to, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _constant_text(node.left), _constant_text(node.right)
        return None if left is None or right is None else left + right
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, modules):
        self.found = []
        self.modules = modules  # names bound to imported modules anywhere in the notebook
        self.sys_names = {"sys"} | {name for name in modules if name.startswith("sys=")} | \
            {name[4:] for name in modules if name.startswith("sys=")}

    def add(self, flag):
        if flag:
            self.found.append(flag)

    def visit_Call(self, node):
        magic = _magic_call(node)
        if magic is not None:
            self._magic(*magic)
            return  # the magic's own call (get_ipython) is IPython's, not the learner's
        if isinstance(node.func, ast.Name) and node.func.id.startswith(CHECK_PREFIX):
            for argument in node.args + [k.value for k in node.keywords]:
                self.visit(argument)  # calling a check is allowed; its arguments are scanned
            return
        if isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr") and len(node.args) >= 2:
            name = node.args[1]
            text = _constant_text(name)  # None for getattr(self, f"conv_c{level}_1x1"): ordinary code
            if text in GLOBALS_ATTRIBUTES:
                self.add((USES_REFERENCE, f"reads {text}"))
            elif text in INTROSPECTION:
                self.add((TAMPERING, f"reads {text}"))
        self.generic_visit(node)

    def _magic(self, kind, name, arguments):
        if name == "alias_magic":
            self.add((TAMPERING, "defines a magic alias (%alias_magic)"))
        if kind == "shell" or name not in CODE_MAGICS:
            for text in arguments:
                self.found += _text_flags(text, f"the magic or shell command {name!r}")
            return
        for code in arguments:
            if _python(code) is None:
                self.found += _text_flags(code, f"the magic {name!r}")
            else:
                self.found += scan_source(code, self.modules)

    def visit_Import(self, node):
        for alias in node.names:
            self.add(_flag_module(alias.name))
            self._binding(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node):
        if node.module and node.level == 0:
            flag = _flag_module(node.module)
            if node.module in REFERENCE_PACKAGES:
                flag = flag or (USES_REFERENCE, f"imports from {node.module}")
            self.add(flag)
        for alias in node.names:
            if node.module in CHECKS_MODULES and alias.asname in (None, alias.name):
                continue  # the course's own `from tests import TEST_FPN`
            self._binding(alias.asname or alias.name)

    def _binding(self, name):
        if name.startswith(CHECK_PREFIX):
            self.add((TAMPERING, f"binds the name of the check {name}"))

    def visit_FunctionDef(self, node):
        self._binding(node.name)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Global(self, node):
        for name in node.names:
            self._binding(name)

    visit_Nonlocal = visit_Global

    def visit_ExceptHandler(self, node):
        if node.name:
            self._binding(node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node):
        if node.name:
            self._binding(node.name)
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id.startswith(CHECK_PREFIX) and not isinstance(node.ctx, ast.Load):
            self.add((TAMPERING, f"rebinds the check {node.id}"))
        elif node.id in DYNAMIC_CALLS:
            self.add((TAMPERING, f"uses {node.id}"))

    def visit_Attribute(self, node):
        if node.attr in GLOBALS_ATTRIBUTES:
            self.add((USES_REFERENCE, f"reads {node.attr}"))
            if isinstance(node.value, ast.Name) and node.value.id.startswith(CHECK_PREFIX):
                return  # a check's globals: the reference, reported as such
        elif node.attr in INTROSPECTION or node.attr.startswith(CHECK_PREFIX):
            self.add((TAMPERING, f"uses the attribute {node.attr}"))
        elif isinstance(node.value, ast.Name) and node.value.id in self.sys_names and node.attr in SYS_HOOKS:
            self.add((TAMPERING, f"uses sys.{node.attr}"))
        elif (isinstance(node.ctx, (ast.Store, ast.Del)) and isinstance(node.value, ast.Name)
              and node.value.id in self.modules):
            self.add((TAMPERING, f"patches the module {node.value.id} ({node.value.id}.{node.attr})"))
        self.generic_visit(node)

    def visit_Constant(self, node):
        if isinstance(node.value, str) and node.value in INTROSPECTION + GLOBALS_ATTRIBUTES:
            self.add((TAMPERING if node.value in INTROSPECTION else USES_REFERENCE, f"names {node.value}"))  # words in strings and prints are not evidence (magics' and shell commands' text is scanned)


def _python(source):
    """The cell as Python, magics and shell escapes turned into IPython's calls; None if it does not parse."""
    try:
        return ast.parse(_transformer.transform_cell(source))
    except (SyntaxError, ValueError):
        return None


def imported_modules(sources):
    """Names bound by import statements in ``sources`` (released cells included)."""
    names = set()
    for source in sources:
        tree = _python(source)
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, ast.Import):
                names.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
                names.update("sys=" + alias.asname for alias in node.names if alias.name == "sys" and alias.asname)
            elif isinstance(node, ast.ImportFrom):
                names.update(alias.asname or alias.name for alias in node.names)
    return names


def scan_source(source, modules=frozenset()):
    """``[(flag, reason), ...]`` for one code cell's source; ``modules``: names bound to modules."""
    tree = _python(source)
    if tree is None:
        return []  # it failed in the kernel too, so it changed nothing
    scanner = _Scanner(set(modules) | imported_modules([source]))
    scanner.visit(tree)
    return scanner.found


def _statements(source):
    """The top-level statements of a cell as comparable text (``ast.dump``); empty if it does not parse."""
    tree = _python(source.replace("\r\n", "\n").replace("\r", "\n"))
    return [] if tree is None else [ast.dump(statement) for statement in tree.body]


def scan_notebook(nb, known_sources):
    """Flags of the learner's own statements in ``nb``'s code cells (see the module docstring); sorted, unique."""
    known = {statement for source in known_sources for statement in _statements(source)}
    code = [cell.source.replace("\r\n", "\n").replace("\r", "\n") for cell in nb.cells if cell.cell_type == "code"]
    modules = imported_modules(code)
    found = set()
    for source in code:
        if "was missing from the submission. It was added back by nbgrader." in source.split("\n", 1)[0]:
            continue  # nbgrader restored this grade cell from its stored source
        tree = _python(source)
        if tree is None:
            continue  # it failed in the kernel too, so it changed nothing
        for statement in tree.body:
            if ast.dump(statement) in known:
                continue
            scanner = _Scanner(set(modules))
            scanner.visit(statement)
            found.update(scanner.found)
    return sorted(found)
