# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# KERAS_BACKEND: keras (a test reference) must run on torch, never on TensorFlow.
export KERAS_BACKEND := torch
# Spinning OpenMP threads starve each other when the 2 cores are shared (pytest -n 2, benchmarks
# beside other work): passive waiting keeps timings and test run times stable.
export OMP_WAIT_POLICY := PASSIVE

.PHONY: demo test test-all lint bench clean chromium

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m effnet demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

# tests/test_serve_browser.py drives Debian's chromium (never `playwright install`, which downloads a browser).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	test -x /usr/bin/chromium || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium)

# One OpenMP thread per pytest worker: two workers on two cores, no oversubscription.
test: $(STAMP) lint chromium
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile -q

test-all: $(STAMP) lint chromium
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile -q -m ''

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
