# Two commands matter: `make conformance` (the suite against the reference buildpack, with a
# report) and `make test` (the harness's own tests). Both set up everything they need first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STACK  ?= bookworm
STAMP  := $(VENV)/.installed

.PHONY: setup test test-all fidelity conformance lifecycle-compare mutants lint bench soak clean wheel

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

setup: $(STAMP)
	$(BIN)/bpconform setup --stack $(STACK)

# The harness's own tests: unit, platform self-tests, and the suite on the default app.
# Scenarios marked slow (e.g. the trixie stack) run in `make test-all`. Two passes (tests/conftest.py):
# the bulk on two workers, each module on one of them, the longest first; then the tests marked
# serial (limits, signals, timeouts, engine faults) alone. Both passes always run; either failing fails.
PYTEST_PARALLEL := -n 2 --dist loadscope --no-loadscope-reorder
test: setup
	$(BIN)/python -m pytest -q -m "not slow and not serial" $(PYTEST_PARALLEL); bulk=$$?; \
	$(BIN)/python -m pytest -q -m "not slow and serial"; alone=$$?; \
	test $$bulk -eq 0 && test $$alone -eq 0

# The lifecycle fidelity suite alone (also part of `make test`): fixture buildpacks re-expressing the
# lifecycle's acceptance and unit tests. Against a real lifecycle:
# `make fidelity FIDELITY_ARGS="--platform pack --builder IMAGE"`.
fidelity: setup
	$(BIN)/python -m pytest -q tests/fidelity $(FIDELITY_ARGS)

test-all: setup
	$(BIN)/bpconform setup --stack trixie
	$(BIN)/python -m pytest -q -m "not serial" $(PYTEST_PARALLEL); bulk=$$?; \
	$(BIN)/python -m pytest -q -m serial; alone=$$?; \
	test $$bulk -eq 0 && test $$alone -eq 0

conformance: setup
	$(BIN)/bpconform run --buildpack buildpack_under_test --stack $(STACK) --report-dir reports

# A lifecycle regression test: the suite with and without the lifecycle#1393 emulation, diffed.
lifecycle-compare: setup
	$(BIN)/bpconform run --buildpack buildpack_under_test --stack $(STACK) --report-dir reports/compare \
		--compare lifecycle-1393

# Known-bad variants of the reference buildpack (tests/mutants/): proves the suite fails each one and
# regenerates the kill matrix in reports/mutants.{json,md} and README.md. One suite run at a time.
mutants: setup
	$(BIN)/python -m tests.mutants.run

# The installable wheel (with the sample apps, the reference snapshots and buildpack) in dist/.
wheel: $(STAMP)
	$(BIN)/python -m pip wheel --no-deps --disable-pip-version-check -q -w dist .
	rm -rf build *.egg-info

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python -m conformance.bench

# Long reliability scenarios (tests/reliability, marked soak): the full suite three times in a row, and
# the engine restart runs in `make test` against a private dockerd of its own (never the shared one).
soak: setup
	$(BIN)/python -m pytest -q -m soak tests/reliability

# Removes only what this project created: its engine resources (labelled), its cache and venv.
clean:
	-test -x $(BIN)/bpconform && $(BIN)/bpconform clean --all --cache
	rm -rf $(VENV) reports dist build .pytest_cache .ruff_cache *.egg-info
