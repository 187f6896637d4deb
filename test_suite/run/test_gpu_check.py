"""The GPU check (``benchmarks/gpu/``) cannot report success on failure: a wheel that is missing, does not
install or is of another version, a module that does not import, a stage that fails or runs out of time,
each ends the check with a non-zero exit and a line that says what; the wheel set is checked against the
wheels' own metadata; each part's stages fit one device call; a check whose stages succeed exits 0."""

import importlib.util
import os
import re
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.backends("tensorflow", "jax")

GPU = REPO_ROOT / "benchmarks" / "gpu"


def load(name):
    spec = importlib.util.spec_from_file_location(f"gpu_check_{name}", GPU / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_sh(*arguments, env=None, timeout=300):
    environment = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    environment.pop("OUT", None)
    return subprocess.run(["bash", str(GPU / "run.sh"), *arguments], cwd=REPO_ROOT, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def wheels_txt(tmp_path, extra):
    """The real wheels.txt with the line ``extra`` added to its core group."""
    text = re.sub(r"^(# group core:.*)$", lambda m: f"{m.group(1)}\n{extra}", (GPU / "wheels.txt").read_text(), count=1,
                  flags=re.MULTILINE)
    path = tmp_path / "wheels.txt"
    path.write_text(text)
    return path


def test_a_missing_wheel_stops_the_check_before_any_stage(tmp_path):
    pins = wheels_txt(tmp_path, "no-such-wheel-i23==1.0")
    completed = run_sh("--part", "1", "--no-peer", "--out", str(tmp_path), env={"GPU_WHEELS_TXT": str(pins)})
    assert completed.returncode == 3, completed.stdout + completed.stderr
    assert "no-such-wheel-i23==1.0 (group core) is not installed" in completed.stderr
    assert "no stage ran" in completed.stderr
    assert not list(tmp_path.glob("gpu-*.json"))


def fake_package(folder, name, version, body=""):
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text(f"__version__ = {version!r}\n{body}")
    info = folder / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_a_failed_import_stops_the_check(tmp_path):
    fake_package(tmp_path / "site", "keras", "3.15.1", "raise ImportError('a broken keras for the test')\n")
    completed = run_sh("--part", "1", "--no-peer", env={"PYTHONPATH": str(tmp_path / "site")})
    assert completed.returncode == 3
    assert "import keras (group core) failed: ImportError: a broken keras for the test" in completed.stderr


def test_another_keras_version_stops_the_check(tmp_path):
    fake_package(tmp_path / "site", "keras", "3.0.0")
    completed = run_sh("--part", "1", "--no-peer", env={"PYTHONPATH": str(tmp_path / "site")})
    assert completed.returncode == 3
    assert "keras 3.0.0 is installed, wheels.txt pins 3.15.1" in completed.stderr


def test_wheels_that_do_not_install_stop_the_check(tmp_path):
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "broken-1.0-py3-none-any.whl").write_bytes(b"not a zip file")
    completed = run_sh("--part", "1", env={"GPU_WHEELS": str(tmp_path / "wheels"), "GPU_SITE": str(tmp_path / "site")})
    assert completed.returncode == 3
    assert "installing the carried wheels" in completed.stderr and "no stage ran" in completed.stderr


def wheel(folder, name, version, *requires):
    lines = [f"Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *[f"Requires-Dist: {r}" for r in requires]]
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as archive:
        archive.writestr(f"{name}-{version}.dist-info/METADATA", "\n".join(lines) + "\n")


@pytest.mark.parametrize("case", ["complete", "missing", "old", "unpinned", "extra"])
def test_the_wheel_set_is_checked_against_its_metadata(tmp_path, case):
    wheels = load("wheels")
    folder = tmp_path / "wheels"
    folder.mkdir()
    pins = {"a": "1.0", "b": "2.0", "c": "1.1"}
    wheel(folder, "a", "1.0", "b>=2", "numpy", "tensorflow-text; platform_system != 'Windows'",
          "winonly; sys_platform == 'win32'", "c[x]", "old-python; python_version < '3.9'")
    wheel(folder, "b", "2.0" if case != "old" else "1.5")
    wheel(folder, "c", "1.1", "d; extra == 'x'" if case == "extra" else "typing-extensions")
    if case == "missing":
        del pins["c"]
        (folder / "c-1.1-py3-none-any.whl").unlink()
    if case == "unpinned":
        wheel(folder, "e", "1.0")
    text = "# group core:\n" + "".join(f"{n}=={v}\n" for n, v in pins.items())
    text += "# IMAGE: numpy\n# not needed: tensorflow-text (why), typing_extensions (why)\n"
    (tmp_path / "wheels.txt").write_text(text)
    problems = wheels.check_metadata(str(folder), str(tmp_path / "wheels.txt"))
    expected = {"complete": [], "missing": ["a requires c[x]: no pinned wheel"],
                "old": ["pinned b==2.0, but the wheel", "a requires b>=2, the pinned wheel is b 1.5"],
                "unpinned": ["holds a wheel of e, which wheels.txt does not pin"],
                "extra": ["c requires d; extra == 'x': no pinned wheel"]}[case]
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected):
        assert start in problem, problems


def test_the_pinned_wheel_set_names_what_the_issue_found_missing():
    wheels = load("wheels")
    pins, image, not_needed = wheels.read_wheels_txt()
    assert {"typing-extensions", "regex", "portpicker", "keras", "keras-hub", "optree", "grain"} <= set(pins)
    assert "importlib-resources" in not_needed and "tensorflow-text" in not_needed
    assert "jax" in image


def test_each_part_fits_one_device_call():
    run = load("run")
    for smoke in (False, True):
        plan = run.stage_plan(smoke)
        assert set(plan) == {"1", "2", "3"}
        for part, stages in plan.items():
            assert sum(limit for _, limit, _ in stages) <= run.PART_SECONDS, (smoke, part)
    names = [name for stages in run.stage_plan(False).values() for name, _, _ in stages]
    assert {"train_512", "peer_kerashub_512", "train_paper_512", "peer_kerashub_paper_512", "inference",
            "train_paper_512_b32", "peer_kerashub_paper_512_b32", "tests"} <= set(names)
    smoke_part_1 = dict((name, what) for name, _, what in run.stage_plan(True)["1"])
    assert "bfloat16" in " ".join(smoke_part_1["train_512"][1]) and "paper" in smoke_part_1["train_512"][1]
    assert "--frozen" in smoke_part_1["train_paper_512"][1] and "--frozen" in smoke_part_1["peer_kerashub_paper_512"][1]


def run_py(tmp_path, *arguments):
    return subprocess.run([sys.executable, str(GPU / "run.py"), "--out", str(tmp_path), "--scratch",
                           str(tmp_path / "scratch"), *arguments], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300, env={k: v for k, v in os.environ.items() if k != "OUT"})


def test_a_failing_stage_fails_the_check(tmp_path):
    completed = run_py(tmp_path, "--smoke", "--part", "2", "--stages", "shapes_evaluate")
    assert completed.returncode == 1
    assert "1 stage(s) of part 2 did not succeed" in completed.stderr
    assert "shapes_evaluate: failed with exit code" in completed.stderr
    report, = tmp_path.glob("gpu-*-part2.json")
    assert "failed" in report.read_text()


def test_stages_past_the_deadline_fail_the_check(tmp_path):
    completed = run_py(tmp_path, "--smoke", "--part", "1", "--no-peer", "--deadline", "1")
    assert completed.returncode == 1
    assert "train_512: skipped: the part's deadline was reached" in completed.stderr
    assert "peer_kerashub_512" not in completed.stderr  # left out by --no-peer, as asked: not a failure


def test_part_all_is_only_for_the_smoke(tmp_path):
    completed = run_py(tmp_path, "--part", "all")
    assert completed.returncode == 2 and "--part all is for --smoke" in completed.stderr


@pytest.mark.backends("jax")
def test_a_check_whose_stages_succeed_exits_0(tmp_path):
    completed = run_sh("--smoke", "--part", "2", "--no-peer", "--stages", "shapes_data", "--out", str(tmp_path),
                       "--scratch", str(tmp_path / "scratch"), env={"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "c")})
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert "every stage of part 2 succeeded" in completed.stdout
    assert "wheels: the installed wheel set is complete and as pinned" in completed.stdout
