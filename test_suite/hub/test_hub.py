"""The course on a real JupyterHub, end to end in Chromium (``make test-hub``; README, *Run the course on JupyterHub*).

As root (it creates local users, as ``make hub`` does): ``hub/setup.sh`` makes an instructor and two learners,
an exchange and the instructor's course folder from the learner release; JupyterHub (``hub/jupyterhub_config.py``,
PAM with the users' system passwords, configurable-http-proxy from ``.hub/``) runs on free loopback ports. Then:

1. the instructor logs in (every nbgrader extension is there) and releases ``01-architecture``
   (``nbgrader release_assignment``, as the instructor's unix user);
2. learner one logs in (only the Assignments list of nbgrader's extensions), fetches the assignment from the
   Assignments tab, pastes the reference answer into every task, saves and submits from the tab;
3. the due date passes; learner two fetches, answers the first task only, and submits, late;
4. the instructor collects (``nbgrader collect``); ``make grade`` grades the collected submissions in the
   sandbox, with the course's config plus a due date and a late policy (a copy of the course: ``COURSE=``);
   ``make hub-feedback`` releases the feedback pages through the exchange;
5. each learner fetches feedback from the Assignments tab and reads exactly their own page;
6. neither learner can reach the other's files or the solutions: not through the hub (another user's
   server answers 403), not as their unix user (homes, the course folder, the exchange's inbound and
   feedback folders, the repository's solutions/).

The late learner answers one task rather than none: an untouched notebook scores 0, and its late penalty
would be 0 too, so nothing would show that the penalty was applied (the untouched, late case is graded
in ``grading/test_grading_nbgrader.py``). Collected only when ``COURSE_HUB_TEST=1`` (``make test-hub`` sets it; see
``test_suite/conftest.py``), so ``make test`` never creates users, and reports no skip for it.
"""

import csv
import json
import os
import pathlib
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

import nbformat
import pytest

from test_browser import CHROMIUM, CHROMIUM_FLAGS, LAB_SETTINGS, free_loopback_port, open_notebook, run_command
from test_grading_course import completed_exercise

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV = pathlib.Path(sys.executable).parent.parent
HUB = REPO_ROOT / "hub"
ASSIGNMENT, NOTEBOOK = "01-architecture", "architecture"
INSTRUCTOR, ON_TIME, LATE = "hubteacher", "hubada", "hubbob"
LEARNERS = (ON_TIME, LATE)
COURSE_ID = "retinanet"
LATE_POLICY = "50% per day"
HUB_START_S = 90
SPAWN_S = 180
KERNEL_S = 120



def home(user):
    return pathlib.Path(pwd.getpwnam(user).pw_dir)


def remove_users():
    for user in (INSTRUCTOR, *LEARNERS):
        subprocess.run(["userdel", "--remove", "--force", user], capture_output=True)


def as_user(user, *command, env, check=True):
    """``command`` as ``user``, with the environment the hub gives that user's server (hub/as_user.sh)."""
    result = subprocess.run([str(HUB / "as_user.sh"), user, *command], env=env, capture_output=True, text=True,
                            timeout=300)
    if check:
        assert result.returncode == 0, f"{user}: {command}: {result.stdout[-2000:]}{result.stderr[-3000:]}"
    return result


def can_read(user, path):
    """Whether ``user`` can read the file (or list the folder) ``path``, tried as that unix user."""
    command = ["ls", "--", str(path)] if pathlib.Path(path).is_dir() else ["head", "-c", "1", "--", str(path)]
    return subprocess.run(["runuser", "-u", user, "--", *command], capture_output=True).returncode == 0


