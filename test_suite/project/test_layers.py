"""The house keeps its layers: every import of every module obeys the table in ``docs/design.md`` (*Layers*),
and every test module that could run on JAX says which legs it runs on.

The rule lives once, as the design page's table; this test reads it, so page and code cannot drift.
"""

import ast
import graphlib
import pathlib
import re

import pytest
from conftest import BACKENDS_MARK, module_backends

pytestmark = pytest.mark.backends("tensorflow", "jax")

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROJECT = ("retinanet", "course", "course_checks", "autograder", "tests")
"""The project's own top-level modules: imports of anything else (NumPy, Keras, nbgrader...) are free."""
ROW = re.compile(r"^\| (?P<layer>\w+) \| (?P<folders>[^|]+) \| (?P<allowed>[^|]+) \|$")


def layer_table():
    """``[(layer, [path prefixes], {layers it may import})]`` from docs/design.md, most specific path first."""
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        match = ROW.match(line.strip())
        if match and match["layer"] not in ("layer",):
            folders = re.findall(r"`([^`]+)`", match["folders"])
            allowed = {name.strip() for name in match["allowed"].split(",")}
            rows.append((match["layer"], folders, allowed))
    assert rows, "docs/design.md has no Layers table"
    return rows


def layer_of(path, table):
    """The layer of a project file (relative path with '/'), by its longest matching folder or file."""
    best = None
    for layer, prefixes, _ in table:
        for prefix in prefixes:
            if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
                if best is None or len(prefix) > best[1]:
                    best = (layer, len(prefix))
    return best[0] if best else None


def module_path(module):
    """The project file that defines dotted ``module`` (a package's ``__init__.py``), or None."""
    base = ROOT / pathlib.Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(ROOT).as_posix()
    return None


