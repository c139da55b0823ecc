# Two commands matter: `make conformance` (the suite against the reference buildpack, with a
# report) and `make test` (the harness's own tests). Both set up everything they need first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STACK  ?= bookworm
STAMP  := $(VENV)/.installed

.PHONY: setup test conformance lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

setup: $(STAMP)
	$(BIN)/bpconform setup --stack $(STACK)

test: setup
	$(BIN)/python -m pytest -q

conformance: setup
	$(BIN)/bpconform run --buildpack buildpack_under_test --stack $(STACK) --report-dir reports

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python -m conformance.bench

# Removes only what this project created: its engine resources (labelled), its cache and venv.
clean:
	-test -x $(BIN)/bpconform && $(BIN)/bpconform clean --all --cache
	rm -rf $(VENV) reports .pytest_cache .ruff_cache *.egg-info
