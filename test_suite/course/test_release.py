"""What learners get, and how it is made: ``make exercises`` on a fresh clone (a failing nbgrader changes no
tracked file), ``make release`` (exercises, checks and the packages they import; no solutions, no hidden
tests), and ``make lab`` on the release (nbgrader's instructor extensions and JupyterLab's news prompt off).

The fresh clone is a copy of the repository's tracked files committed into a new git repository; its
``make`` uses this environment (``VENV=``) with nothing on PATH but ``/usr/bin:/bin``.
"""

import hashlib
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile

import nbformat
import pytest

from autograder.release import build_release, forbidden_content, notebook_images, runtime_modules

ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV = pathlib.Path(sys.executable).parent.parent
ASSIGNMENTS = ["01-architecture", "02-focal-loss", "03-anchors", "04-training"]
SYSTEM_PATH = "/usr/bin:/bin"
SERVER_START_S = 90


def git(folder, *arguments):
    return subprocess.run(["git", "-C", str(folder), *arguments], capture_output=True, text=True, check=True).stdout


def make(folder, *arguments, timeout=600):
    """``make`` in ``folder`` with this environment and the system's PATH only (as on a fresh machine)."""
    # Not the variables of a make this suite may run under (`make test`): a nested make prints "Entering directory".
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("VIRTUAL_ENV", "CONDA")) and key not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    env["PATH"] = SYSTEM_PATH
    return subprocess.run(["make", f"VENV={VENV}", *arguments], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=timeout)


def tree_digest(folder):
    """``{relative path: sha256}`` of every file under ``folder``."""
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(pathlib.Path(folder).rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """The repository's tracked files (as they are in the working tree), committed into a new repository.
    Their times are set in the past, so make finds this environment's installation up to date."""
    folder = tmp_path_factory.mktemp("fresh-clone")
    files = git(ROOT, "ls-files", "-z").split("\0")
    for name in filter(None, files):
        source, target = ROOT / name, folder / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            os.utime(target, (1_000_000_000, 1_000_000_000))
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "fresh clone")
    return folder


def test_make_exercises_on_a_fresh_clone_reproduces_the_committed_exercises(clone):
    """With nothing but the system on PATH (nbgrader's gradebook wants `alembic` from PATH; the grader reads the
    revision itself), the exercises come out byte for byte as committed, and the gradebook has the assignments."""
    result = make(clone, "exercises")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert git(clone, "status", "--porcelain") == ""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{clone / 'gradebook.db'}") as gb:
        assert sorted(a.name for a in gb.assignments) == ASSIGNMENTS


def _break(path, cell_type):
    """Put an unmatched ``### BEGIN SOLUTION`` into the first solution cell of the notebook at ``path``."""
    notebook = nbformat.read(path, as_version=4)
    cell = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == cell_type)
    cell.source = cell.source.replace("### END SOLUTION", "")
    nbformat.write(notebook, path)


def test_a_failing_nbgrader_changes_no_exercise_and_no_gradebook(clone):
    """The second assignment's source is broken (nbgrader refuses it) and the first one's changed: nothing is
    replaced, not even the first assignment that nbgrader generated before it failed."""
    if not (clone / "gradebook.db").exists():
        assert make(clone, "exercises").returncode == 0
    first = clone / "solutions" / "01-architecture" / "architecture.ipynb"
    notebook = nbformat.read(first, as_version=4)
    notebook.cells[0].source += "\n\nA changed introduction."
    nbformat.write(notebook, first)
    _break(clone / "solutions" / "02-focal-loss" / "focal_loss.ipynb", "code")
    exercises, gradebook = tree_digest(clone / "exercises"), (clone / "gradebook.db").read_bytes()
    try:
        result = make(clone, "exercises")
        assert result.returncode != 0
        assert "generate_assignment 02-focal-loss failed; nothing was changed" in result.stderr
        assert tree_digest(clone / "exercises") == exercises
        assert (clone / "gradebook.db").read_bytes() == gradebook
        assert sorted(git(clone, "status", "--porcelain").splitlines()) == [
            " M solutions/01-architecture/architecture.ipynb", " M solutions/02-focal-loss/focal_loss.ipynb"]
        assert not list(clone.glob("exercises/*.new")) and not list(clone.glob("exercises/*.old"))
    finally:
        git(clone, "checkout", "--", "solutions")


def test_make_review_on_a_missing_folder_says_so_and_fails(clone):
    result = make(clone, "review", "GRADES=no-such-folder")
    assert result.returncode != 0
    assert "no-such-folder is not a grading folder" in result.stderr
    assert "http://" not in result.stdout + result.stderr  # no URL of a server that never starts


def test_make_help_aligns_every_description(clone):
    lines = make(clone, "help").stdout.splitlines()
    assert len(lines) > 10 and all(line.startswith("  make ") for line in lines)
    columns = {re.match(r"  make \S+\s+", line).end() for line in lines}
    assert len(columns) == 1, lines


