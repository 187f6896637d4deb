"""The course as a learner meets it: JupyterLab in a real (headless) browser.

Starts JupyterLab on a free loopback port with a token, on a temporary copy of the course, and drives
Debian's Chromium through Playwright (``executable_path=/usr/bin/chromium``; Playwright's own browser
downloads are never used). In the first exercise notebook it runs the first check on the untouched
exercise (its failure message shows), types the solution in, runs again (the success line shows); in the
focal-loss notebook it moves a slider of the interactive figure and sees the picture change. JupyterLab runs
with the learners' config (jupyter-config/learner, as `make lab` gives it): no nbgrader menu or sidebar. Screenshots go
to a temporary folder, so a test run never rewrites the committed pictures; ``make images`` sets
``$COURSE_SCREENSHOTS`` to images/ to refresh ``images/lab-*.png``.

Skipped only where no Chromium is installed (``.ci/run`` installs it: ``apt-get install chromium``).
"""

import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import nbformat
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [  # headless, and nothing that reaches the network (the machine's network is closed)
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FIRST_EXERCISE = "exercises/01-architecture/architecture.ipynb"
FIRST_SOLUTION = "solutions/01-architecture/architecture.ipynb"
EXPLORER_EXERCISE = "exercises/02-focal-loss/focal_loss.ipynb"
EXPLORER_CALL = "focal_loss_explorer()"
COPIED = ["exercises"]
"""What the temporary course holds: the learner's notebooks (they import `tests`, `course` and `retinanet` from
the project's environment, where all three are installed)."""

LEARNER_CONFIG = REPO_ROOT / "jupyter-config" / "learner"
NBGRADER_LABELS = ("Nbgrader", "Create Assignment", "Formgrader", "Assignments", "Courses")
"""What nbgrader's lab extension adds (its menu, sidebars and panels): none of it in the learners' lab."""

SERVER_START_S = 90
KERNEL_RUN_S = 120
SCREENSHOTS_VARIABLE = "COURSE_SCREENSHOTS"
LAB_SETTINGS = {  # quiet, deterministic JupyterLab: every cell in the DOM, no news/update requests
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no browser: /usr/bin/chromium is missing (install Debian's package: apt-get install chromium; "
    ".ci/run does)",
)


def screenshot_folder(scratch):
    """``$COURSE_SCREENSHOTS`` when set (``make images``: the README's images/), else ``scratch``/screenshots."""
    folder = pathlib.Path(os.environ.get(SCREENSHOTS_VARIABLE) or scratch / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def free_loopback_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def first_check(exercise, solution):
    """``(solution cell index, check cell index, solution source)`` of the exercise's first task.

    The task is the first nbgrader solution cell; its check is the first following cell that calls a
    ``TEST_`` function. The solution text is the source notebook's cell of the same ``grade_id``, without
    nbgrader's markers.
    """
    task = next(i for i, cell in enumerate(exercise.cells) if cell.metadata.get("nbgrader", {}).get("solution"))
    check = next(
        i for i, cell in enumerate(exercise.cells) if i > task and cell.cell_type == "code" and "TEST_" in cell.source
    )
    grade_id = exercise.cells[task].metadata["nbgrader"]["grade_id"]
    source = next(
        cell.source for cell in solution.cells if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    )
    lines = [line for line in source.splitlines() if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
    return task, check, "\n".join(lines)


class JupyterLab:
    """JupyterLab on ``root`` at 127.0.0.1:<free port> with a fresh token, settings in a temporary folder."""

    def __init__(self, root, home):
        self.port = free_loopback_port()
        self.token = os.urandom(24).hex()
        self.log_path = home / "jupyterlab.log"
        settings = home / "settings"
        for name, values in LAB_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(values))
        env = {key: value for key, value in os.environ.items() if key not in ("RETINANET_FIGURES", "JPY_SESSION_NAME")}
        env.update(
            JUPYTER_TOKEN=self.token,
            JUPYTER_PREFER_ENV_PATH="1",
            JUPYTER_CONFIG_DIR=str(home / "config"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            JUPYTER_DATA_DIR=str(home / "data"),  # the venv's kernel and extensions, none from ~/.local
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
            JUPYTER_CONFIG_PATH=str(LEARNER_CONFIG),  # the learners' lab (make lab): no nbgrader instructor tools
        )
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def wait_until_ready(self):
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)  # polling a server that is starting, not waiting on the page
        log = self.log_path.read_text()[-3000:]
        raise AssertionError(f"JupyterLab did not answer within {SERVER_START_S} s; its log ends:\n{log}")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def open_notebook(page, path):
    """Open ``path`` in the running JupyterLab, wait for its idle kernel; return the cells' locator."""
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started")
    page.evaluate("path => { window.jupyterapp.commands.execute('docmanager:open', {path}); }", path)
    page.wait_for_function(
        "path => { const w = window.jupyterapp.shell.currentWidget;"
        " return w && w.context && w.context.path === path && w.content && w.content.widgets.length > 0; }",
        arg=path,
    )
    panel = page.evaluate("() => window.jupyterapp.shell.currentWidget.id")
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " const k = w.sessionContext.session && w.sessionContext.session.kernel;"
        " return k && k.status === 'idle'; }",
        timeout=KERNEL_RUN_S * 1000,
    )
    return page.locator(f"[id='{panel}'] .jp-Notebook .jp-Cell")


def run_command(page, command):
    page.evaluate("command => { window.jupyterapp.commands.execute(command); }", command)


def run_cell(page, cells, index):
    """Run cell ``index`` of the current notebook and wait until it has finished (a new prompt number)."""
    prompt = cells.nth(index).locator(".jp-InputPrompt")
    before = prompt.inner_text()
    page.evaluate("i => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = i; }", index)
    run_command(page, "notebook:run-cell")
    expect_finished(prompt, before)


def expect_finished(prompt, before):
    from playwright.sync_api import expect

    expect(prompt).not_to_have_text(before, timeout=KERNEL_RUN_S * 1000)
    expect(prompt).to_have_text(re.compile(r"\[\d+\]:"), timeout=KERNEL_RUN_S * 1000)


def output_text(cell):
    return "\n".join(cell.locator(".jp-OutputArea-output").all_inner_texts())


@pytest.fixture
def course(tmp_path):
    """A temporary copy of the learner's side of the course, and a private home for JupyterLab."""
    root = tmp_path / "course"
    for name in COPIED:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        else:
            root.mkdir(exist_ok=True)
            shutil.copy2(source, root / name)
    home = tmp_path / "home"
    home.mkdir()
    return root, home


def test_learner_runs_a_check_fixes_it_and_moves_a_slider(course):
    from playwright.sync_api import expect, sync_playwright

    root, home = course
    exercise = nbformat.read(root / FIRST_EXERCISE, 4)
    task, check, solution = first_check(exercise, nbformat.read(REPO_ROOT / FIRST_SOLUTION, 4))
    check_name = re.search(r"TEST_\w+", exercise.cells[check].source).group()
    explorer_cell = next(
        i for i, cell in enumerate(nbformat.read(root / EXPLORER_EXERCISE, 4).cells) if EXPLORER_CALL in cell.source
    )
    screenshots = screenshot_folder(home)
    expect.set_options(timeout=30_000)  # rendering under a loaded 2-core CPU; kernel work waits longer
    started = time.monotonic()
    lab = JupyterLab(root, home)
    try:
        lab.wait_until_ready()
        lab_ready = time.monotonic() - started
        with pytest.raises(urllib.error.HTTPError, match="403"):  # the token is required
            urllib.request.urlopen(lab.url("api/status").split("?")[0], timeout=10)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                str(home / "chromium-profile"),  # an empty --user-data-dir
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport={"width": 1280, "height": 900},
            )
            try:
                page = browser.new_page()
                page.set_default_timeout(KERNEL_RUN_S * 1000)
                page.goto(lab.url("lab"))

                # 1. The untouched exercise, run from the top: the first check fails with its message.
                cells = open_notebook(page, FIRST_EXERCISE)
                menus = page.locator("#jp-menu-panel .lm-MenuBar-itemLabel").all_inner_texts()
                sidebars = page.locator(".jp-SideBar .lm-TabBar-tab").evaluate_all(
                    "tabs => tabs.map(t => t.getAttribute('title') || t.innerText)")
                assert "File" in menus and "Kernel" in menus, menus
                assert not [label for label in NBGRADER_LABELS if label in menus + sidebars], (menus, sidebars)
                check_cell = cells.nth(check)
                check_prompt = check_cell.locator(".jp-InputPrompt")
                prompt_before = check_prompt.inner_text()
                run_command(page, "notebook:run-all-cells")
                expect_finished(check_prompt, prompt_before)
                expect(check_cell.locator(".jp-OutputArea-output")).to_contain_text("AssertionError")
                failure = output_text(check_cell)
                check_cell.scroll_into_view_if_needed()
                page.screenshot(path=screenshots / "lab-check-failing.png")

                # 2. Type the solution into the task cell, run it and the check: the success line shows.
                cells.nth(task).locator(".cm-content").click()
                page.keyboard.press("Control+a")
                page.keyboard.insert_text(solution)
                typed = page.evaluate(
                    "i => window.jupyterapp.shell.currentWidget.content.widgets[i].model.sharedModel.getSource()", task
                )
                assert typed == solution
                page.keyboard.press("Escape")
                run_cell(page, cells, task)
                run_cell(page, cells, check)
                success = output_text(check_cell)
                assert success.strip().startswith(f"{check_name} passed"), success
                expect(check_cell.locator(".jp-OutputArea-output")).to_have_count(1)
                check_cell.scroll_into_view_if_needed()
                page.screenshot(path=screenshots / "lab-check-passing.png")

                # 3. The focal-loss explorer: drag the γ slider, the figure is redrawn.
                cells = open_notebook(page, EXPLORER_EXERCISE)
                run_cell(page, cells, explorer_cell)
                explorer = cells.nth(explorer_cell).locator(".retinanet-explorer")
                picture = explorer.locator("img.retinanet-figure")
                expect(picture).to_be_visible()
                page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
                explorer.scroll_into_view_if_needed()
                readout = explorer.locator(".widget-readout").first
                gamma_before = readout.inner_text()
                source_before = picture.get_attribute("src")
                pixels_before = picture.screenshot()
                page.screenshot(path=screenshots / "lab-slider-before.png")

                handle = explorer.locator(".noUi-handle").first.bounding_box()
                track = explorer.locator(".noUi-target").first.bounding_box()
                x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
                page.mouse.move(x, y)
                page.mouse.down()
                page.mouse.move(x + 0.4 * track["width"], y, steps=10)  # γ 2 -> about 4 on its 0…5 range
                page.mouse.up()
                expect(readout).not_to_have_text(gamma_before)
                page.wait_for_function(
                    "([img, before]) => img.src !== before && img.complete && img.naturalWidth > 0",
                    arg=[picture.element_handle(), source_before],
                )
                gamma_after = readout.inner_text()
                pixels_after = picture.screenshot()
                page.screenshot(path=screenshots / "lab-slider-after.png")
                assert pixels_after != pixels_before, "the figure did not change when γ moved"
                assert float(gamma_after) > float(gamma_before)
            finally:
                browser.close()
    finally:
        lab.stop()
    print(f"JupyterLab ready after {lab_ready:.0f} s, all done after {time.monotonic() - started:.0f} s; "
          f"check failing: {failure.strip().splitlines()[-1]!r}; passing: {success.strip().splitlines()[-1]!r}; "
          f"γ {gamma_before} -> {gamma_after}")
