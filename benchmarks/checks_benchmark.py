"""How long each learner-facing check takes, measured the way a learner meets it: in a fresh kernel.

For every check and every repeat a new Jupyter kernel (the project's "Python 3 (ipykernel)") runs the
stage's import cell, then the solution cells of the exercises before the check (the learner's code:
functions defined, nothing built or called yet), then the check cell. So each sample is the check's *first*
call in its kernel, with a never-called model: TEST_BACKBONE_MODEL builds the learner's ResNet50 inside the
check, TEST_RETINANET gets ``RetinaNet(num_classes=10)`` built in the same cell and never called.

Reported per check: the median and the worst of the check call alone (``check_s``; the budget is 2 s, issue 22) and of
the whole check cell (``cell_s``, which for TEST_RETINANET also builds the model). Also reported: ``import
tests`` in a fresh kernel as its first statement (TensorFlow included) and after TensorFlow, as the
notebooks' first cell has it (the budget is 5 s). The machine (CPU model, cores) and the load averages
before and after are recorded, because the numbers are wall-clock on a possibly shared machine.

    .venv/bin/python benchmarks/checks_benchmark.py [--repeats 5]   # writes benchmarks/checks.json
"""

import argparse
import ast
import datetime
import json
import os
import pathlib
import platform
import re
import statistics
import sys
import time
from importlib import metadata

import nbformat
from jupyter_client.manager import start_new_kernel

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ("01-architecture/architecture.ipynb", "02-focal-loss/focal_loss.ipynb", "03-anchors/anchors.ipynb",
             "04-training/training.ipynb")
HIDDEN_TESTS = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)
CHECK_BUDGET_S, IMPORT_BUDGET_S = 2.0, 5.0


def nbgrader(cell):
    return cell.metadata.get("nbgrader", {})


def check_cases():
    """{check name: (notebook folder, import cell, exercise cells before it, setup code, check call)}."""
    cases = {}
    for name in NOTEBOOKS:
        notebook = nbformat.read(ROOT / "solutions" / name, as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        import_cell, exercises = code[0].source, []
        for cell in code[1:]:
            if nbgrader(cell).get("solution"):
                exercises.append(cell.source)
            elif nbgrader(cell).get("grade"):
                visible = HIDDEN_TESTS.sub("", cell.source).strip()
                statements = ast.parse(visible).body
                setup, call = statements[:-1], statements[-1]
                check = call.value.func.id
                cases[check] = ((ROOT / "solutions" / name).parent, import_cell, list(exercises),
                                "\n".join(ast.unparse(s) for s in setup), ast.unparse(call))
    return cases


class Kernel:
    """A fresh kernel in ``folder`` that runs code and reports its wall time; errors stop the benchmark."""

    def __init__(self, folder):
        os.environ["JUPYTER_PREFER_ENV_PATH"] = "1"  # the venv's kernel, not one from ~/.local
        self.manager, self.client = start_new_kernel(kernel_name="python3", cwd=str(folder))

    def run(self, code):
        started = time.perf_counter()
        reply = self.client.execute_interactive(code, timeout=600, output_hook=lambda message: None)
        elapsed = time.perf_counter() - started
        content = reply["content"]
        if content["status"] != "ok":
            raise RuntimeError(f"{code[:80]!r} failed: {content.get('ename')}: {content.get('evalue')}")
        return elapsed

    def close(self):
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def time_check(folder, import_cell, exercises, setup, call):
    kernel = Kernel(folder)
    try:
        kernel.run(import_cell)
        for exercise in exercises:
            kernel.run(exercise)
        setup_s = kernel.run(setup) if setup else 0.0
        check_s = kernel.run(call)
        return check_s, setup_s + check_s
    finally:
        kernel.close()


def time_import(first_statement):
    kernel = Kernel(ROOT)
    try:
        if not first_statement:
            kernel.run("from course import keras, tf")
        return kernel.run("import tests")
    finally:
        kernel.close()


LOADS = []
"""The 1-minute load average before each sample."""


def sampled(measure, *arguments):
    LOADS.append(os.getloadavg()[0])
    return measure(*arguments)


def summary(samples):
    return {"median_s": round(statistics.median(samples), 3), "max_s": round(max(samples), 3),
            "samples_s": [round(s, 3) for s in samples]}


def main():
    from retinanet.tools.benchmark import cpu_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh kernels per check (default 5)")
    parser.add_argument("--output", default=str(pathlib.Path(__file__).with_name("checks.json")))
    args = parser.parse_args()
    load_before = os.getloadavg()
    report = {"imports": {}, "checks": {}}
    for label, first in (("import tests (first statement, TensorFlow included)", True),
                         ("import tests (after TensorFlow, as in the notebooks)", False)):
        samples = [sampled(time_import, first) for _ in range(args.repeats)]
        report["imports"][label] = summary(samples)
        print(f"{label:58s} median {statistics.median(samples):5.2f} s   max {max(samples):5.2f} s", flush=True)
    for check, case in check_cases().items():
        results = [sampled(time_check, *case) for _ in range(args.repeats)]
        report["checks"][check] = {"check_s": summary([r[0] for r in results]),
                                   "cell_s": summary([r[1] for r in results])}
        print(f"{check:22s} check median {statistics.median(r[0] for r in results):5.2f} s   max "
              f"{max(r[0] for r in results):5.2f} s   cell median {statistics.median(r[1] for r in results):5.2f} s",
              flush=True)
    load_after = os.getloadavg()
    report = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs, {platform.machine()}",
        "python": platform.python_version(),
        "tensorflow": metadata.version("tensorflow"),
        "keras": metadata.version("keras"),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "load_average_1min_at_samples": {"min": round(min(LOADS), 2), "median": round(statistics.median(LOADS), 2),
                                         "max": round(max(LOADS), 2)},
        "repeats": args.repeats,
        "budget_s": {"check": CHECK_BUDGET_S, "import_tests": IMPORT_BUDGET_S},
        "method": "each sample in a new Jupyter kernel: the stage's import cell, the exercise solutions before "
                  "the check, then the check cell (the check's first call, on a never-called model)",
        **report,
        "within_budget": all(c["check_s"]["median_s"] <= CHECK_BUDGET_S for c in report["checks"].values())
        and all(i["median_s"] <= IMPORT_BUDGET_S for i in report["imports"].values()),
    }
    pathlib.Path(args.output).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"load average {load_before[0]:.2f} → {load_after[0]:.2f} (at samples: median "
          f"{statistics.median(LOADS):.2f}, max {max(LOADS):.2f}); wrote {args.output}")
    return 0 if report["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
