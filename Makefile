# The two commands of the README: `make run` and `make test`. Operators script against these names.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test install install-dev system-deps check bench soak clean help

help:
	@echo "make run    - install into $(VENV) and bring the whole SOC up on sample data (Ctrl-C stops)"
	@echo "make test   - install what the tests need (Python and Debian packages) and run the whole suite"
	@echo "make bench  - run the benchmarks under bench/"
	@echo "make soak   - the 10-minute soak with injected faults (needs root for partition/disk faults)"

$(VENV)/.server: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[server]'
	touch $@

$(VENV)/.dev: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.server

install: $(VENV)/.server
install-dev: $(VENV)/.dev

run: install
	$(BIN)/soc demo

system-deps:
	bash scripts/install-system-deps.sh

test: install-dev system-deps
	bash scripts/check.sh

bench: install-dev system-deps
	bash scripts/bench.sh

soak: install-dev system-deps
	bash scripts/soak.sh

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
