"""The project's pinned environments: the course's (pyproject.toml's dependencies + the ``course`` extra ⊆
requirements.lock = environment.yml, which ``make environment`` writes from the lock) and the JAX leg's
(dependencies + the ``jax`` extra ⊆ requirements-jax.lock, no TensorFlow); every make target runs in the
environment named by ``VENV``, a conda env included."""

import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import tomllib

import pytest

pytestmark = pytest.mark.backends("tensorflow")  # the pins of the TensorFlow environment

REQUIRED_PACKAGES = (
    "tensorflow", "keras", "numpy", "jupyterlab", "nbgrader", "matplotlib", "focal-loss", "pytest", "pycocotools",
)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$")


def normalise(name):
    """PEP 503 name normalisation: ``Focal_Loss`` and ``focal-loss`` are the same package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(lines, source):
    pins = {}
    for line in lines:
        match = PIN.match(line.strip())
        assert match, f"{source}: {line!r} is not an exact 'name==version' pin"
        name = normalise(match.group(1))
        assert name not in pins, f"{source}: {name} is pinned twice"
        pins[name] = match.group(2)
    return pins


def pyproject_pins(repo_root, extra="course"):
    """The pins of the core dependencies plus one extra (``course``: the environment this suite runs in)."""
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    core = parse_pins(project["dependencies"], "pyproject.toml")
    return {**core, **parse_pins(project["optional-dependencies"][extra], f"pyproject.toml [{extra}]")}


def environment_yml_pins(repo_root):
    """The ``- pip:`` list of environment.yml, read by hand (a list of ``- name==version`` lines)."""
    lines = (repo_root / "environment.yml").read_text().splitlines()
    pip_line = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    pip_indent = len(lines[pip_line]) - len(lines[pip_line].lstrip())
    entries = []
    for line in lines[pip_line + 1 :]:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if len(line) - len(line.lstrip()) <= pip_indent:
            break
        assert line.lstrip().startswith("- "), f"environment.yml: unexpected line in the pip list: {line!r}"
        entries.append(line.lstrip()[2:].split("#")[0])
    return parse_pins(entries, "environment.yml")


def lock_pins(repo_root, name="requirements.lock"):
    lines = (repo_root / name).read_text().splitlines()
    return parse_pins([line for line in lines if line.strip() and not line.startswith("#")], name)


def test_environment_yml_pins_exactly_the_lock(repo_root):
    """Every package of requirements.lock, at its version, and nothing else: a conda resolve picks nothing."""
    locked, conda_pins = lock_pins(repo_root), environment_yml_pins(repo_root)
    only_lock = {f"{n}=={v}" for n, v in locked.items()} - {f"{n}=={v}" for n, v in conda_pins.items()}
    only_conda = {f"{n}=={v}" for n, v in conda_pins.items()} - {f"{n}=={v}" for n, v in locked.items()}
    assert not only_lock and not only_conda, (
        f"pins differ (make environment): only in requirements.lock {sorted(only_lock)}, "
        f"only in environment.yml {sorted(only_conda)}"
    )
    assert set(pyproject_pins(repo_root)) <= set(conda_pins)


def _environment_script(repo_root):
    spec = importlib.util.spec_from_file_location("environment_script", repo_root / ".ci" / "environment.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_environment_yml_is_what_make_environment_writes(repo_root):
    script = _environment_script(repo_root)
    assert (repo_root / "environment.yml").read_text() == script.render((repo_root / "requirements.lock").read_text())
    assert subprocess.run(["python3", str(repo_root / ".ci" / "environment.py"), "--check"]).returncode == 0


def test_the_environment_check_fails_when_the_lock_moves(repo_root, tmp_path):
    """``--check`` (and the render the test above compares with) notices one changed version."""
    script = _environment_script(repo_root)
    lock = (repo_root / "requirements.lock").read_text()
    moved = re.sub(r"^(numpy==)(\S+)$", r"\g<1>0.0.1", lock, count=1, flags=re.MULTILINE)
    assert moved != lock and script.render(moved) != (repo_root / "environment.yml").read_text()
    copy = tmp_path / "course"
    (copy / ".ci").mkdir(parents=True)
    shutil.copy(repo_root / ".ci" / "environment.py", copy / ".ci")
    shutil.copy(repo_root / "environment.yml", copy)
    (copy / "requirements.lock").write_text(moved)
    assert subprocess.run(["python3", str(copy / ".ci" / "environment.py"), "--check"],
                          capture_output=True).returncode == 1


def test_every_make_target_runs_in_the_environment_named_by_venv(repo_root):
    """``make VENV=$CONDA_PREFIX …`` installs into and runs from that environment, never .venv. (``PYTHON``,
    the interpreter that would create a missing environment, is named: the suite runs with .venv/bin first on
    PATH, where ``command -v python3.11`` would find .venv's.)"""
    prefix = "/opt/conda/envs/retinanet-course"
    targets = ["demo", "exercises", "release", "grade", "export", "test-tensorflow", "images"]
    printed = subprocess.run(["make", "-n", "-B", f"VENV={prefix}", "PYTHON=python3.11", *targets], cwd=repo_root, capture_output=True,
                             text=True, check=True).stdout
    assert f"{prefix}/bin/python -m pip install" in printed and f"{prefix}/bin/python -m autograder exercises" in printed
    assert ".venv/" not in printed.replace(".venv-jax/", "")


def test_environment_yml_uses_python_311(repo_root):
    assert re.search(r"^\s*-\s*python=3\.11\s*$", (repo_root / "environment.yml").read_text(), re.MULTILINE)


@pytest.mark.parametrize("extra, lock", [("course", "requirements.lock"), ("jax", "requirements-jax.lock")])
def test_each_lock_agrees_with_its_pins(repo_root, extra, lock):
    locked = lock_pins(repo_root, lock)
    disagreements = {
        name: (version, locked.get(name)) for name, version in pyproject_pins(repo_root, extra).items()
        if locked.get(name) != version
    }
    assert not disagreements, f"pyproject pin vs {lock} (pinned, locked): {disagreements}"


def test_the_reference_package_and_the_jax_leg_do_without_tensorflow(repo_root):
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    assert "tensorflow" not in parse_pins(project["dependencies"], "pyproject.toml")
    assert "tensorflow" not in lock_pins(repo_root, "requirements-jax.lock")
    assert "tensorflow" in pyproject_pins(repo_root, "course")


@pytest.mark.parametrize("package", REQUIRED_PACKAGES)
def test_required_package_is_pinned(repo_root, package):
    assert normalise(package) in pyproject_pins(repo_root), f"{package} is missing from pyproject.toml"


def test_keras_is_version_3(repo_root):
    assert pyproject_pins(repo_root)["keras"].split(".")[0] == "3"


def test_installed_versions_match_the_pins(repo_root):
    """The environment running the tests is the pinned one (``make`` installs with the lock)."""
    wrong = {}
    for name, version in pyproject_pins(repo_root).items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"pinned vs installed: {wrong}"


def test_no_tests_directory_shadows_tests_py(repo_root):
    assert not (repo_root / "tests").exists(), "a tests/ directory would shadow the learners' tests.py"
