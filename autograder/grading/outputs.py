"""Cap and clean what a graded notebook's cells printed (``OutputCaps``, after nbgrader's ``LimitOutput``).

nbgrader cuts streams to ``LimitOutput.max_lines`` lines, but one 50 MB line (or a huge image) still
went whole into the autograded notebook and the feedback. This preprocessor also caps every output's
size and each notebook's total, and keeps only output types that cannot run code in a browser (no
HTML, JavaScript or SVG from learner code reaches the formgrader or a feedback page: their plain-text
form is kept). A cell that lost output is marked ``autograder.truncated`` (status ``output-limit``).
"""

import json

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Integer, List, Unicode

TRUNCATED_LINES = "... Output truncated ..."  # nbgrader's LimitOutput marker


class OutputCaps(Preprocessor):
    """Size caps and an allow-list of output types for every code cell's outputs."""

    enabled = Bool(True)

    max_text_bytes = Integer(100_000, help="Largest text output (a stream, a traceback, a text/plain value)").tag(
        config=True)
    max_data_bytes = Integer(2_000_000, help="Largest rich output (an image)").tag(config=True)
    max_notebook_bytes = Integer(20_000_000, help="All outputs of a notebook together").tag(config=True)
    allowed_types = List(Unicode(), ["text/plain", "image/png", "image/jpeg"],
                         help="Output types kept (others are dropped; their text/plain form stays)").tag(config=True)

    def preprocess(self, nb, resources):
        self.used = 0
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        kept, truncated = [], False
        for output in cell.outputs:
            output, cut = self._cap(output)
            size = len(json.dumps(output))
            if self.used + size > self.max_notebook_bytes:
                truncated = True
                continue
            self.used += size
            truncated = truncated or cut
            kept.append(output)
        cell.outputs = kept
        if truncated:
            cell.metadata.setdefault("autograder", {})["truncated"] = True
        return cell, resources

    def _cap(self, output):
        """``(output, whether it was cut)``."""
        cut = False
        if output.output_type == "stream":
            cut = TRUNCATED_LINES in output.text
            if len(output.text.encode()) > self.max_text_bytes:
                output.text = output.text.encode()[: self.max_text_bytes].decode(errors="ignore") + \
                    "\n" + TRUNCATED_LINES
                cut = True
        elif output.output_type == "error":
            traceback = "\n".join(output.traceback)
            if len(traceback.encode()) + len(output.evalue.encode()) > self.max_text_bytes:
                output.evalue = output.evalue[: self.max_text_bytes // 4]
                output.traceback = [f"{output.ename}: {output.evalue}", TRUNCATED_LINES]
                cut = True
        elif output.output_type in ("display_data", "execute_result"):
            data = {}
            for mime, value in output.data.items():
                text = value if isinstance(value, str) else json.dumps(value)
                limit = self.max_text_bytes if mime.startswith("text/") else self.max_data_bytes
                if mime not in self.allowed_types:
                    continue
                if len(text.encode()) > limit:
                    cut = True
                    if mime == "text/plain":
                        data[mime] = text[:limit] + "\n" + TRUNCATED_LINES
                    continue
                data[mime] = value
            if not data:
                data["text/plain"] = f"<output of type {', '.join(sorted(output.data)) or 'none'} not kept>"
            output.data = data
            output.metadata = {}
        return output, cut
