"""What a learner sees: the feedback page of a graded notebook, and a page for everything else.

``LearnerView`` (in ``GenerateFeedback.preprocessors``, after nbgrader's ``GetGrades``) turns an
autograded notebook into the learner's view of it:

* check cells show their visible source only (hidden-test regions cut out, as in the exercise) and
  only the outputs of the learner-visible run (see :mod:`autograder.grading.execute`); below them, the
  grader's verdict: points, and whether the check or a hidden test failed (never how);
* a notebook that was not executed by ``GuardedExecute`` shows no outputs at all: whatever ran in its
  kernel after a hidden test might echo it;
* a banner on top gives the grader's statuses and reasons (``autograder.status`` in the notebook's
  metadata, written by the worker), e.g. why a submission scored 0 for review.

:func:`status_page` writes a page for a submission that has no autograded notebook (missing, refused,
invalid, crashed before grading): the learner still learns what happened.
"""

import html

import nbformat
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from ..results import Status
from .execute import METADATA, is_check, split_hidden
from .markup import SafeHTMLExporter

VERDICT_STYLE = ("border-left:4px solid {colour};padding:4px 10px;margin:4px 0;background:#f8f8f8;"
                 "font-family:sans-serif")


def _verdict(cell, guarded):
    """The grader's one-line verdict on a check cell, as a display output."""
    meta, grading = cell.metadata.get(METADATA, {}), cell.metadata.get("nbgrader", {})
    score, points = grading.get("score"), grading.get("points", 0)
    hidden = meta.get("hidden_tests")
    visible = cell.outputs[: meta.get("visible_outputs", len(cell.outputs))] if guarded else []
    if score is not None and float(score) >= float(points) > 0:
        why = "the check passed" + (", and its hidden tests too" if hidden == "passed" else "")
    elif any(o.output_type == "error" for o in visible):
        why = "the check above failed"
    elif hidden == "failed":
        why = "the check above passed, but a hidden test failed (hidden tests are not shown)"
    elif hidden == "not run":
        why = "the hidden tests could not run: the kernel had died"
    else:
        why = "see the banner at the top"
    text = f"{'✔' if score is not None and float(score) >= float(points) > 0 else '✘'} " \
           f"{score if score is not None else 0:g} / {float(points):g} points: {why}"
    colour = "#2e7d32" if text.startswith("✔") else "#c62828"
    markup = f'<div style="{VERDICT_STYLE.format(colour=colour)}">{html.escape(text)}</div>'
    return nbformat.v4.new_output("display_data", data={"text/html": markup, "text/plain": text})


def status_banner(statuses, reasons):
    """A markdown cell with the grader's statuses and reasons (empty statuses: None)."""
    statuses = [Status(s) for s in statuses if Status(s) is not Status.OK]
    if not statuses and not reasons:
        return None
    lines = ["**Autograder**", ""]
    lines += [f"- `{s.value}`: {s.meaning}" for s in statuses]
    lines += [f"- {html.escape(reason)}" for reason in reasons]
    return nbformat.v4.new_markdown_cell("\n".join(lines), id="autograder-status")  # the same page every run


class LearnerView(Preprocessor):
    """The learner's view of an autograded notebook (see the module docstring)."""

    enabled = Bool(True)

    def preprocess(self, nb, resources):
        self.guarded = bool(nb.metadata.get(METADATA, {}).get("guarded"))
        nb, resources = super().preprocess(nb, resources)
        info = nb.metadata.get(METADATA, {})
        banner = status_banner(info.get("status", []), info.get("reasons", []))
        if banner is not None:
            nb.cells.insert(0, banner)
        nb.metadata.pop(METADATA, None)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if is_check(cell):
            cell.source = split_hidden(cell.source)[0]
            verdict = _verdict(cell, self.guarded)
            visible = cell.metadata.get(METADATA, {}).get("visible_outputs", len(cell.outputs))
            cell.outputs = (cell.outputs[:visible] if self.guarded else []) + [verdict]
        elif not self.guarded:
            cell.outputs = []
        cell.metadata.pop(METADATA, None)
        return cell, resources


def status_page(path, title, statuses, reasons, notebook=None):
    """Write a feedback page for a submission without an autograded notebook.

    ``notebook`` (optional): the learner's own submitted notebook; it is shown without outputs.
    """
    nb = nbformat.v4.new_notebook()
    if notebook is not None:
        nb = notebook
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
            cell.metadata = {}
    banner = status_banner(statuses, reasons) or nbformat.v4.new_markdown_cell("**Autograder**", id="autograder-status")
    banner.source = f"# {html.escape(title)}\n\n" + banner.source + "\n\nScore: 0"
    nb.cells.insert(0, banner)
    body, _ = SafeHTMLExporter().from_notebook_node(nb)  # learner markup sanitised, and a CSP: see markup.py
    with open(path, "w") as handle:
        handle.write(body)
