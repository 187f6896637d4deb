# The course's commands. Each creates (or reuses) the virtual environment .venv and installs the pinned
# packages into it first, so a fresh machine needs nothing but Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: help venv demo test lock clean

help:  ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e .
	touch $@

venv: $(INSTALLED)  ## Create .venv with the pinned packages

demo: $(INSTALLED)  ## The reference solution end to end on the embedded data
	$(BIN)/python -m retinanet demo

test: $(INSTALLED)  ## The whole test suite
	$(BIN)/python -m pytest

lock: $(INSTALLED)  ## Re-pin every installed package into requirements.lock
	{ sed -n '1,2p' requirements.lock; $(BIN)/python -m pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:  ## Remove the environment and caches
	rm -rf $(VENV) .pytest_cache
