# Ferry's entry points. `make run` and `make test` are the README's contract:
# each creates .venv and installs what it needs on first use.
SHELL := /bin/bash
# The interpreter and its venv. Builds of one CPython differ in speed (docs/performance.md):
# `make bench PYTHON=/usr/bin/python3.11 VENV=.venv-system` measures another one.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# Reinstall when the dependency list changes.
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint typecheck unit protos bench soak clean

# Hypothesis and the simulator's sweep rotate their seeds daily; set it to replay a run.
FERRY_TEST_SEED ?= $(shell date +%Y%m%d)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Ferry needs Python >= 3.11, found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# The agent on the demo robot (fake sensor, arm, camera and this machine's metrics),
# capturing into ~/.ferry/capture and syncing to a local `ferry cloud` (store in
# ~/.ferry/cloud) until Ctrl-C; `ferry status` shows it working.
run: $(STAMP)
	$(BIN)/python scripts/run_demo.py

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q --hypothesis-seed=$(FERRY_TEST_SEED)

protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

# Benchmarks print figures (docs/performance.md records them); never run by `make test`.
# `make bench`: every metric of issue 8 once, each reference beside Ferry, one table.
# rsync (the sync reference) comes from Debian; without it its row says so.
bench: $(STAMP)
	@command -v rsync >/dev/null || (export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y rsync || (apt-get update && apt-get install -y rsync)) >/dev/null 2>&1 \
		|| echo "bench: rsync could not be installed; its row will say so"
	$(BIN)/python -m bench

# The older per-module benchmarks, each with more rows and options than the table.
.PHONY: bench-detail
bench-detail: $(STAMP)
	$(BIN)/python -m bench.codec
	$(BIN)/python -m bench.trio_costs
	$(BIN)/python -m bench.capture
	$(BIN)/python -m bench.binary_capture
	$(BIN)/python -m bench.cloud
	$(BIN)/python -m bench.ingest_stages
	$(BIN)/python -m bench.pagecache
	$(BIN)/python -m bench.sync
	$(BIN)/python -m bench.resume
	$(BIN)/python -m bench.agent
	$(BIN)/python -m bench.sim
	$(BIN)/python -m bench.sim_breakdown

# The long simulation: a sweep of 24-hour days, and every planted bug hunted over up to
# 1,000 seeds (issue 7). Prints its figures; exits non-zero on any violation.
soak: $(STAMP)
	$(BIN)/python -m sim.soak

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
