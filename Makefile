# Set-up and checks for a fresh machine: Python 3.11 and pip, nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Options go through DEMO_ARGS, e.g. make demo DEMO_ARGS="--cpo-port 9001 --emsp-port 9002"
DEMO_ARGS ?=

# Then the network demo: a Hub, two CPOs and two eMSPs (src/evroam/demo/network.py).
demo: install
	$(BIN)/evroam demo $(DEMO_ARGS)
	$(BIN)/python -m evroam.demo.network

# pytest-xdist workers: the suite mostly waits on sockets, subprocesses and
# databases, so 4 on a 2-core machine. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 4

test: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# HTTP figures of issue 9 against bare Starlette (needs wrk: apt-get install wrk),
# then pricing. Not a test. Options through BENCH_ARGS, e.g. BENCH_ARGS="--quick".
BENCH_ARGS ?=

bench: install
	$(BIN)/python bench/http.py $(BENCH_ARGS)
	$(BIN)/python bench/pricing.py

clean:
	rm -rf $(VENV) .interop-venv .pytest_cache .hypothesis src/*.egg-info
