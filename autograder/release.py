"""What learners get: the exercises, generated safely from the solutions, and the learner release.

``python -m autograder exercises`` (``make exercises``) runs ``nbgrader generate_assignment`` for every
assignment in a temporary copy of the course (its ``nbgrader_config.py``, the source notebooks and a copy of
its gradebook), and only when every assignment was generated replaces ``exercises/<assignment>/`` and the
course's ``gradebook.db`` with what it made. A failing nbgrader (a broken solution notebook, a missing
program) leaves the course's files as they were: nbgrader's ``--force`` deletes the release folder before
it writes the new one, which in the course itself would be the committed exercises.

``python -m autograder release`` (``make release``) writes the learner release: the exercises, the pictures
they show, ``tests.py`` and every package of the course they import (found by reading their imports), the
pinned requirements, a README and a Makefile for learners, and ``.jupyter/``, the Jupyter config ``make lab``
gives JupyterLab (nbgrader's instructor extensions off). No source notebook, hidden test or grader goes in; the release is
checked for their markers before it is written out as a folder and a zip.
"""

import ast
import json
import os
import re
import shutil
import tempfile
import zipfile

import nbformat
from nbgrader.coursedir import CourseDirectory

from .course import GradingError, course_assignments, load_config, nbgrader_api

TEMPORARY_CONFIG = '''"""The course's nbgrader config, on a temporary copy of its source (autograder.release)."""
c = get_config()  # noqa: F821 (defined by nbgrader's config loader)
load_subconfig({course_config!r})  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = {db_url!r}
'''

FORBIDDEN_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN MARK SCHEME")
"""nbgrader's markers of solution regions, hidden tests and mark schemes: none may be in a learner release."""

LEARNER_CONFIG = "jupyter-config/learner"
"""The Jupyter config of the learners' JupyterLab in the repository, copied into the release as ``.jupyter``."""


def _sqlite_path(db_url):
    if not db_url.startswith("sqlite:///"):
        raise GradingError(f"make exercises keeps the course's gradebook as a file: {db_url!r} is not sqlite:///")
    return db_url[len("sqlite:///"):]


