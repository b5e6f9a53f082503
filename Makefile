# expound: `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.expound-installed
MODELS := artifacts/models
MODEL_STAMP := $(MODELS)/.built
# The CPU build of torch lies on disk here; without it pip would fetch a CUDA build.
WHEELS ?= /opt/wheels
FIND_LINKS := $(if $(wildcard $(WHEELS)/torch-*.whl),--find-links $(WHEELS),)

VLLM_STAMP := .venv-vllm/.expound-ready

.PHONY: setup models proto vllm run serve check test lint typecheck bench eval clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check $(FIND_LINKS) -e '.[server,dev]'
	touch $@

models: $(MODEL_STAMP)

$(MODEL_STAMP): $(STAMP) data/german_credit.csv expound/models/training.py expound/models/demo_schema.py
	$(BIN)/python -m expound.models.training --data data/german_credit.csv --out $(MODELS)
	touch $@

# The embedded LLM: vLLM's CPU build in its own venv, Gemma 3 270M converted once to
# safetensors under ~/.cache/expound (reused by later runs).
vllm: $(VLLM_STAMP)
	.venv-vllm/bin/python scripts/convert_gguf.py

$(VLLM_STAMP): scripts/vllm_env.sh
	scripts/vllm_env.sh

proto: $(STAMP)
	$(BIN)/python scripts/gen_proto.py

run: setup models vllm
	scripts/with_vllm.sh $(BIN)/expound serve

# The gRPC service alone, against an LLM already running at EXPOUND_LLM_BASE_URL.
serve: setup models
	$(BIN)/expound serve

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# The edit-test loop: lint, types and the unit tier (fakes, SQLite, loopback gRPC; no vLLM,
# no PostgreSQL, no crash loops).
check: setup lint typecheck
	scripts/ensure_pango.sh
	$(BIN)/pytest -q tests/unit -m "not slow"

# Everything, as CI runs it: the unit tier plus the integration tier (real vLLM, real
# PostgreSQL, SIGKILL crash loops).
test: setup models vllm lint typecheck
	scripts/ensure_postgres.sh
	scripts/ensure_pango.sh
	scripts/ensure_chromium.sh
	$(BIN)/pytest

# SECTIONS="overload auth" runs only those sections (the others stay in latest.json).
# The scale section's replica and append figures need PostgreSQL: started here as for
# `make test`, so they are measured and not skipped.
bench: setup models vllm
	scripts/ensure_postgres.sh
	scripts/with_vllm.sh $(BIN)/python -m bench.run $(SECTIONS)

# Faithfulness of drafted explanations and the verifier's mutation suite, against the LLM
# at EXPOUND_LLM_BASE_URL if it answers, else the embedded vLLM, started for the run.
eval: setup models vllm
	scripts/with_vllm.sh $(BIN)/python -m bench.eval

clean:
	rm -rf $(VENV) artifacts var .pytest_cache .mypy_cache .ruff_cache
