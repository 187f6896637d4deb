"""Learner markup never runs where an instructor or a learner looks: feedback pages, exports, the formgrader.

A learner of the toy course (grading_toy_course.py) hands in a correct notebook full of markup payloads:
``<script>``, ``<img onerror>``, ``<svg onload>``, ``<iframe srcdoc>``, ``<a href="javascript:…">`` and a
markdown ``[x](javascript:…)`` link (both clicked), ``<object>``, images and styles that load a URL, a raw
cell with HTML, attachments of type ``image/svg+xml`` and ``text/html``, and a code cell whose outputs are
HTML, JavaScript, SVG and markdown. A second learner hands in the same notebook with grading metadata
edited by hand: nbgrader refuses it, and the feedback is :func:`autograder.grading.feedback.status_page`'s page,
which shows the learner's own cells. Each script payload, if it ran, would set ``document.title`` and a
global and fetch a canary HTTP server on 127.0.0.1 (a random port) that this module starts; the others
would load a URL from it.

The class is graded once through the real pipeline (``grade_class``: nbgrader autograde and
generate_feedback in the sandbox); Debian's Chromium (Playwright, as in test_browser.py) opens the feedback
pages from disk and the submission in the formgrader of ``make review`` (as in test_formgrader.py). None
of the side effects may happen: no canary request, no title, no global. The same payloads rendered by a plain
nbconvert ``HTMLExporter`` (no sanitiser, no CSP: what the pages were before) do fire in the same browser,
so the checks can see a payload that runs. Ordinary markdown stays readable: a heading, emphasis, code, a
list, a table, LaTeX source and a PNG image (inline and as an attachment).
"""

import base64
import http.server
import os
import threading
import time
import urllib.request
import zipfile

import nbformat
import pytest
from nbconvert import HTMLExporter
from nbgrader.api import Gradebook

import grading_toy_course as toy
from autograder.driver import grade_class
from autograder.grades.export import export
from autograder.grading.markup import PAGE_CSP, REVIEW_CSP, SanitizeMarkup, clean_html, markdown_html
from autograder.sandbox.sandbox import Limits
from test_browser import CHROMIUM, CHROMIUM_FLAGS
from test_formgrader import Review

LIMITS = Limits(cell_timeout=30, wall_seconds=240, memory_gb=1)
PAYLOADS, REJECTED = "payloads", "rejected"
SETTLE_S = 2.5  # after a page has loaded: time for an onerror, an iframe or a fetch to happen
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5E"
       "rkJggg==")  # a 4×4 PNG
CLICKED = ("click me (html link)", "click me (markdown link)", "click me (attachment link)")
browser_only = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no browser: /usr/bin/chromium is missing (install Debian's package: apt-get install chromium; "
    ".ci/run does)",
)


class Canary:
    """An HTTP server on 127.0.0.1 (a random port) that records every request it gets."""

    def __init__(self):
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                self.send_response(204)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def payload_js(name, port):
    """JavaScript that sets the title and a global and fetches the canary, all named ``name`` (no spaces: it
    must also fit a markdown link's destination)."""
    return (f"top.document.title='pwned-{name}';top.pwned='{name}';"
            f"fetch('http://127.0.0.1:{port}/{name}',{{mode:'no-cors'}})")


