#!/usr/bin/env bash
# `make run`: the embedded vLLM CPU server on loopback, then the gRPC service.
# Waits for vLLM's /health before starting expound; stopping either stops both.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VLLM_PORT="${VLLM_PORT:-8000}"
LOG_DIR="${EXPOUND_LOG_DIR:-var/log}"
mkdir -p "$LOG_DIR"

PORT="$VLLM_PORT" scripts/serve_vllm.sh >"$LOG_DIR/vllm.log" 2>&1 &
VLLM_PID=$!
EXPOUND_PID=""
stop() {
    trap - EXIT INT TERM
    [[ -n "$EXPOUND_PID" ]] && kill -TERM "$EXPOUND_PID" 2>/dev/null || true
    kill -TERM "$VLLM_PID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop EXIT INT TERM

echo "starting vLLM (CPU, gemma-3-270m) on 127.0.0.1:$VLLM_PORT; log: $LOG_DIR/vllm.log"
for _ in $(seq 1 240); do
    if curl -fsS "http://127.0.0.1:$VLLM_PORT/health" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$VLLM_PID" 2>/dev/null; then
        echo "error: vLLM exited during start-up; see $LOG_DIR/vllm.log" >&2
        tail -n 20 "$LOG_DIR/vllm.log" >&2
        exit 1
    fi
    sleep 1
done
curl -fsS "http://127.0.0.1:$VLLM_PORT/health" >/dev/null || { echo "error: vLLM not healthy after 240 s" >&2; exit 1; }
echo "vLLM ready"

EXPOUND_LLM_BASE_URL="http://127.0.0.1:$VLLM_PORT" .venv/bin/expound serve &
EXPOUND_PID=$!
# Whichever exits first takes the other down (trap on EXIT).
wait -n "$VLLM_PID" "$EXPOUND_PID"
