# The course's commands. Each creates (or reuses) the virtual environment .venv and installs the pinned
# packages into it first, so a fresh machine needs nothing but Python 3.11 and make. The JAX test leg has
# an environment of its own, .venv-jax, with JAX and without TensorFlow. To use an environment of your own
# (an activated conda env made from environment.yml, or a virtualenv), name it: make VENV="$CONDA_PREFIX" ...
# (or VENV="$VIRTUAL_ENV"); the pinned packages are installed into it the first time, like into .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
JAX_VENV ?= .venv-jax
JAX_INSTALLED := $(JAX_VENV)/.installed
HUB_INSTALLED := $(VENV)/.hub-installed
HUB_PROXY := .hub/node_modules/.bin/configurable-http-proxy

.PHONY: help venv demo test test-tensorflow test-jax lock clean lab lab-instructor exercises release environment grade sandbox \
	review export images hub hub-install hub-feedback test-hub

COURSE_ASSIGNMENTS := 01-architecture 02-focal-loss 03-anchors 04-training

help:  ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' \
		'{name[NR] = $$1; text[NR] = $$2; if (length($$1) > width) width = length($$1)} \
		END {for (i = 1; i <= NR; i++) printf "  make %-" width "s  %s\n", name[i], text[i]}'

$(INSTALLED): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[course]"
	touch $@

