# Developer shortcuts; each runs what the README and .ci/run run.
.PHONY: help install test lint demo bench ci

help:  ## List the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

install:  ## Install the package with its test tools into the active environment
	pip install -e '.[test]'

test:  ## Run the test suite (services skip when absent)
	pytest

lint:  ## ruff (lint + format check), mypy and the layering contract
	ruff check . && ruff format --check . && mypy && lint-imports

demo:  ## Run the embedded end-to-end demo
	digest demo

bench:  ## Run the benchmarks
	python bench/demo.py

ci:  ## What CI runs, on this checkout
	bash .ci/run
