# expound: `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.expound-installed
MODELS := artifacts/models
MODEL_STAMP := $(MODELS)/.built

.PHONY: setup models proto run test lint typecheck bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

models: $(MODEL_STAMP)

$(MODEL_STAMP): $(STAMP) data/german_credit.csv models/training.py models/demo_schema.py
	$(BIN)/python -m expound.models.training --data data/german_credit.csv --out $(MODELS)
	touch $@

proto: $(STAMP)
	$(BIN)/python scripts/gen_proto.py

run: setup models
	$(BIN)/expound serve

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/python scripts/package_view.py
	$(BIN)/mypy

test: setup models lint typecheck
	scripts/ensure_postgres.sh
	$(BIN)/pytest

bench: setup models
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) artifacts var .pytest_cache .mypy_cache .ruff_cache
