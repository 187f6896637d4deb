"""Write environment.yml from requirements.lock: conda's Python 3.11 and pip, and through pip every package
of the lock at its exact version (``make environment``; ``make lock`` runs it too). Standard library only.

``python .ci/environment.py --check`` writes nothing and exits 1 when environment.yml is not what the lock
makes (``test_suite/project/test_environment.py`` checks the same).
"""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEADER = """\
# Conda environment for the course, generated from requirements.lock by `make environment` (do not edit):
# every package pinned at the version tested, installed by pip into conda's Python 3.11.
#   conda env create -f environment.yml && conda activate retinanet-course && pip install --no-deps -e .
# Then run any make target in it: make VENV="$CONDA_PREFIX" test (see README).
name: retinanet-course
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
"""


def render(lock_text):
    """environment.yml's text for the lock ``lock_text`` (its comment lines and blank lines skipped)."""
    pins = [line.strip() for line in lock_text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    bad = [pin for pin in pins if "==" not in pin or pin.startswith("-")]
    if bad:
        raise SystemExit(f"requirements.lock: not 'name==version' pins: {bad}")
    return HEADER + "".join(f"      - {pin}\n" for pin in pins)


def main(argv):
    expected = render((ROOT / "requirements.lock").read_text())
    target = ROOT / "environment.yml"
    if "--check" in argv:
        if target.read_text() != expected:
            print("environment.yml differs from what requirements.lock makes: run `make environment`", file=sys.stderr)
            return 1
        return 0
    target.write_text(expected)
    print(f"Wrote {target.name}: {expected.count(chr(10)) - HEADER.count(chr(10))} packages from requirements.lock")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
