"""The docs: results tables generated from ``benchmarks/*.json``, no figure typed in prose, a short README, links
that lead somewhere.

The measured figures live in the JSON files of ``benchmarks/`` alone; ``benchmarks/tables.py`` writes them into
``README.md`` and ``docs/*.md`` between ``<!-- table: NAME -->`` and ``<!-- end table -->``. These tests fail
when a page's table differs from what its JSON gives now (rerun ``python benchmarks/tables.py``), when the
prose of a page types one of the tables' figures itself (it should refer to the table), when the README
outgrows a front door, or when a relative link points to no file (or to no heading of a Markdown file).
"""

import importlib.util
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.backends("tensorflow", "jax")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
README_MAX_LINES = 300


def load_tables_module():
    spec = importlib.util.spec_from_file_location("docs_tables", REPO_ROOT / "benchmarks" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tables = load_tables_module()
PAGES = [REPO_ROOT / page for page in tables.pages(str(REPO_ROOT))]


def test_every_table_is_what_its_json_gives():
    problems = tables.update(str(REPO_ROOT), write=False)
    assert not problems, "\n".join(problems) + "\nregenerate: python benchmarks/tables.py"


def test_the_check_command_fails_naming_a_stale_table(tmp_path):
    """``--check`` on a copy whose table was edited by hand: exit 1, the page and the table named."""
    for page in PAGES:
        target = tmp_path / page.relative_to(REPO_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(page, target)
    shutil.copytree(REPO_ROOT / "benchmarks", tmp_path / "benchmarks", ignore=shutil.ignore_patterns("gpu", "*.py"))
    results = tmp_path / "docs" / "results.md"
    text = results.read_text(encoding="utf-8")
    first = tables.BLOCK.search(text)  # the page's first table, its last row edited by hand
    name, body = first.group(1), first.group(2)
    last_row = [line for line in body.splitlines() if line.startswith("| ")][-1]
    edited = body.replace(last_row, last_row.replace(" |", " (edited) |", 1))
    assert edited != body
    results.write_text(text.replace(body, edited, 1), encoding="utf-8")
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "tables.py"), "--root", str(tmp_path)]

    checked = subprocess.run(command + ["--check"], capture_output=True, text=True)
    assert checked.returncode == 1
    assert f"docs/results.md: table {name!r} is stale" in checked.stderr
    assert checked.stderr.count("is stale") == 1, checked.stderr

    subprocess.run(command, capture_output=True, text=True, check=True)
    assert results.read_text(encoding="utf-8") == text
    assert subprocess.run(command + ["--check"], capture_output=True, text=True).returncode == 0


def test_every_table_names_its_machine_and_its_json():
    texts, _ = tables.render(str(REPO_ROOT))
    for name, (_, sources) in tables.tables(str(REPO_ROOT)).items():
        first_line = texts[name].splitlines()[0]
        assert first_line.startswith("*Measured on **"), name
        for source in sources:
            assert f"`benchmarks/{source}`" in first_line, (name, source)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_figure_of_a_table_is_typed_in_prose(page):
    """The mAPs, seconds, images/s, milliseconds and ratios the tables show appear only in the tables."""
    _, figures = tables.render(str(REPO_ROOT))
    typed = tables.typed_figures(tables.prose(page.read_text(encoding="utf-8")), figures)
    assert not typed, (f"{page.name} types figures of the generated tables; refer to the table instead: "
                       + ", ".join(f"{figure!r} (table {table})" for figure, table in typed))


def test_the_prose_check_sees_a_typed_figure():
    _, figures = tables.render(str(REPO_ROOT))
    sample = {}  # one distinctive figure of each table: a bare number, a number with its unit, a ratio
    for figure, table in figures.shown.items():
        if tables.distinctive(figure):
            sample.setdefault(table, figure)
    assert len(sample) == len(tables.tables(str(REPO_ROOT)))
    prose = "In prose: " + "; then ".join(f"it reached {figure} there" for figure in sample.values()) + "."
    assert {figure for figure, _ in tables.typed_figures(prose, figures)} >= set(sample.values())
    assert not tables.typed_figures("Sec. 4.1: NMS at 0.5, top 1,000 per level, 100 detections, 800 steps, "
                                    "version 3.11.7", figures)


def test_readme_is_a_front_door():
    lines = (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move the rest to docs/"


def heading_anchors(text):
    """GitHub's anchors of a Markdown file's headings (outside code blocks)."""
    anchors, seen, fenced = set(), {}, False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not re.match(r"#{1,6} ", line):
            continue
        slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def relative_links(text):
    """Targets of ``[text](target)`` and ``![alt](target)`` outside code, without web or mail addresses."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text):
        if not re.match(r"[a-z][a-z0-9+.-]*:", target):
            yield target


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_point_to_existing_files(page):
    broken = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target} (no file {destination.relative_to(REPO_ROOT) if destination.is_relative_to(REPO_ROOT) else destination})")
        elif anchor and destination.suffix == ".md" and anchor not in heading_anchors(destination.read_text(encoding="utf-8")):
            broken.append(f"{target} (no heading #{anchor} in {destination.name})")
    assert not broken, f"{page.name}: " + "; ".join(broken)
