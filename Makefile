# bpcli: every target sets itself up from nothing (a fresh clone, no hand-installed packages).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The PyTorch CPU wheel (a test oracle only) lies on this machine's disk.
WHEELS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PYTEST := $(BIN)/python -m pytest

.PHONY: install demo test test-all bench lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(WHEELS) -e '.[test]'
	touch $@

demo: install
	$(BIN)/python -m bpcli.demo

test: install
	$(PYTEST) -q -m "not slow"

test-all: install
	$(PYTEST) -q

bench: install
	$(BIN)/bpcli bench

lint: install
	$(BIN)/ruff check bpcli tests
	$(BIN)/ruff format --check bpcli tests

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache build dist
	find . -name __pycache__ -prune -exec rm -rf {} +