# JupyterHub (the `hub` extra) into the course's environment, and its proxy from npm into .hub/ (the versions of
# hub/package-lock.json): both at make time, so `make hub` fetches nothing when it runs.
$(HUB_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[course,hub]"
	touch $@

$(HUB_PROXY): hub/package.json hub/package-lock.json
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || \
		{ echo "configurable-http-proxy 5 needs Node.js 20 or newer (node --version: $$(node --version))" >&2; exit 1; }
	mkdir -p .hub
	cp hub/package.json hub/package-lock.json .hub/
	cd .hub && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(JAX_INSTALLED): pyproject.toml requirements-jax.lock
	test -x $(JAX_VENV)/bin/python || $(PYTHON) -m venv $(JAX_VENV)
	$(JAX_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(JAX_VENV)/bin/python -m pip install --quiet -c requirements-jax.lock -e ".[jax]"
	touch $@

venv: $(INSTALLED)  ## Create .venv with the pinned packages

demo: $(INSTALLED)  ## The reference solution end to end on the embedded data (outputs in runs/demo/)
	$(BIN)/python -m retinanet demo

test: test-tensorflow test-jax  ## The whole test suite: the TensorFlow leg, then the JAX leg

test-tensorflow: $(INSTALLED)  ## Every test on the TensorFlow backend (the course's)
	$(BIN)/python -m pytest

test-jax: $(JAX_INSTALLED)  ## The backend-neutral tests on JAX, in an environment without TensorFlow
	KERAS_BACKEND=jax $(JAX_VENV)/bin/python -m pytest

LAB_PORT ?= 8888
RELEASE ?= release

# What learners get (autograder/release.py): RELEASE/ and RELEASE.zip hold the exercises, tests.py, the packages
# they import (course, course_checks, retinanet), requirements.txt (the lock), a README and a Makefile for
# learners, and .jupyter/ (jupyter-config/learner: nbgrader's instructor extensions and the news prompt off);
# no solutions/, hidden tests or grader. Rebuilt from scratch: notebooks edited in RELEASE/ are replaced.
release: $(INSTALLED)  ## The learner release: RELEASE/ and RELEASE.zip (exercises, checks, no solutions)
	$(BIN)/python -m autograder release --course . --out "$(RELEASE)" --zip "$(RELEASE).zip"

# JupyterLab as learners get it: the release folder (built when missing; `make release` rebuilds it), served by
# the release's own Makefile (`make lab` there) with this environment. Loopback only, a fresh token (or yours:
# LAB_TOKEN=...) passed in JUPYTER_TOKEN, not on the command line where `ps` shows it; the venv's kernelspecs
# first (JUPYTER_PREFER_ENV_PATH); --allow-root only as root (containers).
lab: $(INSTALLED)  ## JupyterLab on the learner release (127.0.0.1, token printed; LAB_PORT=8888)
	@test -d "$(RELEASE)" || $(MAKE) --no-print-directory release
	@$(MAKE) --no-print-directory -C "$(RELEASE)" lab VENV="$(abspath $(VENV))" SETUP= LAB_PORT=$(LAB_PORT)

# The instructor's JupyterLab: the repository as the root folder, nbgrader's extensions on (formgrader, Create
# Assignment), JupyterLab's news prompt off (jupyter-config/instructor).
lab-instructor: $(INSTALLED)  ## JupyterLab on the repository, with nbgrader's instructor tools
	@token="$${LAB_TOKEN:-$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(24))')}"; \
	echo "JupyterLab on the course: http://127.0.0.1:$(LAB_PORT)/lab?token=$$token"; \
	JUPYTER_TOKEN="$$token" JUPYTER_PREFER_ENV_PATH=1 JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter-config/instructor" \
		exec $(BIN)/python -m jupyterlab \
		--ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) --ServerApp.port_retries=0 \
		--ServerApp.root_dir="$(CURDIR)" $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# JupyterHub for the course on this machine (hub/: README, Run the course on JupyterHub): as root, it creates
# the users, nbgrader's exchange and the instructor's course folder (hub/setup.sh), then runs the hub on
# 127.0.0.1:$(HUB_PORT). HUB_RELEASE is the folder of the learner release the instructor releases from.
HUB_PORT ?= 8000
HUB_INSTRUCTOR ?= instructor
HUB_LEARNERS ?= learner1 learner2
HUB_EXCHANGE ?= /srv/nbgrader/exchange
HUB_COURSE_ID ?= retinanet
HUB_RELEASE ?= exercises
HUB_AUTH ?= pam
# useradd, userdel, chpasswd and runuser live in /usr/sbin, which a non-login root shell may lack on PATH.
HUB_ENV = PATH="$$PATH:/usr/sbin:/sbin" HUB_VENV="$(CURDIR)/$(VENV)" HUB_PORT=$(HUB_PORT) HUB_INSTRUCTOR=$(HUB_INSTRUCTOR) \
	HUB_LEARNERS="$(HUB_LEARNERS)" HUB_EXCHANGE="$(HUB_EXCHANGE)" HUB_COURSE_ID=$(HUB_COURSE_ID) \
	HUB_RELEASE="$(HUB_RELEASE)" HUB_ASSIGNMENTS="$(COURSE_ASSIGNMENTS)" HUB_AUTH=$(HUB_AUTH)

hub-install: $(HUB_INSTALLED) $(HUB_PROXY)

hub: hub-install  ## JupyterHub for the course on this machine, as root (127.0.0.1:8000; see README)
	$(HUB_ENV) hub/setup.sh
	mkdir -p -m 0700 .hub/state
	cd .hub/state && $(HUB_ENV) HUB_STATE="$(CURDIR)/.hub/state" exec "$(CURDIR)/$(BIN)/jupyterhub" -f "$(CURDIR)/hub/jupyterhub_config.py"

# The grader's feedback (GRADES=dir of `make grade`) to the learners through the exchange (hub/feedback.sh).
hub-feedback:  ## Release the feedback of GRADES=dir to the hub's learners (as root; see docs/instructors.md)
	$(HUB_ENV) GRADES="$(GRADES)" hub/feedback.sh

# The hub end to end in Chromium (test_suite/hub/test_hub.py, as root: it makes its own users and exchange).
test-hub: hub-install  ## The JupyterHub end-to-end test (release, fetch, submit, collect, grade, feedback)
	PATH="$$PATH:/usr/sbin:/sbin" COURSE_HUB_TEST=1 $(BIN)/python -m pytest test_suite/hub/test_hub.py

# nbgrader generate_assignment runs in a temporary copy of the course (autograder/release.py): exercises/ and the
# course's gradebook.db are replaced only when every assignment was generated, so a failing nbgrader changes no
# committed file. The gradebook (not committed) records the assignments, so plain nbgrader commands
# (autograde, generate_feedback, export, formgrader) work from the course root; `autograder schedule` writes
# the due dates of nbgrader_config.py (c.Schedule.due) into it. Nothing needs the environment on PATH.
exercises: $(INSTALLED)  ## Regenerate exercises/ and the course's gradebook.db from solutions/ (never edit exercises/)
	$(BIN)/python -m autograder exercises --course . $(COURSE_ASSIGNMENTS)
	$(BIN)/python -m autograder schedule

SUBMISSIONS ?= submitted
COURSE ?= .
GRADES ?= grading

# Autograde every submission in $(SUBMISSIONS) (nbgrader layout or an LMS export) into $(GRADES)/ with the course of
# $(COURSE) (this repository; a copy with other due dates, say):
# grades.csv, gradebook.db, feedback/. Extra options (--assignment, --student, --jobs, ...): GRADE_ARGS="...".
# Kernels run in bubblewrap's sandbox (`make sandbox` installs it).
grade: $(INSTALLED)  ## Autograde a class: SUBMISSIONS=dir GRADES=dir (see README, Instructors)
	$(BIN)/python -m autograder grade --course "$(COURSE)" --submissions "$(SUBMISSIONS)" --out "$(GRADES)" $(GRADE_ARGS)

# nbgrader's formgrader on a grading folder (the class gradebook of `make grade`): review submissions, change
# scores and comments. Loopback only, with a token, like `make lab`; stop with Ctrl-C twice. Every page
# carries a Content-Security-Policy header (REVIEW_CSP in autograder/grading/markup.py: scripts, styles and requests
# only from the server itself, and MathJax's cdnjs; the formgrader's own inline scripts still need
# 'unsafe-inline'); learner markup is sanitised before it reaches a page (autograder/grading/markup.py).
review: $(INSTALLED)  ## The formgrader on a grading folder: GRADES=dir (127.0.0.1, token printed)
	@test -f "$(GRADES)/gradebook.db" || { echo "make review: $(GRADES) is not a grading folder (no gradebook.db): \
	grade into it first (make grade GRADES=$(GRADES)) or name one: make review GRADES=dir" >&2; exit 2; }
	@token="$${LAB_TOKEN:-$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(24))')}"; \
	settings="$$($(BIN)/python -c 'from autograder.grading.markup import review_settings; print(review_settings())')"; \
	echo "Formgrader on $(GRADES): http://127.0.0.1:$(LAB_PORT)/formgrader?token=$$token"; \
	cd "$(GRADES)" && JUPYTER_TOKEN="$$token" JUPYTER_PREFER_ENV_PATH=1 \
		JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter-config/instructor" exec "$(abspath $(BIN))/python" -m jupyterlab \
		--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) --ServerApp.port_retries=0 \
		--ServerApp.root_dir=. "--ServerApp.tornado_settings=$$settings" $$([ "$$(id -u)" = 0 ] && echo --allow-root)

export: $(INSTALLED)  ## Grades and feedback for Canvas, Moodle and learners: GRADES=dir (see README)
	$(BIN)/python -m autograder export --out "$(GRADES)" $(EXPORT_ARGS)

# The grading sandbox is Debian's bubblewrap package (apt needs root; skipped when bwrap is there).
sandbox:  ## Install bubblewrap, the grading sandbox (Debian/Ubuntu, as root)
	@command -v bwrap >/dev/null || { apt-get update && apt-get install -y bubblewrap; }
	@bwrap --version

# The README's screenshots come from the browser tests; a plain test run writes them to a temporary folder.
# The committed pictures change only here: `make demo` draws into runs/demo/, the browser tests into a
# temporary folder.
images: $(INSTALLED)  ## Refresh the README's pictures in images/ (a fresh demo run; JupyterLab and formgrader in Chromium)
	$(BIN)/python -m retinanet demo --picture images/demo_detections.png
	COURSE_SCREENSHOTS="$(CURDIR)/images" $(BIN)/python -m pytest test_suite/course/test_browser.py test_suite/grading/test_formgrader.py

lock: $(HUB_INSTALLED) $(JAX_INSTALLED)  ## Re-pin every installed package into requirements.lock and requirements-jax.lock
	{ sed -n '1,2p' requirements.lock; $(BIN)/python -m pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	{ sed -n '1,2p' requirements-jax.lock; $(JAX_VENV)/bin/python -m pip freeze --exclude-editable; } > requirements-jax.lock.new
	mv requirements-jax.lock.new requirements-jax.lock
	$(PYTHON) .ci/environment.py

# environment.yml for conda: Python 3.11 and, through pip, every package of requirements.lock at its version
# (standard library only; `--check` says whether the two agree, as test_suite/project/test_environment.py does).
environment:  ## Regenerate environment.yml from requirements.lock (every package pinned)
	$(PYTHON) .ci/environment.py

clean:  ## Remove the environments and caches
	rm -rf $(VENV) $(JAX_VENV) .hub .pytest_cache

# Every machine-made mutant of the reference solution given to its check as a learner's answer
# (benchmarks/mutation.py; a few minutes on 2 cores); CI runs a seeded sample (test_suite/checks/test_mutants.py).
.PHONY: mutants
mutants: $(INSTALLED)  ## Run every mutant through its check → benchmarks/mutation.json, then make tables
	$(BIN)/python benchmarks/mutation.py --jobs 2
	$(BIN)/python benchmarks/tables.py

# The results tables of README.md and docs/ from benchmarks/*.json (standard library only; --check compares).
.PHONY: tables
tables:  ## Regenerate the docs' results tables from benchmarks/*.json
	$(PYTHON) benchmarks/tables.py
