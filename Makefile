# Switchyard: `make up` runs the local stack, `make test` runs every test. `make help` lists the rest.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help up test test-fast lint format bench sam-check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

up: $(STAMP) ## install, then start the local stack on http://127.0.0.1:8787 (Ctrl-C stops it)
	$(BIN)/switchyard-local up

test: $(STAMP) ## install, then lint (ruff check, ruff format --check), run the whole suite (unit, functional, local stack, e2e, infra) and the sam build check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest
	bash scripts/sam-build-check.sh

test-fast: $(STAMP) ## unit, adapter and functional tests only
	$(BIN)/pytest tests/unit tests/adapters tests/functional

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## ruff format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) ## run the benchmarks (they print their figures)
	$(BIN)/python benchmarks/sync_latency.py
	$(BIN)/python benchmarks/async_throughput.py
	$(BIN)/python benchmarks/metrics_overhead.py

sam-check: ## sam validate --lint and sam build (python3.13 arm64) in a separate venv
	bash scripts/sam-build-check.sh

clean: ## remove virtualenvs and build output
	rm -rf $(VENV) .venv-sam .aws-sam .switchyard