def payload_cells(port):
    """The learner's markdown, raw and code cells: every payload names itself in what it would do."""

    def js(name):
        return payload_js(name, port)

    canary = f"http://127.0.0.1:{port}"
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" onload="{js("svgattachment")}">'
           f'<script>{js("svgscript")}</script></svg>')
    page = f"<script>{js('htmlattachment')}</script>"
    markdown = nbformat.v4.new_markdown_cell("\n\n".join([
        "## Readable heading",
        "Some *emphasis*, `inline code`, and LaTeX $x^2$.",
        "- first item\n- second item",
        "| column | value |\n|---|---|\n| cell one | 1 |",
        f"![inline png](data:image/png;base64,{PNG}) ![attached png](attachment:dot.png)",
        f"<script>{js('script')}</script>",
        f'<img src=x onerror="{js("img")}">',
        f'<svg onload="{js("svg")}"><circle r="5"/></svg>',
        f'<iframe srcdoc="<script>{js("iframe")}</script>"></iframe>',
        f'<a href="javascript:{js("htmllink")}">{CLICKED[0]}</a>',
        f"[{CLICKED[1]}](javascript:{js('mdlink')})",
        f"[{CLICKED[2]}](attachment:evil.html) ![svg](attachment:evil.svg) ![html](attachment:evil.html)",
        f'<img src="{canary}/imgsrc"> <object data="{canary}/object"></object>',
        f'<div style="background:url({canary}/style)">styled</div>',
        f"<style>body {{ background: url({canary}/styletag) }}</style>",
        f'<details open ontoggle="{js("ontoggle")}"><summary>details</summary></details>',
    ]))
    markdown.attachments = {
        "dot.png": {"image/png": PNG},
        "evil.svg": {"image/svg+xml": base64.b64encode(svg.encode()).decode()},
        "evil.html": {"text/html": base64.b64encode(page.encode()).decode()},
    }
    raw = nbformat.v4.new_raw_cell(f'<script>{js("raw")}</script><img src=x onerror="{js("rawimg")}">')
    code = f'''
        from IPython.display import HTML, SVG, Javascript, display
        display(HTML("""<img src=x onerror="{js('outhtml')}"><script>{js('outscript')}</script>"""))
        display(Javascript("{js('outjs')}"))
        display(SVG("""<svg xmlns="http://www.w3.org/2000/svg" onload="{js('outsvg')}"></svg>"""))
        display({{"text/markdown": "[{CLICKED[1]} out](javascript:{js('outmd')})"}}, raw=True)
    '''
    return markdown, raw, code


def learner_notebook(exercise, port, rejected=False):
    """The correct answers, with :func:`payload_cells` after the title; ``rejected``: and grading metadata
    edited by hand (a check cell marked as a task: nbgrader refuses the notebook)."""
    markdown, raw, code = payload_cells(port)
    nb = toy._answer(exercise, toy.ADD, toy.MUL, extra_cell=code)
    nb.cells[1:1] = [markdown, raw]
    if rejected:
        toy._cell(nb, "test_add").metadata["nbgrader"]["task"] = True  # a task cell must be markdown
    return nb


def unsanitised_outputs(port):
    """The payload code cell's outputs as the kernel makes them (the types OutputCaps drops)."""
    return [
        nbformat.v4.new_output("display_data", data={
            "text/html": f'<img src=x onerror="{payload_js("outhtml", port)}">', "text/plain": "<HTML>"}),
        nbformat.v4.new_output("display_data", data={"application/javascript": payload_js("outjs", port)}),
    ]


def unsanitised_page(nb, port, path):
    """What the pages were before: a plain nbconvert HTMLExporter, with :func:`unsanitised_outputs`."""
    nb = nbformat.from_dict(nb)
    nb.cells[-1].outputs = unsanitised_outputs(port)
    body, _ = HTMLExporter().from_notebook_node(nb)
    path.write_text(body)
    return path


@pytest.fixture(scope="module")
def canary():
    server = Canary()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def graded(tmp_path_factory, canary):
    """The toy class graded once: ``payloads`` (correct, and every payload) and ``rejected`` (refused)."""
    base = tmp_path_factory.mktemp("markup")
    course, out, submissions = str(base / "course"), str(base / "out"), base / "submissions"
    exercise = toy.make_course(course)
    notebooks = {PAYLOADS: learner_notebook(exercise, canary.port),
                 REJECTED: learner_notebook(exercise, canary.port, rejected=True)}
    for student, nb in notebooks.items():
        (submissions / student / toy.ASSIGNMENT).mkdir(parents=True)
        nbformat.write(nb, str(submissions / student / toy.ASSIGNMENT / (toy.NOTEBOOK + ".ipynb")))
    records, _ = grade_class(course, str(submissions), out, limits=LIMITS, jobs=2, progress=False)
    export(out)
    return {"base": base, "out": out, "notebooks": notebooks, "records": {r.student: r for r in records}}


