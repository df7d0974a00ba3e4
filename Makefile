# One-command set-up and entry points. Every target installs what it needs first:
# a virtual environment in .venv, torch==2.13.0 (the CPU wheel on this disk; an unpinned
# torch would pull a multi-GB CUDA build), then memmesh with all its extras.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.memmesh-installed
# CrewAI pins mcp<2 and pydantic<2.13, which the main environment's mcp extra and
# pydantic exclude: its adapter's tests run in an environment of their own (no torch:
# nothing they import needs it).
CREWAI_VENV ?= .venv-crewai
CREWAI_BIN := $(CREWAI_VENV)/bin
CREWAI_STAMP := $(CREWAI_VENV)/.memmesh-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test test-crewai lint typecheck bench simulate clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[semantic,ann,sim,bench,test,dev,langgraph,langmem,autogen,mcp]'
	touch $(STAMP)

demo: install
	$(BIN)/memmesh demo

test: install
	$(BIN)/python -m pytest -q
	$(MAKE) test-crewai

$(CREWAI_STAMP): pyproject.toml
	$(PYTHON) -m venv $(CREWAI_VENV)
	$(CREWAI_BIN)/python -m pip install --quiet --upgrade pip
	$(CREWAI_BIN)/python -m pip install --quiet -e '.[test,crewai]'
	touch $(CREWAI_STAMP)

test-crewai: $(CREWAI_STAMP)
	$(CREWAI_BIN)/python -m pytest -q tests/integrations/crewai

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy --strict crdt trust storage merge gossip semantic

bench: install
	$(BIN)/memmesh bench --quick

simulate: install
	$(BIN)/memmesh simulate spread --nodes 100 --out sim-out/spread

clean:
	rm -rf $(VENV) $(CREWAI_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
