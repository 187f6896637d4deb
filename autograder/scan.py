"""Find learner code that uses the reference solution or tampers with the checks (a static scan).

The checks in ``tests.py`` compare a learner's code with the reference package, so the package is
importable in the kernel and the checks run in the learner's Python process. The sandbox keeps the
solutions and hidden tests out of reach, and :mod:`autograder.execute` re-binds the checks before each
check cell; this scan reports, for review, code that tries anyway. It reads every code cell the learner
wrote or changed (cells identical to the released notebook or to nbgrader's stored source are
skipped), with IPython's own transformer, so magics (``%time``, ``%%capture``…) and shell escapes are
scanned too: a magic that runs Python has its argument scanned as Python, any other magic or ``!``
command as text.

``uses-reference``  imports the reference package (``Scan.reference_packages``, other than the quiet
                    ``retinanet._tf`` import the notebooks use), takes anything from a check's
                    ``__globals__``, or names the ``solutions`` folder, a gradebook or a notebook file;
``tampering``       uses a ``TEST_*`` name other than by calling it (defining, assigning, importing as,
                    deleting, passing or inspecting it), imports ``tests``, patches an imported module's
                    attributes, or reaches into the interpreter: ``get_ipython``, ``sys.modules``,
                    ``sys.settrace`` and other hooks, frames, ``gc``, ``inspect``, ``ctypes``,
                    ``builtins``, ``importlib``, ``exec``/``eval``/``compile``, ``globals()``/``locals()``,
                    introspection attributes such as ``__code__``, ``__wrapped__`` or ``__dict__``.

A flagged notebook scores 0 (nbgrader's manual score is set to 0 with the reasons as a comment), so an
instructor sees why in the formgrader and can override it.
"""

import ast

from IPython.core.inputtransformer2 import TransformerManager

USES_REFERENCE, TAMPERING = "uses-reference", "tampering"

REFERENCE_PACKAGES = ("retinanet",)
ALLOWED_REFERENCE_MODULES = ("retinanet._tf",)
CHECK_PREFIX = "TEST_"
CHECKS_MODULES = ("tests", "course_checks")
"""The checks: ``tests.py`` and the package behind it; a learner has no reason to import either."""
INTERPRETER_MODULES = ("builtins", "importlib", "gc", "inspect", "ctypes", "__main__", "sys.monitoring", "_thread")
DYNAMIC_CALLS = ("setattr", "delattr", "__import__", "exec", "eval", "compile", "globals", "locals", "vars",
                 "breakpoint", "get_ipython")
SYS_HOOKS = ("modules", "settrace", "setprofile", "_getframe", "_current_frames", "addaudithook", "meta_path",
             "path_hooks", "path_importer_cache", "excepthook", "displayhook", "breakpointhook", "monitoring")
INTROSPECTION = ("__code__", "__wrapped__", "__closure__", "__defaults__", "__kwdefaults__", "__dict__",
                 "__builtins__", "__subclasses__", "__bases__", "__mro__", "__self__", "__func__", "__loader__",
                 "__spec__", "__import__", "__class__", "f_locals", "f_back", "f_builtins", "f_code", "tb_frame",
                 "gi_frame", "cr_frame", "ag_frame", "co_code", "co_consts")
GLOBALS_ATTRIBUTES = ("__globals__", "func_globals", "f_globals")
CODE_MAGICS = ("time", "timeit", "prun", "capture", "debug", "writefile")
SUSPICIOUS_STRINGS = {"solutions": USES_REFERENCE, "gradebook": USES_REFERENCE, ".ipynb": USES_REFERENCE,
                      "retinanet": USES_REFERENCE, "tests.py": TAMPERING, "course_checks": TAMPERING}

_transformer = TransformerManager()


def _flag_module(module):
    root = module.split(".")[0]
    if root in REFERENCE_PACKAGES and not module.startswith(ALLOWED_REFERENCE_MODULES):
        return USES_REFERENCE, f"imports {module}"
    if root in CHECKS_MODULES or module in INTERPRETER_MODULES or root in INTERPRETER_MODULES:
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


class _Scanner(ast.NodeVisitor):
    def __init__(self, modules):
        self.found = []
        self.modules = modules  # names bound to imported modules anywhere in the notebook

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
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                self.add((TAMPERING, f"uses {node.func.id} with a computed attribute name"))
            elif name.value in GLOBALS_ATTRIBUTES:
                self.add((USES_REFERENCE, f"reads {name.value}"))
            elif name.value in INTROSPECTION:
                self.add((TAMPERING, f"reads {name.value}"))
        self.generic_visit(node)

    def _magic(self, kind, name, arguments):
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
        if node.id.startswith(CHECK_PREFIX):
            verb = "uses" if isinstance(node.ctx, ast.Load) else "rebinds"
            self.add((TAMPERING, f"{verb} the check {node.id} other than by calling it"))
        elif node.id in DYNAMIC_CALLS or node.id in CHECKS_MODULES:
            self.add((TAMPERING, f"uses {node.id}"))

    def visit_Attribute(self, node):
        if node.attr in GLOBALS_ATTRIBUTES:
            self.add((USES_REFERENCE, f"reads {node.attr}"))
            if isinstance(node.value, ast.Name) and node.value.id.startswith(CHECK_PREFIX):
                return  # a check's globals: the reference, reported as such
        elif node.attr in INTROSPECTION or node.attr.startswith(CHECK_PREFIX):
            self.add((TAMPERING, f"uses the attribute {node.attr}"))
        elif isinstance(node.value, ast.Name) and node.value.id == "sys" and node.attr in SYS_HOOKS:
            self.add((TAMPERING, f"uses sys.{node.attr}"))
        elif (isinstance(node.ctx, (ast.Store, ast.Del)) and isinstance(node.value, ast.Name)
              and node.value.id in self.modules):
            self.add((TAMPERING, f"patches the module {node.value.id} ({node.value.id}.{node.attr})"))
        self.generic_visit(node)

    def visit_Constant(self, node):
        if isinstance(node.value, str):
            self.found += _text_flags(node.value, "a string")


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
            elif isinstance(node, ast.ImportFrom):
                names.update(alias.asname or alias.name for alias in node.names)
    return names


def scan_source(source, modules=frozenset()):
    """``[(flag, reason), ...]`` for one code cell's source; ``modules``: names bound to modules."""
    tree = _python(source)
    if tree is None:
        return []  # it failed in the kernel too, so it changed nothing
    scanner = _Scanner(set(modules))
    scanner.visit(tree)
    return scanner.found


def scan_notebook(nb, known_sources):
    """Flags of every code cell of ``nb`` whose source is not in ``known_sources``; sorted, unique."""
    known = {source.strip() for source in known_sources}
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    modules = imported_modules(code)
    found = set()
    for source in code:
        if "was missing from the submission. It was added back by nbgrader." in source.split("\n", 1)[0]:
            continue  # nbgrader restored this grade cell from its stored source
        if source.strip() in known:
            continue
        found.update(scan_source(source, modules))
    return sorted(found)