def feedback_page(graded, student):
    return os.path.join(graded["out"], "feedback", student, toy.ASSIGNMENT, toy.NOTEBOOK + ".html")


def autograded(graded, student):
    path = os.path.join(graded["out"], "autograded", student, toy.ASSIGNMENT, toy.NOTEBOOK + ".ipynb")
    return nbformat.read(path, as_version=4)


# Without a browser: what the pipeline wrote.

def test_payloads_are_graded_as_usual(graded):
    payloads, rejected = graded["records"][PAYLOADS], graded["records"][REJECTED]
    assert (payloads.score, sorted(s.value for s in payloads.statuses)) == (toy.MAX_SCORE, ["ok"]), payloads.detail
    assert sorted(s.value for s in rejected.statuses) == ["rejected-notebook"], rejected.detail


def live_markup(html):
    """What in ``html`` could run or load something: active elements, event handlers, URLs other than
    http(s)/mailto links, fragments and data: PNG/JPEG images, styles with a URL."""
    from bs4 import BeautifulSoup

    found = []
    for element in BeautifulSoup(html, "html.parser").find_all(True):
        if element.name in ("script", "iframe", "frame", "svg", "math", "object", "embed", "style", "link", "meta",
                            "base", "form", "input", "button", "textarea", "audio", "video", "source"):
            found.append(str(element)[:80])
        for name, value in element.attrs.items():
            value = " ".join(value) if isinstance(value, list) else value
            if name.startswith("on") or name in ("srcdoc", "formaction", "action", "data", "xlink:href"):
                found.append(f"{element.name} {name}")
            elif name == "href" and not value.startswith(("http://", "https://", "mailto:", "#")):
                found.append(f"{element.name} href={value[:40]}")
            elif name == "src" and not value.startswith(("data:image/png;", "data:image/jpeg;")):
                found.append(f"{element.name} src={value[:40]}")
            elif name == "style" and "url(" in value:
                found.append(f"{element.name} style={value[:40]}")
    return found


def test_the_autograded_notebook_holds_no_learner_markup(graded):
    """What the formgrader renders (with any exporter) is safe at the source."""
    nb = autograded(graded, PAYLOADS)
    assert "widgets" not in nb.metadata
    for cell in nb.cells:
        assert "attachments" not in cell
        if cell.cell_type in ("markdown", "raw"):
            assert live_markup(cell.source) == [], cell.source
        for output in cell.get("outputs", []):
            assert set(output.get("data", {})) <= {"text/plain", "image/png", "image/jpeg"}
    markdown = nb.cells[1].source
    assert markdown.startswith("<div>") and "\n" not in markdown  # one HTML block
    assert "<h2>Readable heading</h2>" in markdown and "<em>emphasis</em>" in markdown
    assert f'src="data:image/png;base64,{PNG}"' in markdown
    assert "&lt;script&gt;" in markdown  # the attempt shown as text, for the reviewer to see


def test_feedback_pages_carry_the_csp_first_and_no_learner_markup(graded):
    for student in (PAYLOADS, REJECTED):
        with open(feedback_page(graded, student)) as handle:
            page = handle.read()
        head = page.split("<head", 1)[1].split(">", 1)[1].lstrip()
        assert head.startswith(f'<meta http-equiv="Content-Security-Policy" content="{PAGE_CSP}">'), student
        body = page.split("<body", 1)[1]
        assert live_markup("<body" + body) == [], student
        assert "pwned-script" in body  # the learner's text is all there, as text


