"""Learner markup made safe to look at: no markup a learner wrote runs where an instructor or a learner looks.

A learner's notebook is markup as well as code: markdown and raw cells may hold HTML (``<script>``,
``<img onerror>``, ``<svg onload>``, ``<iframe srcdoc>``, ``javascript:`` links), and cells carry
attachments (an ``image/svg+xml`` or ``text/html`` one is markup too). Every page that shows a
submission (the feedback pages, nbgrader's formgrader, the exports, which zip the feedback pages) is
rendered by nbconvert, and nbconvert copies such HTML verbatim unless asked to sanitise it. What nbconvert
7.17 sanitises, read in its source (``.venv/lib/python3.11/site-packages/nbconvert/`` and its templates in
``.venv/share/jupyter/nbconvert/templates/``):

* ``exporters/html.py``: ``HTMLExporter.sanitize_html`` (default off) only sets
  ``resources["should_sanitize_html"]``; the templates decide what it covers.
* ``templates/lab/base.html.j2`` and ``templates/classic/base.html.j2``: with it on, markdown cells and
  ``text/html`` and ``text/markdown`` outputs go through the ``clean_html`` filter and JavaScript outputs
  (in the classic template widget views and widget state too) are left out; raw cells, highlighted code
  and unencoded SVG outputs always go through ``clean_html``.
* ``filters/strings.py``: ``clean_html`` is ``bleach.clean`` with bleach's small allow-list (no headings,
  paragraphs, images or table headers: they are escaped into visible ``&lt;h1&gt;`` text, so a sanitised
  page is hardly readable) and bleach's link protocols (http, https, mailto).
* ``filters/markdown_mistune.py``: markdown is rendered with ``escape=False`` and
  ``allow_harmful_protocols=True`` (raw HTML and ``[x](javascript:…)`` pass), and an ``attachment:`` image
  is inlined as a ``data:`` URL of whatever type the attachment has (SVG first); a missing attachment
  raises and stops the whole page.
* nbgrader 0.9.6's own templates (``nbgrader/server_extensions/formgrader/templates/feedback/`` and
  ``formgrade/index.html.j2``, the feedback pages and the formgrader's submission view) override the
  markdown cell block *without* ``clean_html``: ``sanitize_html`` never reaches a markdown cell there.

So this module sanitises at the source and again at each view, with bleach (the maintained sanitiser
nbconvert itself uses) and a policy of its own that keeps ordinary markdown readable:

* :class:`SanitizeMarkup` (a preprocessor) rewrites every markdown cell as the clean HTML of its rendered
  markdown (one HTML block that any markdown renderer passes through unchanged; images only as ``data:``
  PNG/JPEG; links only http(s), mailto and ``#``), cleans raw cells, drops attachments (PNG/JPEG ones are
  inlined first) and notebook-level widget state (which would load the widget manager's script). It runs
  at the end of ``nbgrader autograde`` (the autograded notebook the formgrader renders is safe whatever
  renders it) and again in every ``HTMLExporter`` of the course's config (the formgrader's, the feedback's:
  notebooks graded before this existed are safe too). There it also escapes the student's names, which the
  formgrader's submission view would insert as HTML (:data:`PAGE_TEXTS`).
* :func:`clean_html` replaces nbconvert's ``clean_html`` filter, and ``sanitize_html`` is on, so outputs go
  through the same policy (``OutputCaps`` keeps only text and PNG/JPEG in the first place).
* :class:`SafeHTMLExporter` writes the feedback pages (``nbgrader generate_feedback``) and
  :func:`autograder.grading.feedback.status_page`'s pages: it sanitises last (after the learner view's banner and
  comments are added) and puts a Content-Security-Policy ``<meta>`` (:data:`PAGE_CSP`) first in the head: a
  page opened from disk or an LMS runs no script at all.
* :func:`review_settings`: the Content-Security-Policy header of ``make review`` (:data:`REVIEW_CSP`).
"""

import json
import re

