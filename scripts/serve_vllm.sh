#!/usr/bin/env bash
# Run the embedded vLLM CPU server in the foreground (OpenAI-compatible API on loopback).
#
#   scripts/vllm_env.sh && .venv-vllm/bin/python scripts/convert_gguf.py   # once
#   scripts/serve_vllm.sh [extra vLLM args...]
#
# Environment (all optional):
#   PORT                    listen port (default 8000); HOST (default 127.0.0.1)
#   VLLM_MODEL_DIR          converted model folder
#                           (default ${XDG_CACHE_HOME:-$HOME/.cache}/expound/models/gemma-3-270m)
#   VLLM_SERVED_NAME        model name clients send (default gemma-3-270m)
#   VLLM_MAX_MODEL_LEN      context length (default 4096)
#   VLLM_MAX_NUM_SEQS       max concurrent sequences (default 16; n counts per sequence)
#   VLLM_CPU_KVCACHE_SPACE  KV cache GiB (default 2; vLLM CPU refuses to start without it)
#   VLLM_DTYPE              auto (bfloat16 from config) | float32
#   VLLM_VENV               virtualenv (default <repo>/.venv-vllm)
#   VLLM_CHAT_TEMPLATE      chat template (Jinja) for /v1/chat/completions; default: the
#                           model's own, else Gemma 3's turn format from scripts/gemma3_chat/
#                           (the embedded model's GGUF carries none), with its
#                           generation_config.json (<end_of_turn> ends a turn)
#   TORCHINDUCTOR_CACHE_DIR torch.compile cache (default
#                           ${XDG_CACHE_HOME:-$HOME/.cache}/expound/torchinductor). Even with
#                           --enforce-eager, vLLM's sampler torch.compiles two small ops
#                           (random sampling, logprob ranks) with g++ on first use; the first
#                           request asking for logprobs takes ~25 s on a cold cache.
# `vllm serve` from vllm-cpu dies looking up the version of a distribution named `vllm`,
# so the module entry point is used. Ready when `GET /health` answers 200 (~1 min on 2 cores).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
MODEL_DIR="${VLLM_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/expound/models/gemma-3-270m}"

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "error: $VENV missing; run scripts/vllm_env.sh" >&2
    exit 1
fi
if [[ ! -f "$MODEL_DIR/config.json" ]]; then
    echo "error: no model at $MODEL_DIR; run $VENV/bin/python scripts/convert_gguf.py" >&2
    exit 1
fi

export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-2}"
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/expound/torchinductor}"
# No telemetry, no hub look-ups: the model is a local folder.
export VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# The model's own chat template wins; a model folder without one (the converted GGUF of a
# base model) gets Gemma 3's turn format and a generation config that ends generation at
# <end_of_turn> as well as <eos>, so chat requests (EXPOUND_LLM_API=chat) are served, not
# refused, and a reply stops at the end of its turn.
CHAT_TEMPLATE=()
if [[ -n "${VLLM_CHAT_TEMPLATE:-}" ]]; then
    CHAT_TEMPLATE=(--chat-template "$VLLM_CHAT_TEMPLATE")
elif [[ ! -f "$MODEL_DIR/chat_template.jinja" ]] \
    && ! grep -q '"chat_template"' "$MODEL_DIR/tokenizer_config.json" 2>/dev/null; then
    CHAT_TEMPLATE=(
        --chat-template "$ROOT/scripts/gemma3_chat/chat_template.jinja"
        --generation-config "$ROOT/scripts/gemma3_chat"
    )
fi

exec "$VENV/bin/python" -m vllm.entrypoints.openai.api_server \
    --model "$MODEL_DIR" \
    --served-model-name "${VLLM_SERVED_NAME:-gemma-3-270m}" \
    --host "${HOST:-127.0.0.1}" \
    --port "${PORT:-8000}" \
    --dtype "${VLLM_DTYPE:-auto}" \
    --max-model-len "${VLLM_MAX_MODEL_LEN:-4096}" \
    --max-num-seqs "${VLLM_MAX_NUM_SEQS:-16}" \
    --enforce-eager \
    "${CHAT_TEMPLATE[@]}" \
    "$@"
