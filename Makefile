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
# The SIP core, the media plane and the SIP channel compiled with mypyc
# (scripts/compile-native.py; the packages are atende.native.PACKAGES): the same code,
# a fifth to a quarter less of the event loop per call and per RTP call. Rebuilt
# whenever one of their sources changes; atende imports the sources instead while the
# build is missing or older than them.
NATIVE_SOURCES := $(filter-out %/__init__.py,$(wildcard src/atende/sip/*.py) \
                    $(wildcard src/atende/media/*.py) $(wildcard src/atende/channels/sip/*.py))
NATIVE := src/atende/native.json

.PHONY: run test lint bench install install-test debs-run debs-test debs-bench clean

run: install
	$(VENV)/bin/atende serve

install: $(VENV)/.installed $(TURN_MODEL) debs-run $(NATIVE)

install-test: $(VENV)/.installed-test $(TURN_MODEL) debs-test $(NATIVE)

# Debian's own python3 needs the python3-venv package for this; pyenv builds do not.
$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV) || (rm -rf $(VENV) && sh scripts/ensure-debs.sh python3-venv \
		&& $(PYTHON) -m venv $(VENV))
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml $(VENV)/bin/python
	$(PIP) install --quiet -e '.[piper,native]'
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install --quiet -e '.[piper,native,dev]'
	touch $@

# A C compiler, and Python's headers where this Python has none (Debian's own python3).
$(NATIVE): $(NATIVE_SOURCES) src/atende/native.py scripts/compile-native.py $(VENV)/.installed
	@sh scripts/ensure-debs.sh gcc
	@$(PY) -c 'import os, sys, sysconfig; \
		sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' \
		|| sh scripts/ensure-debs.sh python3-dev
	$(PY) scripts/compile-native.py

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
	-$(PY) scripts/compile-native.py --clean
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