import bleach
import markupsafe
import tinycss2
from bleach.css_sanitizer import CSSSanitizer
from bleach.html5lib_shim import Filter
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Unicode, default

IMAGE_TYPES = ("image/png", "image/jpeg")
"""The only images learner markup may show, inlined as ``data:`` URLs (no SVG: it is markup)."""

TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details", "div",
    "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol",
    "p", "pre", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "summary", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "var",
})
"""What markdown renders to, and a little more: no script, style, form, frame, object, SVG, MathML, meta,
link or base element (any other tag is shown as text, as nbconvert's ``clean_html`` does)."""

CLASSES = re.compile(r"[a-z]{1,3}\d?|highlight|hl-[\w+-]+|language-[\w+-]+|anchor-link|jp-[\w-]+|"
                     r"output_\w+|ansi-[\w-]+")
"""Class names kept: Pygments' short token classes, nbconvert's code and output classes. Nothing of the
formgrader's (``score``, ``tabbable``, ``comment``, ``nbgrader_cell`` …), whose scripts find their elements by
class."""

CSS_PROPERTIES = frozenset({
    "background", "background-color", "border", "border-bottom", "border-color", "border-left", "border-radius",
    "border-right", "border-style", "border-top", "border-width", "color", "font-family", "font-size",
    "font-style", "font-weight", "margin", "margin-bottom", "margin-left", "margin-right", "margin-top",
    "padding", "padding-bottom", "padding-left", "padding-right", "padding-top", "text-align",
    "text-decoration", "vertical-align", "white-space",
})
"""Inline style properties kept (no position, display, width, height or content; a value with ``url()`` or
any function but a colour drops its property)."""

CSS_FUNCTIONS = frozenset({"rgb", "rgba", "hsl", "hsla"})

PAGE_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
            "base-uri 'none'; form-action 'none'")
"""The feedback pages' policy: no script, frame, object, request or form of any kind; images only inlined
(PNG/JPEG outputs, the template's data: icons), styles only the page's own inline ones. nbconvert's
templates still name MathJax and require.js from a CDN: blocked, LaTeX shows as its source ($x^2$)."""

REVIEW_CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval' https://cdnjs.cloudflare.com",
    "style-src 'self' 'unsafe-inline' https://cdnjs.cloudflare.com",
    "font-src 'self' data: https://cdnjs.cloudflare.com",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "frame-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
    "report-uri /api/security/csp-report",
])
"""The policy of ``make review`` (JupyterLab and the formgrader, one server). The formgrader's pages need
inline scripts and handlers whose text changes per submission (``var submission_id = …``,
``onclick="toggle_name(true)"``) and nbgrader's templates take no nonce, JupyterLab needs ``eval`` for some
extensions, and the formgrader's MathJax comes from cdnjs: scripts cannot be forbidden without breaking them.
What it does forbid: scripts, styles and fonts from anywhere but the server and cdnjs, requests
(fetch, XHR, WebSocket, images, frames, workers) to any other origin (another port of 127.0.0.1 included),
plugins, ``<base>`` hijacking, forms posting elsewhere and framing by other sites (violations are logged by
the server, ``report-uri``). Learner markup never reaches these pages unsanitised (:class:`SanitizeMarkup`);
this is the second line. jupyter_server still appends ``sandbox allow-scripts`` for files it serves raw
(``/files/``, ``/nbconvert/``); the ``default-src 'none'`` it appends for its JSON API replies is a repeated
directive there, which browsers ignore."""


def _uri(value):
    """A URL as a browser would read it, for matching its scheme (bleach's normalisation)."""
    return re.sub(r"[`\x00-\x20\x7f-\xa0\s]+", "", value).lower()


