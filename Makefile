# The course's commands. Each creates (or reuses) the virtual environment .venv and installs the pinned
# packages into it first, so a fresh machine needs nothing but Python 3.11 and make. The JAX test leg has
# an environment of its own, .venv-jax, with JAX and without TensorFlow.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
JAX_VENV ?= .venv-jax
JAX_INSTALLED := $(JAX_VENV)/.installed

.PHONY: help venv demo test test-tensorflow test-jax lock clean lab exercises grade sandbox review export images

COURSE_ASSIGNMENTS := 01-architecture 02-focal-loss 03-anchors 04-training

help:  ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[course]"
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

# Loopback only, a fresh token (or yours: LAB_TOKEN=...), the repository as the root folder. The token
# travels in JUPYTER_TOKEN, not on the command line where `ps` shows it. The venv's own kernelspecs take
# precedence over any in ~/.local (JUPYTER_PREFER_ENV_PATH), so the notebooks run in this environment.
# Jupyter refuses root unless told; containers often run as root, hence --allow-root there only.
lab: $(INSTALLED)  ## JupyterLab on the course (127.0.0.1, token printed; LAB_PORT=8888)
	@token="$${LAB_TOKEN:-$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(24))')}"; \
	echo "JupyterLab on the course: http://127.0.0.1:$(LAB_PORT)/lab?token=$$token"; \
	JUPYTER_TOKEN="$$token" JUPYTER_PREFER_ENV_PATH=1 exec $(BIN)/python -m jupyterlab \
		--ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) --ServerApp.port_retries=0 \
		--ServerApp.root_dir="$(CURDIR)" $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# nbgrader generate_assignment also records the assignments in the course's gradebook.db (not committed),
# so plain nbgrader commands (autograde, generate_feedback, export, formgrader) work from the course root;
# `autograder schedule` writes the due dates of nbgrader_config.py (c.Schedule.due) into it.
# nbgrader runs the `alembic` program from PATH when it makes a gradebook: this environment's is put first,
# so a fresh clone needs no activated environment.
exercises: $(INSTALLED)  ## Regenerate exercises/ and the course's gradebook.db from solutions/ (never edit exercises/)
	for a in $(COURSE_ASSIGNMENTS); do PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/nbgrader generate_assignment $$a --force || exit 1; done
	$(BIN)/python -m autograder schedule

SUBMISSIONS ?= submitted
GRADES ?= grading

# Autograde every submission in $(SUBMISSIONS) (nbgrader layout or an LMS export) into $(GRADES)/:
# grades.csv, gradebook.db, feedback/. Extra options (--assignment, --student, --jobs, ...): GRADE_ARGS="...".
# Kernels run in bubblewrap's sandbox (`make sandbox` installs it).
grade: $(INSTALLED)  ## Autograde a class: SUBMISSIONS=dir GRADES=dir (see README, Instructors)
	$(BIN)/python -m autograder grade --course . --submissions "$(SUBMISSIONS)" --out "$(GRADES)" $(GRADE_ARGS)

# nbgrader's formgrader on a grading folder (the class gradebook of `make grade`): review submissions, change
# scores and comments. Loopback only, with a token, like `make lab`; stop with Ctrl-C twice. Every page
# carries a Content-Security-Policy header (REVIEW_CSP in autograder/grading/markup.py: scripts, styles and requests
# only from the server itself, and MathJax's cdnjs; the formgrader's own inline scripts still need
# 'unsafe-inline'); learner markup is sanitised before it reaches a page (autograder/grading/markup.py).
review: $(INSTALLED)  ## The formgrader on a grading folder: GRADES=dir (127.0.0.1, token printed)
	@token="$${LAB_TOKEN:-$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(24))')}"; \
	settings="$$($(BIN)/python -c 'from autograder.grading.markup import review_settings; print(review_settings())')"; \
	echo "Formgrader on $(GRADES): http://127.0.0.1:$(LAB_PORT)/formgrader?token=$$token"; \
	cd "$(GRADES)" && JUPYTER_TOKEN="$$token" JUPYTER_PREFER_ENV_PATH=1 exec "$(abspath $(BIN))/python" -m jupyterlab \
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

lock: $(INSTALLED) $(JAX_INSTALLED)  ## Re-pin every installed package into requirements.lock and requirements-jax.lock
	{ sed -n '1,2p' requirements.lock; $(BIN)/python -m pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	{ sed -n '1,2p' requirements-jax.lock; $(JAX_VENV)/bin/python -m pip freeze --exclude-editable; } > requirements-jax.lock.new
	mv requirements-jax.lock.new requirements-jax.lock

clean:  ## Remove the environments and caches
	rm -rf $(VENV) $(JAX_VENV) .pytest_cache

# The results tables of README.md and docs/ from benchmarks/*.json (standard library only; --check compares).
.PHONY: tables
tables:  ## Regenerate the docs' results tables from benchmarks/*.json
	$(PYTHON) benchmarks/tables.py
