"""An nbgrader course on disk: its config, its assignments, nbgrader's API on it."""

import functools
import os
import sys

import nbgrader.api
from nbgrader.apps import NbGraderAPI
from nbgrader.auth import Authenticator
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader


class GradingError(RuntimeError):
    """A course, a submissions folder or an output folder the grader cannot work with (exit code 2)."""


class GradingInterrupted(Exception):
    """The grader was stopped by Ctrl-C or SIGTERM (exit code 130); its message is the one line the command
    prints. Raised once everything the stop leaves behind is written (see :func:`autograder.driver.grade_class`)."""


def put_environment_bin_on_path():
    """nbgrader's gradebook runs the ``alembic`` command of this Python environment: make it findable when
    the environment is not activated (``make test``, ``make grade``, a cron job)."""
    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join(filter(None, [bin_dir, os.environ.get("PATH")]))


def load_config(root, overrides=None):
    """The nbgrader config of the course folder ``root`` (its ``nbgrader_config.py``), plus ``overrides``."""
    if not os.path.isfile(os.path.join(root, "nbgrader_config.py")):
        raise GradingError(f"No nbgrader_config.py in {root!r}: pass --course, the course repository.")
    config = PyFileConfigLoader("nbgrader_config.py", path=root).load_config()
    if overrides is not None:
        config.merge(overrides)
    return config


def alembic_head():
    """The revision nbgrader stamps a new gradebook with, read in this process through alembic's API.

    nbgrader's own ``nbgrader.api.get_alembic_version`` runs the program ``alembic heads`` to learn it: over
    a second of start-up for every new gradebook (one per grading run, the template's), and a failure where
    the environment's ``bin`` is not on PATH. Same scripts, same answer (``test_grading_nbgrader.py``)."""
    from alembic.config import Config as AlembicConfig  # noqa: PLC0415
    from alembic.script import ScriptDirectory  # noqa: PLC0415
    from nbgrader.dbutil import ALEMBIC_DIR  # noqa: PLC0415

    config = AlembicConfig()
    config.set_main_option("script_location", ALEMBIC_DIR)
    return ScriptDirectory.from_config(config).get_current_head()


_ALEMBIC_HEAD = functools.cache(alembic_head)


def nbgrader_api(root, overrides=None):
    """nbgrader's Python API on the course folder ``root`` (new gradebooks stamped by :func:`alembic_head`)."""
    nbgrader.api.get_alembic_version = _ALEMBIC_HEAD
    put_environment_bin_on_path()
    config = load_config(root, overrides or Config())
    coursedir = CourseDirectory(config=config, root=root)
    return NbGraderAPI(coursedir, Authenticator(config=config), config=config)


def course_assignments(root):
    """``(source folder, {assignment: [notebook names]})`` from the course's nbgrader source folder."""
    config = load_config(root)
    source = os.path.join(root, config.CourseDirectory.get("source_directory", "source"))
    if not os.path.isdir(source):
        raise GradingError(f"The course's source folder {source!r} (nbgrader_config.py) does not exist.")
    assignments = {}
    for name in sorted(os.listdir(source)):
        folder = os.path.join(source, name)
        notebooks = sorted(n[:-6] for n in os.listdir(folder) if n.endswith(".ipynb")) if os.path.isdir(folder) else []
        if notebooks:
            assignments[name] = notebooks
    if not assignments:
        raise GradingError(f"No assignment folders with notebooks in {source!r}.")
    return source, assignments