class Hub:
    def __init__(self, scratch):
        self.port = free_loopback_port()
        self.exchange = scratch / "exchange"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "JUPYTER"))},
            "HUB_VENV": str(VENV), "HUB_STATE": str(scratch / "state"), "HUB_PORT": str(self.port),
            "HUB_API_PORT": str(free_loopback_port()), "HUB_PROXY_API_PORT": str(free_loopback_port()),
            "HUB_INSTRUCTOR": INSTRUCTOR, "HUB_LEARNERS": " ".join(LEARNERS), "HUB_EXCHANGE": str(self.exchange),
            "HUB_COURSE_ID": COURSE_ID, "HUB_RELEASE": "exercises", "HUB_ASSIGNMENTS": ASSIGNMENT,
            "HUB_AUTH": "pam",  # `make hub`'s default: the users' system passwords
            "HUB_SPAWNER_ARGS": "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, as test_browser.py
        }
        self.passwords = {user: os.urandom(12).hex() for user in (INSTRUCTOR, *LEARNERS)}
        self.log_path = scratch / "jupyterhub.log"
        self.process = None

    def url(self, path):
        return f"http://127.0.0.1:{self.port}/{path}"

    def start(self):
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([str(VENV / "bin" / "jupyterhub"), "-f", str(HUB / "jupyterhub_config.py")],
                                        cwd=self.env["HUB_STATE"], env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + HUB_START_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(self.url("hub/api/"), timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)  # polling a hub that is starting
        raise AssertionError(f"JupyterHub did not answer within {HUB_START_S} s:\n{self.tail()}")

    def tail(self):
        return self.log_path.read_text()[-4000:]

    def stop(self):
        if self.process is None:
            return
        self.process.terminate()  # the hub stops the users' servers and its proxy (cleanup_servers)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def password(self, user):
        return self.passwords[user]


@pytest.fixture(scope="module")
def hub():
    assert os.geteuid() == 0, "the hub test runs as root (it creates local users and spawns their servers)"
    remove_users()  # a clean start: no homes, caches or course folders of an earlier run
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="course-hub-"))
    scratch.chmod(0o711)  # the users reach the exchange inside it; nobody lists it
    (scratch / "state").mkdir(mode=0o700)
    (scratch / "private").mkdir(mode=0o700)  # the grading folder: root's alone
    server = Hub(scratch)
    setup = subprocess.run([str(HUB / "setup.sh")], cwd=REPO_ROOT, env=server.env, capture_output=True, text=True)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    passwords = "".join(f"{user}:{password}\n" for user, password in server.passwords.items())
    subprocess.run(["chpasswd"], input=passwords, text=True, check=True)  # as an administrator would
    for user in (INSTRUCTOR, *LEARNERS):  # quiet, deterministic JupyterLab, as in test_browser.py
        settings = home(user) / ".jupyter" / "lab" / "user-settings"
        for name, values in LAB_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(values))
        subprocess.run(["chown", "-R", f"{user}:", str(home(user) / ".jupyter")], check=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        remove_users()
        shutil.rmtree(scratch, ignore_errors=True)


def log_in(browser, hub, user):
    """A fresh browser context (its own cookies) logged in as ``user``, on the user's JupyterLab."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(KERNEL_S * 1000)
    page.goto(hub.url("hub/login"))
    page.fill("#username_input", user)
    page.fill("#password_input", hub.password(user))
    page.click("#login_submit")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started", timeout=SPAWN_S * 1000)
    assert page.url.startswith(hub.url(f"user/{user}/lab")), page.url
    return context, page


def nbgrader_commands(page):
    names = ("open-assignment-list", "open-formgrader", "open-course-list", "open-create-assignment")
    return {name for name in names if page.evaluate(f"() => window.jupyterapp.commands.hasCommand('nbgrader:{name}')")}


def assignments_tab(page):
    from playwright.sync_api import expect

    run_command(page, "nbgrader:open-assignment-list")
    panel = page.locator("#nbgrader-assignment-list")
    expect(panel).to_be_visible()
    page.locator("#refresh_assignments_list").click()
    return panel


def fetch_and_submit(page, answers, user):
    """In the Assignments tab: fetch, type ``answers`` ({cell index: source}) into the notebook, save, submit."""
    from playwright.sync_api import expect

    panel = assignments_tab(page)
    released = panel.locator("#released_assignments_list .list_item", has_text=ASSIGNMENT)
    released.locator("button", has_text="Fetch").click()
    expect(panel.locator("#fetched_assignments_list .list_item", has_text=ASSIGNMENT).first).to_be_visible()
    fetched = home(user) / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    assert fetched.is_file() and fetched.stat().st_uid == pwd.getpwnam(user).pw_uid

    cells = open_notebook(page, f"{ASSIGNMENT}/{NOTEBOOK}.ipynb")
    for index, source in answers.items():
        cells.nth(index).locator(".cm-content").click()
        page.keyboard.press("Control+a")
        page.keyboard.insert_text(source)
        page.keyboard.press("Escape")
        typed = page.evaluate(
            "i => window.jupyterapp.shell.currentWidget.content.widgets[i].model.sharedModel.getSource()", index)
        assert typed == source
    run_command(page, "docmanager:save")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
    saved = nbformat.read(str(fetched), 4)
    assert all(saved.cells[index].source == source for index, source in answers.items())

    panel = assignments_tab(page)
    panel.locator("#fetched_assignments_list button", has_text="Submit").first.click()
    expect(panel.locator("#submitted_assignments_list .list_item", has_text=ASSIGNMENT).first).to_be_visible()


def fetch_feedback(page, user):
    """In the Assignments tab: fetch the feedback; return the page's text as the learner's server serves it."""
    from playwright.sync_api import expect

    panel = assignments_tab(page)
    submitted = panel.locator("#submitted_assignments_list")
    submitted.locator("button", has_text="Fetch Feedback").first.click()
    expect(submitted.get_by_text("(view feedback)").first).to_be_visible()
    folder = f"{ASSIGNMENT}/feedback"
    listing = page.evaluate("p => window.jupyterapp.serviceManager.contents.get(p).then(m => m.content.map(c => c.path))",
                            folder)
    assert len(listing) == 1, listing  # one submission, one timestamp folder
    pages = page.evaluate("p => window.jupyterapp.serviceManager.contents.get(p).then(m => m.content.map(c => c.path))",
                          listing[0])
    assert [pathlib.PurePosixPath(p).name for p in pages] == [f"{NOTEBOOK}.html"], pages
    read = "p => window.jupyterapp.serviceManager.contents.get(p, {type: 'file', format: 'text', content: true})"
    return page.evaluate(read + ".then(m => m.content)", pages[0])


def utc_text(moment):
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def course_with_due_date(scratch, due):
    """The course for `make grade COURSE=...`: the repository's config, grader, checks and first assignment's
    source, plus a due date and a late policy for the assignment."""
    root = scratch / "private" / "course"
    root.mkdir()
    shutil.copy(REPO_ROOT / "tests.py", root)
    shutil.copytree(REPO_ROOT / "autograder", root / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "solutions" / ASSIGNMENT, root / "solutions" / ASSIGNMENT)
    schedule = (f'\nc.Schedule.due = {{"{ASSIGNMENT}": "{due}"}}\n'
                f'c.Schedule.late_policy = {{"{ASSIGNMENT}": "{LATE_POLICY}"}}\n')
    (root / "nbgrader_config.py").write_text((REPO_ROOT / "nbgrader_config.py").read_text() + schedule)
    return root


def make(*arguments, env):
    started = time.monotonic()
    result = subprocess.run(["make", *arguments], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"make {arguments}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
    return time.monotonic() - started


def test_release_fetch_submit_collect_grade_feedback_through_the_hub(hub):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)
    exercise, completed = completed_exercise(ASSIGNMENT, NOTEBOOK)
    tasks = [i for i, cell in enumerate(exercise.cells) if cell.metadata.get("nbgrader", {}).get("solution")]
    every_answer = {i: completed.cells[i].source for i in tasks}
    first_answer = {tasks[0]: completed.cells[tasks[0]].source}
    scratch = hub.exchange.parent
    course = home(INSTRUCTOR) / "course"
    timings = {}
    started = time.monotonic()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            # 0. A learner's name with another learner's password does not log in.
            context = browser.new_context()
            page = context.new_page()
            page.goto(hub.url("hub/login"))
            page.fill("#username_input", LATE)
            page.fill("#password_input", hub.password(ON_TIME))
            page.click("#login_submit")
            expect(page.get_by_text("Invalid username or password")).to_be_visible()
            assert "/hub/login" in page.url
            context.close()

            # 1. The instructor: every nbgrader extension; releases the learner release of 01-architecture.
            context, page = log_in(browser, hub, INSTRUCTOR)
            assert nbgrader_commands(page) == {"open-assignment-list", "open-formgrader", "open-course-list",
                                               "open-create-assignment"}
            assert page.context.request.get(hub.url(f"user/{INSTRUCTOR}/formgrader")).status == 200
            context.close()
            as_user(INSTRUCTOR, "nbgrader", "release_assignment", ASSIGNMENT, env=hub.env)
            released = hub.exchange / COURSE_ID / "outbound" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
            assert nbformat.read(str(released), 4) == exercise  # the learner release, not the solutions
            timings["release"] = time.monotonic() - started

            # 2. Learner one: only the Assignments list; fetch, answer every task, submit (on time).
            learner_pages = {}
            context, page = log_in(browser, hub, ON_TIME)
            assert nbgrader_commands(page) == {"open-assignment-list"}
            assert page.context.request.get(hub.url(f"user/{ON_TIME}/formgrader")).status == 404  # no server side
            fetch_and_submit(page, every_answer, ON_TIME)
            learner_pages[ON_TIME] = page
            timings["on-time submission"] = time.monotonic() - started

            # 3. The due date passes; learner two answers the first task and submits, late.
            time.sleep(1.5)  # the due date is whole seconds: at least a second after the first submission
            due = datetime.now(timezone.utc).replace(microsecond=0)
            time.sleep(1.5)
            context, page = log_in(browser, hub, LATE)
            assert nbgrader_commands(page) == {"open-assignment-list"}
            fetch_and_submit(page, first_answer, LATE)
            learner_pages[LATE] = page
            timings["late submission"] = time.monotonic() - started

            # 4. Collect, grade in the sandbox with the due date, release the feedback through the exchange.
            as_user(INSTRUCTOR, "nbgrader", "collect", ASSIGNMENT, env=hub.env)
            submitted = course / "submitted"
            for learner in LEARNERS:
                assert (submitted / learner / ASSIGNMENT / f"{NOTEBOOK}.ipynb").is_file()
                assert (submitted / learner / ASSIGNMENT / "timestamp.txt").is_file()
            grades = scratch / "private" / "grading"
            timings["make grade (its own duration)"] = make(
                "grade", f"COURSE={course_with_due_date(scratch, utc_text(due))}", f"SUBMISSIONS={submitted}",
                f"GRADES={grades}", "GRADE_ARGS=--quiet", env=hub.env)
            with open(grades / "grades.csv", newline="") as handle:
                rows = {row["student"]: row for row in csv.DictReader(handle)}
            on_time, late = rows[ON_TIME], rows[LATE]
            assert (float(on_time["score"]), float(on_time["max_score"]), float(on_time["late_penalty"])) == (10, 10, 0)
            assert "late" not in on_time["status"].split(";"), on_time
            assert "late" in late["status"].split(";"), late
            checks = [cell for cell in exercise.cells if cell.metadata.get("nbgrader", {}).get("grade")]
            first_points = float(checks[0].metadata["nbgrader"]["points"])
            assert float(late["late_penalty"]) == first_points / 2  # 50% per started day, of the first task's points
            assert float(late["score"]) == first_points / 2, late
            make("hub-feedback", f"GRADES={grades}", f"HUB_INSTRUCTOR={INSTRUCTOR}", f"HUB_EXCHANGE={hub.exchange}",
                 f"HUB_COURSE_ID={COURSE_ID}", env=hub.env)
            timings["feedback released"] = time.monotonic() - started

            # 5. Each learner fetches feedback in the Assignments tab and reads exactly their own page.
            feedback = {}
            for learner, other in ((ON_TIME, LATE), (LATE, ON_TIME)):
                text = fetch_feedback(learner_pages[learner], learner)
                own = (grades / "feedback" / learner / ASSIGNMENT / f"{NOTEBOOK}.html").read_text()
                theirs = (grades / "feedback" / other / ASSIGNMENT / f"{NOTEBOOK}.html").read_text()
                assert text == own and text != theirs
                feedback[learner] = text
            assert "(Score: 10.0 / 10.0)" in feedback[ON_TIME] and "Late submission penalty" not in feedback[ON_TIME]
            assert f"Late submission penalty (Score: -{first_points / 2:.1f})" in feedback[LATE]
            timings["feedback fetched"] = time.monotonic() - started

            # 6. Nothing of the other learner's, nor the solutions, through the hub...
            for learner, other in ((ON_TIME, LATE), (LATE, ON_TIME)):
                request = learner_pages[learner].context.request
                for path in (f"user/{other}/api/contents/{ASSIGNMENT}/{NOTEBOOK}.ipynb",
                             f"user/{other}/files/{ASSIGNMENT}/{NOTEBOOK}.ipynb", f"user/{other}/lab"):
                    response = request.get(hub.url(path), max_redirects=0)
                    assert response.status in (302, 403, 404), (learner, path, response.status)
                    if response.status == 302:  # to the hub's own pages, never to the other's server
                        assert f"/user/{other}/" not in response.headers.get("location", ""), response.headers
        finally:
            browser.close()

    # ...nor as their unix user (what their terminal and kernel run as).
    inbound = hub.exchange / COURSE_ID / "inbound"
    submissions = sorted(p.name for p in inbound.iterdir())
    assert len(submissions) == 2 and all(len(name.split("+")) == 4 for name in submissions)  # a random part each
    for learner, other in ((ON_TIME, LATE), (LATE, ON_TIME)):
        assert can_read(learner, home(learner) / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
        forbidden = [
            home(other) / ASSIGNMENT / f"{NOTEBOOK}.ipynb",
            home(other) / ASSIGNMENT / "feedback",
            course / "submitted" / other / ASSIGNMENT / f"{NOTEBOOK}.ipynb",
            course / "feedback" / other / ASSIGNMENT / f"{NOTEBOOK}.html",
            inbound,  # learners may write into it, never list it (nor guess the random part of a name)
            hub.exchange / COURSE_ID / "feedback",
            REPO_ROOT / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb",
            REPO_ROOT / "solutions",
            scratch / "private" / "grading" / "grades.csv",
        ]
        readable = [str(path) for path in forbidden if can_read(learner, path)]
        assert not readable, f"{learner} can read {readable}"
    assert can_read(ON_TIME, hub.exchange / COURSE_ID / "outbound" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    print("timings (s since the first login): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