# --- the learner release --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def release(tmp_path_factory):
    folder = tmp_path_factory.mktemp("release")
    out, archive = build_release(ROOT, folder / "retinanet-course", folder / "retinanet-course.zip")
    return pathlib.Path(out), pathlib.Path(archive)


def _hidden_and_solution_lines():
    """Every line (over 12 characters) inside a solution region or hidden tests of the solution notebooks that is
    not also in the released exercise or the reference package (whose code learners get by design)."""
    lines = set()
    for path in (ROOT / "solutions").glob("*/*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            for begin, end in (("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"),):
                for region in cell.source.split(begin)[1:]:
                    lines |= {line.strip() for line in region.split(end)[0].splitlines() if len(line.strip()) > 12}
    assert lines, "the course is expected to have hidden tests"
    return lines


def test_the_release_holds_what_learners_need_and_no_solutions(release):
    folder, archive = release
    names = {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}
    for assignment in ASSIGNMENTS:
        exercise = next((ROOT / "exercises" / assignment).glob("*.ipynb"))
        assert (folder / "exercises" / assignment / exercise.name).read_bytes() == exercise.read_bytes()
    assert {"tests.py", "README.md", "Makefile", "requirements.txt", ".jupyter/labconfig/page_config.json",
            "course/__init__.py", "course_checks/__init__.py", "retinanet/__init__.py"} <= names
    assert (folder / "requirements.txt").read_text() == (ROOT / "requirements.lock").read_text()
    assert not {name for name in names if name.split("/")[0] in ("solutions", "autograder", "test_suite", "docs")}
    assert forbidden_content(folder) == []
    text = "\n".join((folder / name).read_text(errors="replace") for name in names)
    assert not [line for line in _hidden_and_solution_lines() if line in text]
    with zipfile.ZipFile(archive) as handle:
        assert {name.split("/", 1)[1] for name in handle.namelist()} == names
        assert {name.split("/", 1)[0] for name in handle.namelist()} == {folder.name}


def test_the_leak_check_finds_a_solution_notebook(tmp_path):
    """``forbidden_content``, which guards every release, is not blind: a source notebook is caught."""
    (tmp_path / "exercises").mkdir()
    source = ROOT / "solutions" / "01-architecture" / "architecture.ipynb"
    (tmp_path / "exercises" / "architecture.ipynb").write_bytes(source.read_bytes())
    found = forbidden_content(tmp_path)
    assert ("exercises/architecture.ipynb", "BEGIN SOLUTION") in found
    assert ("exercises/architecture.ipynb", "BEGIN HIDDEN TESTS") in found


def test_every_picture_a_released_notebook_shows_is_in_the_release(release):
    folder, _ = release
    for notebook in sorted(folder.glob("exercises/*/*.ipynb")):
        missing = [image for image in notebook_images(notebook) if not pathlib.Path(image).is_file()]
        assert missing == [], notebook


def test_the_pictures_of_a_notebook_are_its_local_images(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell('![anchors](../../images/anchors.png "title") and <img width=3 src="fig.svg">'),
        nbformat.v4.new_markdown_cell("![web](https://example.org/a.png) ![](attachment:x.png) ![](data:image/png;b)"),
        nbformat.v4.new_code_cell("print('![](not-markdown.png)')"),
    ])
    path = tmp_path / "exercises" / "01-x" / "x.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(notebook, path)
    assert notebook_images(path) == [str(tmp_path / "images" / "anchors.png"), str(path.parent / "fig.svg")]


def test_the_runtime_is_what_the_exercises_import():
    notebooks = sorted((ROOT / "exercises").glob("*/*.ipynb"))
    assert set(runtime_modules(str(ROOT), notebooks)) == {"course", "course_checks", "retinanet", "tests"}


CHECK_IN_THE_RELEASE = """
import json, sys
import nbformat
notebook = nbformat.read("exercises/02-focal-loss/focal_loss.ipynb", as_version=4)
code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
namespace = {}
exec(code[0], namespace)  # the notebook's imports: from course import ..., from tests import TEST_FOCAL_LOSS
exec(code[1], namespace)  # the untouched exercise
try:
    exec(code[2], namespace)  # its check
    untouched = "passed"
except Exception as error:
    untouched = f"{type(error).__name__}: {error}"
from retinanet.losses import sigmoid_focal_loss
namespace["TEST_FOCAL_LOSS"](sigmoid_focal_loss)
import course, course_checks, retinanet, tests
print(json.dumps({"untouched": untouched, "files": [m.__file__ for m in (course, course_checks, retinanet, tests)]}))
"""


