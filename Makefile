# Switchyard: `make up` runs the local stack, `make test` runs every test. `make help` lists the rest.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LLAMA_STAMP := $(VENV)/.llama-installed
# llama.cpp as the e2e tests need it: no multimodal library (LLAVA_BUILD), portable code instead of
# -march=native (the wheel pip caches stays good on another machine of the kind), no llamafile kernels.
# pip's wheel cache does not key on CMAKE_ARGS: after changing them, run `$(BIN)/pip cache remove llama_cpp_python`.
LLAMA_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_LLAMAFILE=OFF

CHROMIUM ?= /usr/bin/chromium

.PHONY: help up test test-fast lint format bench sam-check clean chromium

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The real model server of the e2e tests; `make up` does not need it. First time on a machine: ~4 min of
# compiling on 2 cores; after that pip installs the wheel from its cache in seconds.
$(LLAMA_STAMP): $(STAMP) pyproject.toml
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e '.[dev,llama]'
	touch $(LLAMA_STAMP)

up: $(STAMP) ## install, then start the local stack on http://127.0.0.1:8787 (Ctrl-C stops it)
	$(BIN)/switchyard-local up

# Debian's chromium for the browser tests (driven by Playwright through its executable path; Playwright's
# own browser download is never used). Installed only when missing; CI runs as root. Adds ~40 s on a
# clean machine (apt-get update included).
chromium: ## install Debian's chromium for the browser tests, if it is missing
	@if [ ! -x "$(CHROMIUM)" ]; then \
		echo "chromium: installing Debian's chromium for tests/browser"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; \
	fi

test: $(STAMP) $(LLAMA_STAMP) chromium ## install (with the llama.cpp model server and Debian's chromium), then lint (ruff check, ruff format --check), type-check (mypy), run the whole suite (unit, functional, local stack, e2e, browser, infra) and the sam build check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest
	bash scripts/sam-build-check.sh

test-fast: $(STAMP) ## unit, adapter and functional tests only
	$(BIN)/pytest tests/unit tests/adapters tests/functional

lint: $(STAMP) ## ruff lint and format check, mypy (strict on the layer and the Lambda entry points)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

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
	rm -rf $(VENV) .venv-sam .aws-sam .switchyard artifacts