def imported_modules(path):
    """Every project module ``path`` imports, at the top or inside functions (relative imports resolved).
    ``from package import module`` counts as importing the module: the package's ``__init__`` runs too, but
    the project's packages keep theirs free of imports of other layers (``course_checks``' is lazy)."""
    package = pathlib.PurePosixPath(path).parent.parts
    found = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package[: len(package) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            names = [f"{base}.{alias.name}" for alias in node.names]
            if not any(module_path(name) for name in names):  # `from package import module` names the module
                names.append(base)
        else:
            continue
        for name in names:
            if name.split(".")[0] not in PROJECT:
                continue
            while name and module_path(name) is None:  # `from x import function`: the module is x
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def project_files():
    for top in PROJECT:
        folder = ROOT / top
        files = folder.rglob("*.py") if folder.is_dir() else [ROOT / f"{top}.py"]
        yield from sorted(p.relative_to(ROOT).as_posix() for p in files)


def test_every_project_file_belongs_to_a_layer():
    table = layer_table()
    assert [path for path in project_files() if layer_of(path, table) is None] == []


def test_every_import_goes_to_a_layer_the_table_allows():
    table = layer_table()
    allowed = {layer: names for layer, _, names in table}
    wrong = []
    for path in project_files():
        layer = layer_of(path, table)
        for module in sorted(imported_modules(path)):
            target = layer_of(module_path(module), table)
            if target not in allowed[layer]:
                wrong.append(f"{path} ({layer}) imports {module} ({target})")
    assert wrong == []


def test_the_table_says_what_the_design_means():
    """The table as read: files land in the layers meant, and the forbidden directions are forbidden."""
    table = layer_table()
    allowed = {layer: names for layer, _, names in table}
    assert layer_of("retinanet/run/loop.py", table) == "run" and layer_of("retinanet/fpn.py", table) == "paper"
    assert layer_of("course_checks/probe.py", table) == "wire" and layer_of("course_checks/fpn.py", table) == "checks"
    assert "grader" not in allowed["paper"] and "checks" not in allowed["wire"] and "run" not in allowed["paper"]
    assert "paper" not in allowed["grader"]


TENSORFLOW_ONLY = {"tensorflow", "retinanet._tf", "course", "course_checks", "tests", "autograder", "nbformat",
                   "nbclient", "nbgrader", "jupyter_client", "jupyterlab", "jupyter_server"}
"""What a test module may import only on the TensorFlow leg (the JAX environment has no TensorFlow, and the
course, the checks, the notebooks and the grader run on TensorFlow)."""


def _needs_tensorflow(path, local, seen=()):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
        for name in names:
            if any(name == t or name.startswith(t + ".") for t in TENSORFLOW_ONLY):
                return True
            top = name.split(".")[0]
            if top in local and top not in seen and _needs_tensorflow(local[top], local, (*seen, top)):
                return True
    return False


def test_a_test_module_without_a_backends_mark_needs_tensorflow():
    """A module runs on TensorFlow alone by default; one that needs nothing of TensorFlow must say where it
    runs (``pytestmark = pytest.mark.backends(...)``), so no backend-neutral test silently skips JAX."""
    suite = pathlib.Path(__file__).resolve().parents[1]
    local = {p.stem: p for p in suite.rglob("*.py")}
    unmarked = [p for p in sorted(suite.rglob("test_*.py")) if not BACKENDS_MARK.search(p.read_text(encoding="utf-8"))]
    assert [p.name for p in unmarked if not _needs_tensorflow(p, local)] == []
    assert module_backends(suite / "run" / "test_jax.py") == {"jax"}


def _imports(path):
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_the_probe_needs_only_the_standard_library_numpy_and_keras():
    """The probe runs in the learner's kernel, loaded as source: beyond the table's rule (the wire imports
    nothing else of the project) it may import nothing the kernel might lack."""
    probe_imports = _imports(ROOT / "course_checks" / "probe.py")
    assert {name.split(".")[0] for name in probe_imports} <= {"base64", "hashlib", "io", "json", "re", "weakref",
                                                               "numpy", "keras", "sys", "collections"}


def _autograder_imports(path, root):
    """The ``autograder`` modules and packages that the module at ``path`` imports (relative imports resolved)."""
    package = list(path.relative_to(root).parts[:-1])  # a module's package is its folder
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = ".".join(package[:len(package) - node.level + 1] if node.level else [])
            module = ".".join(filter(None, [module, node.module]))
            names |= {module} | {f"{module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    found = set()
    for name in names:  # each name's longest prefix that is a module or a package of autograder
        parts = name.split(".")
        while parts and parts[0] == "autograder":
            candidate = root.joinpath(*parts)
            if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
                found.add(".".join(parts))
                break
            parts = parts[:-1]
    return found


def test_the_graders_sub_packages_import_only_downwards():
    """autograder/__init__.py's lines: a sub-package (intake, sandbox, grading, grades) takes from the root only
    the shared vocabulary (``results``) and the course (``course``), never the driver or the command line; the
    sub-packages import each other without a cycle; ``results`` and ``course`` import nothing of the grader."""
    root = ROOT
    folder = root / "autograder"
    assert _autograder_imports(folder / "intake" / "intake.py", root) >= {"autograder.results",
                                                                          "autograder.intake.layouts"}
    sub_packages = {path.parent.name for path in folder.glob("*/__init__.py")}
    assert sub_packages == {"intake", "sandbox", "grading", "grades"}
    uses = {name: set() for name in sub_packages}
    for path in folder.glob("*/*.py"):
        for module in _autograder_imports(path, root):
            parts = module.split(".")
            if len(parts) > 1 and parts[1] in sub_packages:
                uses[path.parent.name] |= {parts[1]} - {path.parent.name}
            else:
                assert module in ("autograder", "autograder.results", "autograder.course"), (path, module)
    graphlib.TopologicalSorter(uses).prepare()  # CycleError if two sub-packages depend on each other
    for name in ("results", "course"):
        assert not _autograder_imports(folder / f"{name}.py", root), name
