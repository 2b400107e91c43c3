# newsbot: `make run` and `make test` do all set-up on a fresh machine with Python 3.11.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Reinstall when the dependencies change.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)

.PHONY: help install run index test test-fast lint bench bench-ingest eval clean

help:
	@echo "make run    - set up, build the index if needed, start the bot (DISCORD_TOKEN) or a terminal chat"
	@echo "make test   - set up and run every test"
	@echo "make index  - build or update the index from corpus/"
	@echo "make eval   - answer quality on ../shared/eval/news-dev (writes docs/EVAL.md)"
	@echo "make bench  - speed and scale benchmarks (writes docs/BENCHMARKS.md)"
	@echo "make bench-ingest - live news: freshness, ingest throughput, latency while ingesting (docs/INGEST.md)"
	@echo "make lint   - ruff"

# pip -qq: its errors still show; warnings about this machine's package mirrors do not.
$(STAMP):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "newsbot needs Python 3.11 or newer"'
	@echo "Setting up $(VENV) (the first time takes a few minutes)..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -qq --upgrade pip
	@# The CPU build of torch, pinned, before sentence-transformers (an unpinned torch pulls a CUDA build).
	@$(BIN)/python -m pip install -qq torch==2.13.0
	@$(BIN)/python -m pip install -qq -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)
	@echo "$(VENV) is ready."

install: $(STAMP)

run: install
	@HF_HUB_OFFLINE=1 $(BIN)/newsbot run

index: install
	HF_HUB_OFFLINE=1 $(BIN)/newsbot rebuild

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

test-fast: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not model and not e2e"

lint: install
	$(BIN)/ruff check index bot tests scripts

eval: install
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/eval_newsdev.py

bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/bench.py $(BENCH_ARGS)

bench-ingest: install
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/bench_ingest.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
