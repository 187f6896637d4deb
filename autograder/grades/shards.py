"""Merge the grading folders of shards (``grade --shard i/n``, one per machine) into one class folder.

``python -m autograder merge --out grading shards/1 shards/2 …``. Each shard graded a disjoint set of
students (:func:`autograder.driver.shard_of`) into a grading folder of its own. The merge copies every
submission of every shard's gradebook into the class gradebook (replacing what it held for that
student's assignment), the submitted, autograded and feedback files (regular files only, size-capped),
and the grader's records, then writes ``grades.csv``. Merging the same shards again changes nothing;
the workers' logs stay in the shard folders.
"""

import os
import shutil
import stat

from nbgrader.api import Gradebook

from ..course import GradingError
from ..intake.safefiles import TooLarge, UnsafeFile, entries, read_regular, write_new
from ..results import load_records, save_records
from .export import write_grades
from .gradebook import definition, store_submission, submission_data

MAX_FILE_BYTES = 40 * 2**20
REQUIRED = ("nbgrader_config.py", "gradebook.db", "records.json", os.path.join("workers", ".template", "gradebook.db"))


def copy_regular_tree(source, destination, depth=4):
    """Copy the folders and regular files under ``source`` (nothing else, never through a link)."""
    os.makedirs(destination, exist_ok=True)
    for name, mode in entries(source):
        if stat.S_ISDIR(mode) and depth > 0:
            copy_regular_tree(os.path.join(source, name), os.path.join(destination, name), depth - 1)
        elif stat.S_ISREG(mode):
            try:
                write_new(os.path.join(destination, name), read_regular(os.path.join(source, name), MAX_FILE_BYTES))
            except (UnsafeFile, TooLarge):
                continue


def _check_shard(folder):
    missing = [name for name in REQUIRED if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise GradingError(f"{folder!r} is not a grading folder of `autograder grade` (no {missing[0]}).")


def _start(out, first):
    """A class folder from the first shard: its config, assignments and a gradebook without submissions."""
    os.makedirs(out, exist_ok=True)
    shutil.copy(os.path.join(first, "nbgrader_config.py"), os.path.join(out, "nbgrader_config.py"))
    for folder in ("source", "release"):
        copy_regular_tree(os.path.join(first, folder), os.path.join(out, folder))
    shutil.copy(os.path.join(first, "workers", ".template", "gradebook.db"), os.path.join(out, "gradebook.db"))


def merge(out, shard_folders):
    """Merge ``shard_folders`` into the grading folder ``out``; returns the number of submissions merged."""
    out = os.path.realpath(out)
    shards = [os.path.realpath(folder) for folder in shard_folders]
    if not shards:
        raise GradingError("Name the shards' grading folders to merge.")
    for shard in shards:
        _check_shard(shard)
        if shard == out:
            raise GradingError(f"--out {out!r} is one of the shards; merge into a folder of its own.")
    class_db = os.path.join(out, "gradebook.db")
    if not os.path.exists(class_db):
        _start(out, shards[0])
    store = os.path.join(out, "records.json")
    records, refusals = load_records(store)
    merged = 0
    for shard in shards:
        shard_db = os.path.join(shard, "gradebook.db")
        if not definition(shard_db) <= definition(class_db):
            raise GradingError(f"{shard!r} was graded with other assignments, cells or points than {out!r}.")
        with Gradebook("sqlite:///" + shard_db) as gb:
            submissions = [(a.name, s.student.id, submission_data(gb, a.name, s.student.id))
                           for a in gb.assignments for s in a.submissions]
        for assignment, student, data in submissions:
            store_submission(class_db, assignment, student, data)
            for kind in ("submitted", "autograded", "feedback"):
                source = os.path.join(shard, kind, student, assignment)
                destination = os.path.join(out, kind, student, assignment)
                shutil.rmtree(destination, ignore_errors=True)
                if os.path.isdir(source) and not os.path.islink(source):
                    copy_regular_tree(source, destination)
            merged += 1
        shard_records, shard_refusals = load_records(os.path.join(shard, "records.json"))
        records.update(shard_records)
        refusals.update(shard_refusals)
    save_records(store, records, refusals)
    write_grades(out)
    return merged
