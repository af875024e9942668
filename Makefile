# bpcli: every target sets itself up from nothing (a fresh clone, no hand-installed packages).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The PyTorch CPU wheel (a test oracle only) lies on this machine's disk.
WHEELS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PYTEST := $(BIN)/python -m pytest
EXTRAS := plugins/bpcli-extras
EXTRAS_SRC := $(shell find $(EXTRAS)/bpcli_extras $(EXTRAS)/pyproject.toml -type f -name '*.py' -o -name pyproject.toml 2>/dev/null)

.PHONY: install demo test test-all bench onnx-conformance docs lint clean diagnostics-corpus

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(EXTRAS_SRC)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(WHEELS) -e '.[test]'
	# The example third-party plugin, installed as a user would install one.
	$(BIN)/python -m pip install -q --force-reinstall --no-deps ./$(EXTRAS)
	touch $@

demo: install
	$(BIN)/bpcli train models/mlp-digits.toml

# The plugin's tests run in their own pytest process: once it is imported its op is in the
# registry, and the engine's completeness test covers only bpcli's own ops anyway.
test: install
	$(PYTEST) -q -m "not slow" tests
	$(PYTEST) -q $(EXTRAS)/tests

test-all: install
	$(PYTEST) -q tests
	$(PYTEST) -q $(EXTRAS)/tests

bench: install
	$(BIN)/bpcli bench

# The ONNX project's own backend test suite, run through bpcli.onnx.conformance.backend.
onnx-conformance: install
	$(BIN)/python -m bpcli.onnx.conformance.suite

# The generated reference pages (tests/test_docs.py fails when they are stale).
docs: install
	$(BIN)/python scripts/make_docs.py

lint: install
	$(BIN)/ruff check bpcli tests scripts $(EXTRAS)
	$(BIN)/ruff format --check bpcli tests scripts $(EXTRAS)

# Gradient diagnostics against their labelled corpus (bench/diagnostics): a table of runs,
# precision/recall per flag kind, threshold margins and the suggested fixes tried.
diagnostics-corpus: install
	$(BIN)/python bench/diagnostics/run.py --try-fix

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache build dist
	find . -name __pycache__ -prune -exec rm -rf {} +
