# fsad: make train (install + train FreCT on the embedded synthetic data), make test (install + default tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -c constraints.txt

.PHONY: install train test test-full bench clean

$(BIN)/fsad-installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(PIP) -q -e '.[dev]'
	touch $@

install: $(BIN)/fsad-installed

train: install
	$(BIN)/python train.py

test: install
	$(BIN)/python -m pytest -q

test-full: install
	$(BIN)/python -m pytest -q -m ""

bench: install
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf logs outputs multirun .pytest_cache