def test_the_exports_are_the_same_pages(graded):
    with zipfile.ZipFile(os.path.join(graded["out"], "exports", "feedback", PAYLOADS + ".zip")) as archive:
        exported = archive.read(f"{toy.ASSIGNMENT}/{toy.NOTEBOOK}.html")
    with open(feedback_page(graded, PAYLOADS), "rb") as handle:
        assert exported == handle.read()


def test_markdown_html_is_idempotent_and_keeps_markdown():
    source = "# T\n\n*e* `c < 1` $x^2$\n\n| a |\n|---|\n| 1 |\n\n```python\nx = 1\n\n[y](javascript:z)\n```"
    once = markdown_html(source)
    assert markdown_html(once) == once and "\n" not in once
    for kept in ("<h1>T</h1>", "<em>e</em>", "<code>c &lt; 1</code>", "$x^2$", "<td>1</td>", "&#10;"):
        assert kept in once, kept
    assert "href" not in once
    svg = '<a href="JaVa\tscript:x">a</a><img src="data:image/svg+xml;base64,AA">'
    assert clean_html(svg) == "<a>a</a>[image not shown]"


def test_sanitize_markup_covers_comments_raw_cells_attachments_and_widget_state():
    """What the feedback template shows besides cells (nbgrader comments, as markdown) and what is no cell."""
    cell = nbformat.v4.new_markdown_cell("![a](attachment:a.svg)", attachments={"a.svg": {"image/svg+xml": "PHN2Zy8+"}})
    cell.metadata["nbgrader"] = {"comment": "[x](javascript:alert(1)) <img src=x onerror=alert(1)>"}
    raw = nbformat.v4.new_raw_cell("<script>alert(1)</script>")
    nb = nbformat.v4.new_notebook(cells=[cell, raw], metadata={"widgets": {"state": {}}})
    nb, _ = SanitizeMarkup().preprocess(nb, {})
    assert "widgets" not in nb.metadata and "attachments" not in nb.cells[0]
    for text in (nb.cells[0].source, nb.cells[0].metadata["nbgrader"]["comment"], nb.cells[1].source):
        assert live_markup(text) == [], text
    assert nb.cells[0].source == "<div><p>[image not shown: a]</p></div>"
    nbformat.validate(nb)


# In Chromium.

@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 900})
        try:
            yield context
        finally:
            context.close()


def visit(context, canary, url, before=None):
    """Open ``url``, click the payload links, wait; ``(page, title, global, canary requests)`` with the page open."""
    canary.hits.clear()
    page = context.new_page()
    page.set_default_timeout(60_000)
    if before:
        before(page)
    page.goto(url)
    page.wait_for_load_state("load")
    for text in CLICKED:
        links = page.get_by_text(text, exact=True)
        if links.count():
            links.first.click(no_wait_after=True)
    time.sleep(SETTLE_S)
    return page, page.title(), page.evaluate("() => window.pwned === undefined ? null : String(window.pwned)"), \
        sorted(canary.hits)


def expect_readable(page, within="body"):
    """Ordinary markdown of the payload cell, rendered: heading, emphasis, code, list, table, PNG images."""
    from playwright.sync_api import expect

    root = page.locator(within)
    expect(root.locator("h2", has_text="Readable heading")).to_have_count(1)
    expect(root.locator("em", has_text="emphasis")).to_have_count(1)
    expect(root.locator("code", has_text="inline code")).to_have_count(1)
    expect(root.locator("li", has_text="second item")).to_have_count(1)
    expect(root.locator("td", has_text="cell one")).to_have_count(1)
    images = root.locator('img[src^="data:image/png"]')
    expect(images).to_have_count(2)
    for index in range(2):
        assert images.nth(index).evaluate("img => img.complete && img.naturalWidth") == 4


