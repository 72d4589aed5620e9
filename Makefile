# clinic-dm: the two commands a new developer needs are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
MODEL := models/clinic.tar.gz
RASA_INPUTS := config.yml domain.yml $(shell find data -name '*.yml' 2>/dev/null)
PYTHON310 = $(shell scripts/find-python310)

# Settings and their defaults live in clinic/settings.py (see README, "Configuration");
# the scripts read them from there.
export RASA_TELEMETRY_ENABLED ?= false
export PYTHONPATH := $(CURDIR)

.PHONY: help setup migrate db run serve simulate train test lint bench screenshots clean

help:
	@echo "make run    set up, train if needed, start the action server and rasa shell"
	@echo "make test   lint, unit and integration tests, data validation, rasa test"
	@echo "make serve  production pair: rasa server (Instagram channel) + action server"
	@echo "make simulate  chat as an Instagram user through the real channel and a fake Graph API"
	@echo "make train  train the model if data, domain or config changed"
	@echo "make bench  run the benchmarks under bench/"
	@echo "make screenshots  retake the staff console's screenshots in docs/console/"
	@echo "make lint   ruff"

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	@$(if $(PYTHON310),,$(error No Python 3.10 found (Rasa 3.6 needs exactly 3.10). Install it with `pyenv install 3.10.13` or your package manager's python3.10, then run make again))
	@test -x $(PY) || $(PYTHON310) -m venv $(VENV)
	$(PY) -m pip install --quiet pip==24.0
	@# pip byte-compiles one file at a time (about a minute of a fresh install); compileall
	@# does the same on every core. Files no Python 3 compiles (templates) are skipped.
	$(PY) -m pip install --quiet --no-compile -r requirements-dev.txt
	$(PY) -m compileall -qq -j 0 $(VENV)/lib >/dev/null || true
	@touch $@

# Train only when the data, the domain or the config changed. The rules decide every
# turn, so stories need no augmentation; library warnings are not printed.
$(MODEL): $(RASA_INPUTS) | $(VENV)/.installed
	. scripts/startup-env && \
		$(BIN)/rasa train --fixed-model-name clinic --out models --augmentation 0 --quiet

train: $(MODEL)

# The one place migrations run from (containers use the compose file's `migrate`).
migrate: setup
	$(PY) -m clinic init

db: migrate
	$(PY) -m clinic seed --demo --if-empty

run: setup db $(MODEL)
	scripts/run-shell

serve: setup $(MODEL)
	$(PY) -m clinic settings --check-production
	$(MAKE) --no-print-directory migrate
	scripts/serve

simulate: setup db $(MODEL)
	scripts/simulate

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# Validation and training each load Rasa on a core of their own.
	$(BIN)/rasa data validate --fail-on-warnings --quiet & validation=$$!; \
	$(MAKE) --no-print-directory train; trained=$$?; \
	wait $$validation && [ $$trained -eq 0 ]
	@# The test stories run beside pytest, whose server tests leave a core idle much of the
	@# time; their output follows pytest's, and either failing fails the target.
	@mkdir -p results
	scripts/with-settings $(BIN)/rasa test core --model $(MODEL) --stories tests/test_stories.yml \
		--fail-on-prediction-errors --out results --quiet >results/stories.log 2>&1 & \
	stories=$$!; $(BIN)/pytest -n 4 --dist loadfile; tests=$$?; \
	wait $$stories; stories=$$?; cat results/stories.log; \
	echo "test stories: $$([ $$stories -eq 0 ] && echo passed || echo FAILED)"; \
	[ $$tests -eq 0 ] && [ $$stories -eq 0 ]

# The browser tests take them; this keeps the ones the README shows.
screenshots: setup $(MODEL)
	CONSOLE_SCREENSHOTS=$(CURDIR)/docs/console $(BIN)/pytest tests/test_console_browser.py \
		tests/test_console_setup_browser.py -q

bench: setup $(MODEL)
	@for script in bench/[!_]*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf models results var/log