def generate_exercises(root, assignments=None, release=None):
    """Generate the learner notebooks of ``assignments`` (default: every assignment of the course) from the
    course's source folder, in a temporary folder; on success put them in place and return their folder.

    ``release`` (default: the course's release folder, ``exercises/``) is where the generated assignments go;
    with another folder the course's gradebook is left alone (``test_suite/course/test_notebooks.py`` compares
    a fresh generation with the committed exercises this way). Raises :class:`GradingError`, having changed
    nothing, when nbgrader fails for any assignment."""
    root = os.path.realpath(root)
    config = load_config(root)
    coursedir = CourseDirectory(config=config, root=root)
    source, known = course_assignments(root)
    assignments = list(assignments or known)
    unknown = [a for a in assignments if a not in known]
    if unknown:
        raise GradingError(f"No assignment {', '.join(unknown)} in {source} (there are: {', '.join(known)}).")
    course_db = _sqlite_path(coursedir.db_url)
    target = os.path.realpath(release or os.path.join(root, coursedir.release_directory))
    with tempfile.TemporaryDirectory(prefix="exercises-") as scratch:
        temporary_db = os.path.join(scratch, "gradebook.db")
        keep_gradebook = release is None
        if keep_gradebook and os.path.isfile(course_db):  # its students, grades and due dates stay
            shutil.copy2(course_db, temporary_db)
        with open(os.path.join(scratch, "nbgrader_config.py"), "w") as handle:
            handle.write(TEMPORARY_CONFIG.format(course_config=os.path.join(root, "nbgrader_config.py"),
                                                 root=scratch, db_url="sqlite:///" + temporary_db))
        for assignment in assignments:
            shutil.copytree(os.path.join(source, assignment),
                            os.path.join(scratch, coursedir.source_directory, assignment),
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        api = nbgrader_api(scratch)
        for assignment in assignments:
            outcome = api.generate_assignment(assignment, force=True, create=True)
            if not outcome["success"]:
                details = (outcome.get("error") or outcome.get("log") or "").strip()
                raise GradingError(f"nbgrader generate_assignment {assignment} failed; nothing was changed "
                                   f"(exercises, gradebook).\n{details}")
        generated = os.path.join(scratch, coursedir.release_directory)
        os.makedirs(target, exist_ok=True)
        for assignment in assignments:
            _replace_folder(os.path.join(generated, assignment), os.path.join(target, assignment))
        if keep_gradebook:
            os.makedirs(os.path.dirname(course_db) or ".", exist_ok=True)
            shutil.copy2(temporary_db, course_db + ".new")
            os.replace(course_db + ".new", course_db)
    return target


def _replace_folder(new, old):
    """Put a copy of folder ``new`` where ``old`` is, renaming rather than deleting first."""
    staged, retired = old + ".new", old + ".old"
    for leftover in (staged, retired):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(new, staged)
    if os.path.exists(old):
        os.rename(old, retired)
    os.rename(staged, old)
    shutil.rmtree(retired, ignore_errors=True)


def _top_level_imports(source):
    """The top-level names of the absolute imports in Python ``source``."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def _project_module(root, name):
    """The file or package folder of the course's top-level module ``name``, or None."""
    if os.path.isfile(os.path.join(root, name, "__init__.py")):
        return os.path.join(root, name)
    if os.path.isfile(os.path.join(root, name + ".py")):
        return os.path.join(root, name + ".py")
    return None


def _python_files(path):
    if os.path.isfile(path):
        yield path
        return
    for folder, folders, files in os.walk(path):
        folders[:] = [f for f in folders if f != "__pycache__"]
        yield from (os.path.join(folder, f) for f in files if f.endswith(".py"))


def runtime_modules(root, notebooks):
    """The course's top-level modules and packages that the ``notebooks`` import, directly or through one
    another (``tests`` → ``course_checks`` → ``retinanet``), as ``{name: path}``."""
    wanted = set()
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
                wanted |= _top_level_imports(code)
    found, queue = {}, sorted(wanted)
    while queue:
        name = queue.pop()
        path = _project_module(root, name)
        if name in found or path is None:
            continue
        found[name] = path
        for file in _python_files(path):
            with open(file, encoding="utf-8") as handle:
                queue += sorted(_top_level_imports(handle.read()) - set(found))
    return dict(sorted(found.items()))


IMAGE_REFERENCE = re.compile(r"""!\[[^\]]*\]\(\s*<?([^)\s>]+)>?[^)]*\)|<img\s[^>]*?src\s*=\s*["']([^"']+)["']""", re.I)


def notebook_images(notebook_path):
    """The local files that the markdown cells of the notebook at ``notebook_path`` show (``![](path)`` or
    ``<img src="path">``, relative to the notebook), as absolute paths; web addresses and attachments are
    not files."""
    found = []
    for cell in nbformat.read(notebook_path, as_version=4).cells:
        if cell.cell_type != "markdown":
            continue
        for match in IMAGE_REFERENCE.finditer(cell.source):
            reference = match.group(1) or match.group(2)
            if re.match(r"^[a-z][a-z0-9+.-]*:", reference, re.I) or reference.startswith(("/", "#")):
                continue  # http:, data:, attachment:, an absolute path or an anchor
            found.append(os.path.normpath(os.path.join(os.path.dirname(notebook_path), reference.split("#")[0])))
    return found


LEARNER_README = """# RetinaNet in TensorFlow/Keras: the exercises

Build RetinaNet (Lin et al., *Focal Loss for Dense Object Detection*, ICCV 2017) yourself, one part at a
time, in four JupyterLab notebooks. After every exercise a check cell runs your code and the reference
implementation on the same inputs and tells you, in a sentence, what matches and what does not.

## Setup

You need Linux with Python 3.11 and `make`. In this folder:

```bash
make lab      # first time: creates .venv and installs the pinned packages (requirements.txt); then JupyterLab
```

It prints a link (`http://127.0.0.1:8888/lab?token=...`): open it in your browser. `make lab LAB_PORT=8890`
uses another port; Ctrl-C twice stops it. Without `make`:

```bash
python3.11 -m venv .venv && .venv/bin/pip install -r requirements.txt
PYTHONPATH="$PWD" JUPYTER_CONFIG_PATH="$PWD/.jupyter" .venv/bin/jupyter lab
```

## The exercises

Work through them in order; run every cell from the top of a notebook.

{assignments}

Write your code where a cell says `# YOUR CODE HERE` (delete the `raise NotImplementedError()` line), then
run the check cell below it. A failing check names what differs and the likely cause; fix and rerun. Do
not edit the check cells: they are put back as they were when your notebook is graded, on fresh inputs.

## What is here

- `exercises/`: the notebooks you work in, and the notebook you hand in per assignment;
- `tests.py`, `course_checks/`: the checks; `course/`: what the notebooks import (TensorFlow, Keras, the
  figures); `retinanet/`: the reference implementation the checks compare your code with;
- `requirements.txt`: the exact versions of every package the course was tested with.
"""

LEARNER_MAKEFILE = """# The learners' commands: `make lab` (JupyterLab on this folder). It creates the virtual environment
# .venv with the pinned packages of requirements.txt the first time.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
SETUP ?= $(VENV)/.installed
LAB_PORT ?= 8888

.PHONY: lab

$(VENV)/.installed: requirements.txt
\ttest -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
\t$(BIN)/python -m pip install --quiet --upgrade pip
\t$(BIN)/python -m pip install --quiet -r requirements.txt
\ttouch $@

# Loopback only, a fresh token (or yours: LAB_TOKEN=...) passed in JUPYTER_TOKEN, this folder as the root.
# .jupyter/ (first on JUPYTER_CONFIG_PATH) turns off what learners do not need: nbgrader's instructor tools
# and JupyterLab's news prompt. The notebooks' kernels import tests, course and retinanet from this folder
# (PYTHONPATH). Jupyter refuses root unless told; containers often run as root.
lab: $(SETUP)
\t@token="$${LAB_TOKEN:-$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(24))')}"; \\
\techo "JupyterLab on the exercises: http://127.0.0.1:$(LAB_PORT)/lab?token=$$token"; \\
\tJUPYTER_TOKEN="$$token" JUPYTER_PREFER_ENV_PATH=1 JUPYTER_CONFIG_PATH="$(CURDIR)/.jupyter" PYTHONPATH="$(CURDIR)" \\
\t\texec "$(abspath $(BIN))/python" -m jupyterlab \\
\t\t--ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) --ServerApp.port_retries=0 \\
\t\t--ServerApp.root_dir="$(CURDIR)" $$([ "$$(id -u)" = 0 ] && echo --allow-root)
"""


def _assignment_lines(release_dir, assignments):
    lines = []
    for assignment in assignments:
        folder = os.path.join(release_dir, "exercises", assignment)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".ipynb"):
                lines.append(f"1. `exercises/{assignment}/{name}`")
    return "\n".join(lines)