def _attribute(tag, name, value):
    """Whether attribute ``name="value"`` of ``<tag>`` is kept (bleach's attribute filter)."""
    if name in ("title", "alt"):
        return True
    if name == "href":
        return tag == "a" and _uri(value).startswith(("http://", "https://", "mailto:", "#"))
    if name == "src":
        return tag == "img" and _uri(value).startswith(tuple(f"data:{t};base64," for t in IMAGE_TYPES))
    if name in ("width", "height"):
        return tag in ("img", "col", "td", "th") and re.fullmatch(r"\d{1,4}%?", value.strip()) is not None
    if name in ("colspan", "rowspan", "start"):
        return tag in ("td", "th", "ol") and re.fullmatch(r"\d{1,4}", value.strip()) is not None
    if name == "align":
        return value.strip().lower() in ("left", "right", "center", "justify")
    if name == "class":
        return all(CLASSES.fullmatch(token) for token in value.split())
    return name == "style"  # what of it is kept: _StyleSanitizer


def _safe_css_value(tokens):
    for token in tokens:
        if token.type in ("url", "at-keyword") or (token.type == "function" and token.lower_name not in CSS_FUNCTIONS):
            return False
        if token.type == "ident" and token.lower_value.startswith(("expression", "-moz-binding")):
            return False
        if token.type == "function" and not _safe_css_value(token.arguments):
            return False
    return True


class _StyleSanitizer(CSSSanitizer):
    """Inline styles: :data:`CSS_PROPERTIES` only, with plain values (no ``url()``, no ``!important``)."""

    def sanitize_css(self, style):
        kept = []
        for declaration in tinycss2.parse_declaration_list(style, skip_comments=True, skip_whitespace=True):
            if (declaration.type == "declaration" and declaration.lower_name in CSS_PROPERTIES
                    and _safe_css_value(declaration.value)):
                kept.append(f"{declaration.lower_name}:{tinycss2.serialize(declaration.value).strip()}")
        return ";".join(kept)


class _ImagesWithoutSource(Filter):
    """An image left without a source (its URL was no data: PNG/JPEG) becomes a note in the text."""

    def __iter__(self):
        for token in super().__iter__():
            if token["type"] in ("StartTag", "EmptyTag") and token["name"] == "img" \
                    and (None, "src") not in token["data"]:
                alt = token["data"].get((None, "alt"))
                yield {"type": "Characters", "data": f"[image not shown{': ' + alt if alt else ''}]"}
            else:
                yield token


_CLEANER = bleach.Cleaner(tags=TAGS, attributes=_attribute, protocols={"http", "https", "mailto", "data"},
                          strip=False, strip_comments=True, css_sanitizer=_StyleSanitizer(),
                          filters=[_ImagesWithoutSource])


def clean_html(element):
    """HTML with only :data:`TAGS`, safe attributes, styles and URLs left (markup elsewhere shown as text).

    Replaces nbconvert's ``clean_html`` filter (``HTMLExporter.filters``); the same signature.
    """
    element = element.decode() if isinstance(element, bytes) else str(element)
    return _CLEANER.clean(element)


class _Renderer(IPythonRenderer):
    """nbconvert's markdown renderer, but an ``attachment:`` is inlined only when it is a PNG or JPEG (else
    the image has no source) and a missing one stops nothing."""

    def _embed_image_or_attachment(self, src):
        if src.startswith("attachment:"):
            attachment = self.attachments.get(src[len("attachment:"):])
            for mime in IMAGE_TYPES:
                if isinstance(attachment, dict) and isinstance(attachment.get(mime), str):
                    return f"data:{mime};base64,{attachment[mime]}"
            return ""
        return src


_PRE = re.compile(r"(<pre\b[^>]*>.*?</pre>)", flags=re.DOTALL)
_TASK_BOX = re.compile(r'<input class="task-list-item-checkbox" type="checkbox" disabled( checked)?/>')


