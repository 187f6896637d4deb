"""The course notebooks: solutions run clean, exercises fail cleanly, exercises/ is what nbgrader generates.

Solutions and exercises are executed headless with nbclient in the venv's kernel, with
RETINANET_COURSE_QUICK=1 so that the training run of stage 4 takes one step.
"""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = [
    "01-architecture/architecture.ipynb",
    "02-focal-loss/focal_loss.ipynb",
    "03-anchors/anchors.ipynb",
    "04-training/training.ipynb",
]
CLEAN_FAILURES = {"AssertionError", "NotImplementedError"}


def nbgrader_flags(cell):
    return cell.metadata.get("nbgrader", {})


def is_check(cell):
    return nbgrader_flags(cell).get("grade", False) and not nbgrader_flags(cell).get("solution", False)


def execute(path, monkeypatch, allow_errors):
    monkeypatch.setenv("RETINANET_COURSE_QUICK", "1")
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "1")  # the venv's kernel, not one from ~/.local
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return notebook


def errors(cell):
    return [output for output in cell.get("outputs", []) if output.output_type == "error"]


def stderr(cell):
    return "".join(o.text for o in cell.get("outputs", []) if o.output_type == "stream" and o.name == "stderr")


def test_layout_and_metadata():
    for name in NOTEBOOKS:
        notebook = nbformat.read(ROOT / "solutions" / name, as_version=4)
        checks = [cell for cell in notebook.cells if is_check(cell)]
        solutions = [cell for cell in notebook.cells if nbgrader_flags(cell).get("solution")]
        assert checks and solutions, name
        assert all(nbgrader_flags(cell)["points"] > 0 and "TEST_" in cell.source for cell in checks), name
        assert all("### BEGIN SOLUTION" in cell.source for cell in solutions), name
        ids = [nbgrader_flags(cell)["grade_id"] for cell in notebook.cells if nbgrader_flags(cell)]
        assert len(ids) == len(set(ids)), name
        # every exercise cell is followed by its check cell
        for index, cell in enumerate(notebook.cells):
            if nbgrader_flags(cell).get("solution"):
                assert is_check(notebook.cells[index + 1]), f"{name}: no check after cell {index}"
        assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
            f"{name}: store the solution notebooks without outputs"
        # TensorFlow, Keras and the figures come from the public course package, never retinanet's private modules
        code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
        assert "from course import " in code and "retinanet._" not in code and "retinanet.interactive" not in code, name


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_solution_notebook_runs_with_all_checks_passing(name, monkeypatch):
    notebook = execute(ROOT / "solutions" / name, monkeypatch, allow_errors=False)
    checks = [cell for cell in notebook.cells if is_check(cell)]
    for cell in checks:
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert "passed" in text, f"{name}: {cell.source[:60]!r} printed {text!r}"
        assert stderr(cell) == "", f"{name}: a check cell wrote to stderr: {stderr(cell)[:300]}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_exercise_notebook_fails_cleanly(name, monkeypatch):
    notebook = execute(ROOT / "exercises" / name, monkeypatch, allow_errors=True)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if is_check(cell):
            failures = errors(cell)
            assert failures, f"{name}: a check passed on the unsolved exercise: {cell.source[:60]!r}"
            assert failures[0].ename in CLEAN_FAILURES, f"{name}: {failures[0].ename}: {failures[0].evalue}"
            assert "NotImplementedError" in failures[0].ename + failures[0].evalue
            assert stderr(cell) == ""
        else:
            for failure in errors(cell):
                # Cells after an unfinished exercise may miss its results; anything else is a bug.
                assert failure.ename in CLEAN_FAILURES | {"NameError"}, f"{name}: {failure.ename}: {failure.evalue}"


def test_exercises_hide_solutions_and_hidden_tests():
    for name in NOTEBOOKS:
        text = (ROOT / "exercises" / name).read_text()
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in text, f"exercises/{name} contains {marker!r}"
        assert "raise NotImplementedError()" in text


def test_exercises_are_what_nbgrader_generates(tmp_path):
    """exercises/ must be regenerated (make exercises) whenever solutions/ changes: what `make exercises` makes
    now (autograder.release.generate_exercises, here into a temporary folder) is the committed files, byte for
    byte."""
    from autograder.release import generate_exercises

    generate_exercises(ROOT, release=tmp_path)
    for name in NOTEBOOKS:
        assert (tmp_path / name).read_bytes() == (ROOT / "exercises" / name).read_bytes(), \
            f"exercises/{name} is stale: run `make exercises`"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == \
        sorted(p.relative_to(ROOT / "exercises").as_posix() for p in (ROOT / "exercises").rglob("*") if p.is_file())