def test_a_check_runs_in_the_release_with_only_the_release_on_the_path(release):
    folder, _ = release
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "RETINANET_FIGURES")}
    env.update(PYTHONPATH=str(folder), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", CHECK_IN_THE_RELEASE], cwd=folder, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-2].startswith("TEST_FOCAL_LOSS passed"), lines
    outcome = json.loads(lines[-1])
    assert "NotImplementedError" in outcome["untouched"]
    assert all(pathlib.Path(path).is_relative_to(folder) for path in outcome["files"]), outcome["files"]


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``make <target>`` serving JupyterLab on a free loopback port with a known token."""

    def __init__(self, folder, *arguments, home):
        self.port, self.token = _free_port(), os.urandom(16).hex()
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("VIRTUAL_ENV", "CONDA")) and key not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
        env.update(PATH=SYSTEM_PATH, LAB_TOKEN=self.token, HOME=str(home), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
                   JUPYTER_DATA_DIR=str(home / "data"))
        self.runtime = home / "runtime"
        self.log = open(home / "server.log", "w")
        self.process = subprocess.Popen(["make", "--no-print-directory", f"VENV={VENV}", f"LAB_PORT={self.port}",
                                         *arguments], cwd=folder, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def get(self, path, body=None):
        """``(status, body)`` of GET ``path`` (POST of JSON ``body``) with the token."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/{path}?token={self.token}",
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, ""

    def run_in_notebook_kernel(self, notebook, code):
        """Start the kernel of ``notebook`` as JupyterLab does (a session) and return what ``code`` prints."""
        from jupyter_client import BlockingKernelClient

        status, reply = self.get("api/sessions", {"path": notebook, "type": "notebook", "name": notebook,
                                                  "kernel": {"name": "python3"}})
        assert status == 201, status
        client = BlockingKernelClient(connection_file=str(self.runtime / f"kernel-{json.loads(reply)['kernel']['id']}.json"))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=120)
            printed = []
            client.execute_interactive(code, timeout=180, output_hook=lambda message: printed.append(
                message["content"].get("text", "")) if message["msg_type"] == "stream" else None)
            return "".join(printed)
        finally:
            client.stop_channels()

    def __enter__(self):
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if self.get("api/status")[0] == 200:
                    return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)  # polling a server that is starting
        raise AssertionError(f"no JupyterLab after {SERVER_START_S} s: {pathlib.Path(self.log.name).read_text()[-3000:]}")

    def __exit__(self, *exc):
        os.killpg(self.process.pid, signal.SIGTERM)  # its own session: make, the shell and the server
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()

    def page_config(self):
        status, html = self.get("lab")
        assert status == 200
        found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S)
        return json.loads(found.group(1))


NBGRADER_PAGES = ("formgrader", "assignments", "courses")
"""The pages of nbgrader's server extensions: the formgrader, the assignment list and the course list."""


def test_the_learners_lab_has_no_nbgrader_and_no_news_prompt(clone, tmp_path):
    """``make lab`` builds the release (none yet) and serves it as learners get it."""
    with Server(clone, "lab", home=tmp_path) as lab:
        config = lab.page_config()
        assert pathlib.Path(config["serverRoot"]) == clone / "release"  # the release, not the repository
        disabled = config["disabledExtensions"]
        assert "@jupyter/nbgrader" in disabled, disabled  # every plugin: menu, create assignment, formgrader, lists
        assert "@jupyterlab/apputils-extension:announcements" in disabled, disabled
        assert "@jupyter/nbgrader" in {e["name"] for e in config["federated_extensions"]}  # installed, yet off
        assert [lab.get(page)[0] for page in NBGRADER_PAGES] == [404] * len(NBGRADER_PAGES)
        printed = lab.run_in_notebook_kernel(  # a notebook's kernel imports the release's packages, not the course's
            "exercises/02-focal-loss/focal_loss.ipynb",
            "import os, course, course_checks, retinanet, tests\n"
            "print(os.getcwd()); print(*(m.__file__ for m in (course, course_checks, retinanet, tests)), sep='\\n')")
        cwd, *files = printed.split()
        assert pathlib.Path(cwd) == clone / "release" / "exercises" / "02-focal-loss"
        assert len(files) == 4 and all(pathlib.Path(f).is_relative_to(clone / "release") for f in files), files
    assert (clone / "release.zip").is_file() and git(clone, "status", "--porcelain") == ""


@pytest.mark.parametrize("target", ["lab-instructor", "review"])
def test_the_instructors_labs_keep_nbgrader_without_the_news_prompt(clone, tmp_path, target, monkeypatch):
    """``make lab-instructor`` (the repository) and ``make review`` (a grading folder's formgrader)."""
    from nbgrader.api import Gradebook

    from autograder.course import alembic_head

    monkeypatch.setattr("nbgrader.api.get_alembic_version", alembic_head)  # a new gradebook, no `alembic` on PATH

    grading = clone / "grading"
    grading.mkdir(exist_ok=True)
    Gradebook(f"sqlite:///{grading / 'gradebook.db'}").close()
    with Server(clone, target, f"GRADES={grading}", home=tmp_path) as lab:
        config = lab.page_config()
        assert pathlib.Path(config["serverRoot"]) == (clone if target == "lab-instructor" else grading)
        assert "@jupyterlab/apputils-extension:announcements" in config["disabledExtensions"]
        assert not {name for name in config["disabledExtensions"] if name.startswith("@jupyter/nbgrader")}
        assert lab.get("formgrader")[0] == 200
