# atende — two commands on a fresh Debian 12 machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# The end-of-turn model (Smart Turn v3.2, in the pipecat-ai wheel): see scripts/fetch-turn-model.py.
TURN_MODEL := $(VENV)/share/atende/smart-turn-v3.2-cpu.onnx
# Debian packages: espeak-ng is the offline voice for languages Piper's bundled voice lacks;
# the rest are the real peers the end-to-end tests talk to (PostgreSQL: the storage tests
# run on it as well as on SQLite; Chromium: the dashboard's browser tests; Redis: what
# several nodes share).
RUN_DEBS  := espeak-ng libopus0
TEST_DEBS := espeak-ng libopus0 baresip-core kamailio kamailio-tls-modules sox postgresql iproute2 \
             chromium redis-server
# SIPp: the load generator of bench/sip_load.py (`make bench` only).
BENCH_DEBS := sip-tester

.PHONY: run test lint bench install install-test debs-run debs-test debs-bench clean

run: install
	$(VENV)/bin/atende serve

install: $(VENV)/.installed $(TURN_MODEL) debs-run

install-test: $(VENV)/.installed-test $(TURN_MODEL) debs-test

# Debian's own python3 needs the python3-venv package for this; pyenv builds do not.
$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV) || (rm -rf $(VENV) && sh scripts/ensure-debs.sh python3-venv \
		&& $(PYTHON) -m venv $(VENV))
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml $(VENV)/bin/python
	$(PIP) install --quiet -e '.[piper]'
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install --quiet -e '.[piper,dev]'
	touch $@

$(TURN_MODEL): scripts/fetch-turn-model.py $(VENV)/bin/python
	$(PY) scripts/fetch-turn-model.py $@

# Installs the Debian packages that are missing, when we are root; otherwise says what to install.
debs-run:
	@sh scripts/ensure-debs.sh $(RUN_DEBS)

debs-test:
	@sh scripts/ensure-debs.sh $(TEST_DEBS)

debs-bench:
	@sh scripts/ensure-debs.sh $(BENCH_DEBS)

# bench/ too: its stand-ins for providers and routers must keep up with the protocols
# they stand in for (two fell behind unseen, and failed only when the bench was run).
lint: install-test
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy src
	$(VENV)/bin/mypy bench

# In-process tests run numpy as `atende serve` does: one BLAS thread (see cli serve).
test: lint
	OPENBLAS_NUM_THREADS=1 $(VENV)/bin/pytest -q --durations=20

bench: install-test debs-bench
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
