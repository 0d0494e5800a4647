# The two commands of the README's quick start are `make demo` and `make test`; each creates the
# virtualenv when it is missing, so a fresh machine needs only Python >= 3.11 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WAREHOUSE ?= demo-warehouse

.PHONY: demo test check lint typecheck unit bench sample clean

$(STAMP): pyproject.toml setup.py pipeline/parse/_columns.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/agenttrail demo --warehouse $(WAREHOUSE)

test: check unit

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests bench sample_logs
	$(BIN)/ruff format --check pipeline

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/classify.py
	$(BIN)/python bench/queries.py

sample: $(STAMP)
	$(BIN)/python sample_logs/generate.py

clean:
	rm -rf $(VENV) $(WAREHOUSE) build *.egg-info