def forbidden_content(folder):
    """``(path, marker)`` for every file under ``folder`` that holds a solution, hidden-test or mark-scheme
    marker of nbgrader, or is a folder a release must not have (``solutions``, ``autograder``)."""
    found = []
    for current, folders, files in os.walk(folder):
        for name in folders:
            if name in ("solutions", "autograder"):
                found.append((os.path.relpath(os.path.join(current, name), folder), "folder"))
        for name in files:
            path = os.path.join(current, name)
            if name.endswith((".png", ".jpg", ".zip", ".pyc")):
                continue
            with open(path, "rb") as handle:
                text = handle.read().decode("utf-8", errors="replace")
            found += [(os.path.relpath(path, folder), marker) for marker in FORBIDDEN_MARKERS if marker in text]
    return found


def build_release(root, out, archive=None):
    """Write the learner release of the course at ``root`` into the folder ``out`` (replaced) and, when
    ``archive`` names a file, a zip of it whose entries sit in one folder named after ``out``.

    The exercises are the committed ``exercises/`` (what ``make exercises`` generated); the packages are those
    the exercises import, directly or through ``tests.py``. Returns ``(out, archive)``."""
    root = os.path.realpath(root)
    config = load_config(root)
    coursedir = CourseDirectory(config=config, root=root)
    _, assignments = course_assignments(root)
    exercises = os.path.join(root, coursedir.release_directory)
    missing = [a for a in assignments if not os.path.isdir(os.path.join(exercises, a))]
    if missing:
        raise GradingError(f"No exercises for {', '.join(missing)} in {exercises}: run `make exercises` first.")
    out, archive = os.path.realpath(out), archive and os.path.realpath(archive)
    if out == root or root.startswith(out + os.sep):
        raise GradingError(f"The release folder {out} would replace the course itself: choose another one.")
    staged = out + ".new"
    shutil.rmtree(staged, ignore_errors=True)
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc")
    notebooks = []
    for assignment in assignments:
        shutil.copytree(os.path.join(exercises, assignment), os.path.join(staged, "exercises", assignment),
                        ignore=ignore)
        notebooks += [os.path.join(staged, "exercises", assignment, n)
                      for n in sorted(os.listdir(os.path.join(staged, "exercises", assignment))) if n.endswith(".ipynb")]
    for assignment in assignments:  # the pictures the notebooks show, where the notebooks look for them
        folder = os.path.join(exercises, assignment)
        for notebook in sorted(n for n in os.listdir(folder) if n.endswith(".ipynb")):
            for image in notebook_images(os.path.join(folder, notebook)):
                relative = os.path.relpath(image, root)
                if relative.startswith(os.pardir) or not os.path.isfile(image):
                    raise GradingError(f"{assignment}/{notebook} shows {image}, which is not a file of the course.")
                if not os.path.exists(os.path.join(staged, relative)):
                    os.makedirs(os.path.dirname(os.path.join(staged, relative)), exist_ok=True)
                    shutil.copy2(image, os.path.join(staged, relative))
    for name, path in runtime_modules(root, notebooks).items():
        if os.path.isdir(path):
            shutil.copytree(path, os.path.join(staged, name), ignore=ignore)
        else:
            shutil.copy2(path, os.path.join(staged, os.path.basename(path)))
    shutil.copy2(os.path.join(root, "requirements.lock"), os.path.join(staged, "requirements.txt"))
    shutil.copytree(os.path.join(root, LEARNER_CONFIG), os.path.join(staged, ".jupyter"))
    with open(os.path.join(staged, "README.md"), "w") as handle:
        handle.write(LEARNER_README.format(assignments=_assignment_lines(staged, assignments)))
    with open(os.path.join(staged, "Makefile"), "w") as handle:
        handle.write(LEARNER_MAKEFILE)
    leaks = forbidden_content(staged)
    if leaks:
        shutil.rmtree(staged)
        raise GradingError("The release would hold what learners must not see: "
                           + "; ".join(f"{path} ({marker})" for path, marker in leaks))
    shutil.rmtree(out, ignore_errors=True)
    os.rename(staged, out)
    if archive:
        _zip(out, archive)
    return out, archive


def _zip(folder, archive):
    top = os.path.basename(folder)
    temporary = archive + ".new"
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as handle:
        for current, folders, files in os.walk(folder):
            folders.sort()
            for name in sorted(files):
                path = os.path.join(current, name)
                handle.write(path, os.path.join(top, os.path.relpath(path, folder)))
    os.replace(temporary, archive)


def learner_page_config(release):
    """The JupyterLab page config the learners' server reads from the release's ``.jupyter`` folder."""
    with open(os.path.join(release, ".jupyter", "labconfig", "page_config.json")) as handle:
        return json.load(handle)