def markdown_html(source, attachments=None):
    """``source`` (markdown) as clean HTML in one line, wrapped in a ``<div>``: one HTML block, so a markdown
    renderer (nbconvert's, JupyterLab's) shows it as it is instead of parsing it again.

    Idempotent: the result, as markdown, gives itself again.
    """
    try:
        renderer = _Renderer(escape=False, attachments=attachments or {}, exclude_anchor_links=True)
        rendered = MarkdownWithMath(renderer=renderer).render(source)
    except Exception:  # a renderer's failure on hostile input: the text, escaped
        rendered = f"<pre>{bleach.clean(source)}</pre>"
    rendered = _TASK_BOX.sub(lambda m: "☑ " if m.group(1) else "☐ ", rendered)
    cleaned = clean_html(rendered).strip().replace("\r\n", "\n").replace("\r", "\n")
    # One line: line breaks are spaces, but in <pre> (code) a character reference.
    cleaned = "".join(part.replace("\n", "&#10;") if part.startswith("<pre") else part.replace("\n", " ")
                      for part in _PRE.split(cleaned))
    return cleaned if cleaned.startswith("<div>") else f"<div>{cleaned}</div>"


def _image_attachments(cell):
    attachments = cell.get("attachments") or {}
    return {name: {m: d[m] for m in IMAGE_TYPES if isinstance(d, dict) and m in d}
            for name, d in attachments.items() if isinstance(name, str)}


PAGE_TEXTS = ("first_name", "last_name", "student")
"""Page texts the formgrader's submission view puts in its HTML unescaped (nbgrader's
``formgrade_macros.html.j2``, from the exporter's resources): the student's names come from the gradebook,
where a Moodle export's full names go (``autograder.driver``), and a learner may choose one."""


class SanitizeMarkup(Preprocessor):
    """Learner markup rewritten to safe content (see the module docstring): markdown cells as clean HTML,
    raw cells cleaned, attachments inlined (PNG/JPEG) or dropped, notebook widget state dropped, nbgrader
    comments (the feedback shows them as markdown) cleaned, and the student's names (:data:`PAGE_TEXTS`)
    escaped for the formgrader's page."""

    enabled = Bool(True)

    def preprocess(self, nb, resources):
        nb.metadata.pop("widgets", None)
        for key in PAGE_TEXTS:  # markupsafe.escape: once, however often this runs
            if isinstance(resources.get(key), str):
                resources[key] = markupsafe.escape(resources[key])
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown":
            cell.source = markdown_html(cell.source, _image_attachments(cell))
        elif cell.cell_type == "raw":
            cell.source = clean_html(cell.source)
        cell.pop("attachments", None)
        grading = cell.metadata.get("nbgrader")
        if isinstance(grading, dict) and isinstance(grading.get("comment"), str):
            grading["comment"] = markdown_html(grading["comment"])
        return cell, resources


def with_csp(page, policy):
    """``page`` (an HTML document) with a Content-Security-Policy ``<meta>`` first in its head."""
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
    head = re.search(r"<head(\s[^>]*)?>", page, flags=re.IGNORECASE)
    if head is None:
        return meta + page
    return page[: head.end()] + "\n" + meta + page[head.end():]


class SafeHTMLExporter(HTMLExporter):
    """The HTML exporter of pages opened as files (feedback): sanitised, last, and with :data:`PAGE_CSP`."""

    sanitize_html = Bool(True, help="Outputs and markdown through clean_html (on by default here)").tag(
        config=True)
    content_security_policy = Unicode(PAGE_CSP, help="The page's Content-Security-Policy (a <meta>)").tag(
        config=True)

    @default("filters")
    def _filters_default(self):
        return {"clean_html": clean_html}

    def _preprocess(self, nb, resources):
        nb, resources = super()._preprocess(nb, resources)
        return SanitizeMarkup(parent=self).preprocess(nb, resources)

    def from_notebook_node(self, nb, resources=None, **kw):
        page, resources = super().from_notebook_node(nb, resources, **kw)
        return with_csp(page, self.content_security_policy), resources


def review_settings():
    """``ServerApp.tornado_settings`` of ``make review``, as JSON: the :data:`REVIEW_CSP` header."""
    return json.dumps({"headers": {"Content-Security-Policy": REVIEW_CSP}})
