# Developer shortcuts; each runs what the README and .ci/run run.
.PHONY: help install test test-under-load lint demo bench ci

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

install:  ## Install the package with its test tools into the active environment
	pip install -e '.[test]'

test:  ## Run the test suite (services skip when absent)
	pytest

# Every core kept busy by stress-ng or, where it is missing, a Python loop per core whose processes end
# when their parent does; the load stops when pytest ends, and pytest's exit status is the target's.
BUSY_LOOP = import multiprocessing as mp, os, signal; \
	spin = lambda parent: all(iter(lambda: os.getppid() == parent, False)); \
	fork = mp.get_context("fork"); \
	workers = [fork.Process(target=spin, args=(os.getpid(),)) for _ in range(os.cpu_count() or 1)]; \
	[worker.start() for worker in workers]; signal.pause()

test-under-load:  ## The suite with services required, while every core is kept busy (issue 13)
	@if command -v stress-ng >/dev/null; then stress-ng --cpu 0 --quiet & \
	else python -c '$(BUSY_LOOP)' & fi; \
	load=$$!; trap 'kill $$load 2>/dev/null' EXIT; \
	DIGEST_REQUIRE_SERVICES=1 python -m pytest $(PYTEST_ARGS)

lint:  ## ruff (lint + format check), mypy and the layering contract
	ruff check . && ruff format --check . && mypy && lint-imports

demo:  ## Run the embedded end-to-end demo
	digest demo

bench:  ## Run the benchmarks
	python bench/demo.py

ci:  ## What CI runs, on this checkout
	bash .ci/run
