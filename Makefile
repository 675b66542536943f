# Shortcuts for the README's commands; each only calls dev.py, which sets up .venv first.
# Extra arguments: make run ARGS="--no-flower --concurrency 2", make test ARGS="-k sqlite".
.PHONY: run test lint bench

PYTHON ?= python3

run:  ## the whole stack: broker, API, worker, Beat, Flower (Ctrl-C stops all)
	$(PYTHON) dev.py up $(ARGS)

test:  ## ruff, mypy and the test suite
	$(PYTHON) dev.py test $(ARGS)

lint:  ## ruff and mypy only
	$(PYTHON) dev.py lint

bench:  ## the benchmark
	$(PYTHON) dev.py bench $(ARGS)