@browser_only
def test_the_payloads_run_in_an_unsanitised_page(graded, chromium, canary, tmp_path):
    """The control: the same notebook as plain nbconvert renders it runs the payloads in this browser."""
    path = unsanitised_page(graded["notebooks"][PAYLOADS], canary.port, tmp_path / "unsanitised.html")
    page, title, pwned, hits = visit(chromium, canary, path.as_uri())
    expected = {"/script", "/img", "/svg", "/iframe", "/htmllink", "/mdlink", "/outhtml", "/imgsrc"}
    deadline = time.monotonic() + 15
    while not expected <= set(canary.hits) and time.monotonic() < deadline:  # a loaded machine is slower
        time.sleep(0.1)
    page.close()
    assert title.startswith("pwned-") and pwned is not None
    assert expected <= set(canary.hits), canary.hits


@browser_only
@pytest.mark.parametrize("student", [PAYLOADS, REJECTED])
def test_feedback_pages_run_no_learner_markup(graded, chromium, canary, student):
    page, title, pwned, hits = visit(chromium, canary, "file://" + feedback_page(graded, student))
    try:
        assert (hits, pwned) == ([], None) and not title.startswith("pwned"), (hits, pwned, title)
        expect_readable(page)
        assert "$x^2$" in page.inner_text("body")  # LaTeX as its source: no script renders it
    finally:
        page.close()


def graded_before_the_fix(nb, learner, port):
    """An autograded notebook as it was before learner markup was sanitised: ``nb`` with the learner's own
    markdown and raw cells (attachments included), widget state, and HTML and JavaScript outputs."""
    old = nbformat.from_dict(nb)
    old.cells[1:3] = [nbformat.from_dict(cell) for cell in learner.cells[1:3]]
    old.cells[-1].outputs = unsanitised_outputs(port)
    old.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                             "version_minor": 0}}
    return old


@browser_only
def test_the_formgrader_runs_no_learner_markup(graded, chromium, canary, tmp_path):
    """The submission in the formgrader of `make review` (its CSP header on), as an instructor opens it: as
    graded now, and as graded before the fix (the formgrader's exporter sanitises what it renders), with a
    hostile student name."""
    with Gradebook("sqlite:///" + os.path.join(graded["out"], "gradebook.db")) as gb:
        submission = gb.find_submission_notebook(toy.NOTEBOOK, toy.ASSIGNMENT, PAYLOADS).id
        # a learner's name from an LMS (a Moodle export's full name): the submission view's title bar shows it
        name = f'<img src=x onerror="{payload_js("name", canary.port)}">'
        gb.update_or_create_student(PAYLOADS, first_name="Eve", last_name=name)
    path = os.path.join(graded["out"], "autograded", PAYLOADS, toy.ASSIGNMENT, toy.NOTEBOOK + ".ipynb")
    sanitised = autograded(graded, PAYLOADS)
    (tmp_path / "home").mkdir()
    review = Review(graded["out"], tmp_path / "home")
    try:
        review.wait_until_ready()
        login = review.url(f"formgrader?token={review.token}")
        with urllib.request.urlopen(login, timeout=30) as response:
            assert response.headers["Content-Security-Policy"] == REVIEW_CSP
        for notebook in (sanitised, graded_before_the_fix(sanitised, graded["notebooks"][PAYLOADS], canary.port)):
            nbformat.write(notebook, path)
            page, title, pwned, hits = visit(chromium, canary, review.url(f"formgrader/submissions/{submission}/"),
                                             before=lambda p: p.goto(login))
            try:
                assert (hits, pwned) == ([], None) and not title.startswith("pwned"), (hits, pwned, title)
                expect_readable(page, "#notebook")
                page.wait_for_function(  # its own scripts ran: they loaded the grades and comments
                    "() => window.formgrader && formgrader.grades.loaded && formgrader.comments.loaded")
                assert page.locator("#test_add").count() == 1  # and its score box is there
                assert page.locator(".name-shown", has_text="<img src=x").count() == 1  # the name, as text
            finally:
                page.close()
    finally:
        nbformat.write(sanitised, path)
        review.stop()
