"""Manual review in nbgrader's formgrader, in a real (headless) browser, on a class graded by `make grade`.

`make grade` grades two submissions of 01-architecture (a correct one and the untouched exercise);
`make review` serves the grading folder on a loopback port with a token; Debian's Chromium, driven by
Playwright as in test_browser.py, opens the formgrader's list of submissions, opens one, gives its
failing FPN check 2 of 3 points by hand, and `make export` then carries that score into grades.csv and
the Canvas export. Screenshots go to a temporary folder, or to ``$COURSE_SCREENSHOTS`` (`make images`
sets it to images/ to refresh the README's pictures).
"""

import csv
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import nbformat
import pytest
from nbgrader.api import Gradebook

from test_browser import CHROMIUM, CHROMIUM_FLAGS, free_loopback_port, screenshot_folder
from test_grading_course import ASSIGNMENT, NOTEBOOK, REPOSITORY, completed_exercise

SERVER_START_S = 90
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no browser: /usr/bin/chromium is missing (install Debian's package: apt-get install chromium; "
    ".ci/run does)",
)


def make(*arguments, **kwargs):
    return subprocess.run(["make", "--no-print-directory", *arguments], cwd=REPOSITORY, capture_output=True,
                          text=True, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def grading(tmp_path_factory):
    """The class folder `make grade` writes for alice (all correct) and bob (the untouched exercise)."""
    base = tmp_path_factory.mktemp("formgrader")
    exercise, completed = completed_exercise(ASSIGNMENT, NOTEBOOK)
    for student, nb in (("alice", completed), ("bob", exercise)):
        folder = base / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, str(folder / (NOTEBOOK + ".ipynb")))
    grades = base / "grading"
    result = make("grade", f"SUBMISSIONS={base / 'submitted'}", f"GRADES={grades}",
                  f"GRADE_ARGS=--assignment {ASSIGNMENT} --quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    return base, grades


class Review:
    """`make review` on the grading folder: JupyterLab with nbgrader's formgrader, loopback and a token."""

    def __init__(self, grades, home):
        self.port, self.token = free_loopback_port(), os.urandom(24).hex()
        environment = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"),
                           JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_DATA_DIR=str(home / "data"))
        self.log_path = home / "review.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "review", f"GRADES={grades}", f"LAB_PORT={self.port}",
             f"LAB_TOKEN={self.token}"], cwd=REPOSITORY, env=environment, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}/{path}"

    def wait_until_ready(self):
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(self.url(f"api/status?token={self.token}"), timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)  # polling a server that is starting
        raise AssertionError(f"`make review` did not answer; its log ends:\n{self.log_path.read_text()[-3000:]}")

    def stop(self):
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


def test_review_a_submission_and_adjust_a_score_in_the_formgrader(grading, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    base, grades = grading
    screenshots = screenshot_folder(tmp_path)
    with Gradebook("sqlite:///" + str(grades / "gradebook.db")) as gb:
        bob = gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, "bob").id
    (tmp_path / "home").mkdir()
    review = Review(grades, tmp_path / "home")
    try:
        review.wait_until_ready()
        with pytest.raises(urllib.error.HTTPError, match="403"):  # the token is required
            urllib.request.urlopen(review.url("api/status"), timeout=10)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
                args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 900})
            try:
                page = browser.new_page()
                page.set_default_timeout(60_000)
                page.goto(review.url(f"formgrader?token={review.token}"))  # logs in: a cookie for the API calls
                page.goto(review.url(f"formgrader/gradebook/{ASSIGNMENT}/{NOTEBOOK}"))
                rows = page.locator("table tbody tr")
                expect(rows).to_have_count(2)
                expect(rows.filter(has_text="10 / 10")).to_have_count(1)  # alice (anonymised until asked)
                page.get_by_text("Show All Names").click()
                page.screenshot(path=screenshots / "formgrader-submissions.png")

                with page.expect_response(lambda r: "/formgrader/api/comments" in r.url):  # the page's last load
                    page.locator(f'a[href$="/formgrader/submissions/{bob}"]:visible').click()
                page.wait_for_load_state("networkidle")  # the score boxes are bound to the loaded grades
                score = page.locator("#check_fpn")  # the score box of bob's failing FPN check (3 points)
                expect(score).to_be_visible()
                score.scroll_into_view_if_needed()
                with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url
                                          and r.request.method == "PUT") as saved:
                    score.fill("2")
                    score.press("Enter")
                assert saved.value.status == 200
                expect(score).to_have_value("2")
                page.screenshot(path=screenshots / "formgrader-review.png")
            finally:
                browser.close()
    finally:
        review.stop()
    with Gradebook("sqlite:///" + str(grades / "gradebook.db")) as gb:
        grade = gb.find_grade("check_fpn", NOTEBOOK, ASSIGNMENT, "bob")
        assert (grade.auto_score, grade.manual_score) == (0, 2)
    result = make("export", f"GRADES={grades}")
    assert result.returncode == 0, result.stderr[-2000:]
    with open(grades / "grades.csv", newline="") as handle:
        scores = {row["student"]: row["score"] for row in csv.DictReader(handle)}
    assert scores == {"alice": "10", "bob": "2"}
    with open(grades / "exports" / "canvas.csv", newline="") as handle:
        canvas = {row[3]: row[5] for row in list(csv.reader(handle))[2:]}
    assert canvas == {"alice": "10", "bob": "2"}
