#!/usr/bin/env bash
# Runs a command with the embedded vLLM CPU server available:
#   scripts/with_vllm.sh COMMAND [ARGS...]
# Uses the server at EXPOUND_LLM_BASE_URL if it answers /health; otherwise starts
# scripts/serve_vllm.sh on VLLM_PORT (8000), waits for /health, runs the command with
# EXPOUND_LLM_BASE_URL pointing at it, and stops the server afterwards. If either the
# server or the command exits, the other is stopped too.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VLLM_PORT="${VLLM_PORT:-8000}"
URL="${EXPOUND_LLM_BASE_URL:-http://127.0.0.1:$VLLM_PORT}"
LOG_DIR="${EXPOUND_LOG_DIR:-var/log}"

healthy() { curl -fsS "$URL/health" >/dev/null 2>&1; }

if healthy; then
    echo "using the LLM server at $URL"
    export EXPOUND_LLM_BASE_URL="$URL"
    exec "$@"
fi

URL="http://127.0.0.1:$VLLM_PORT"
mkdir -p "$LOG_DIR"
PORT="$VLLM_PORT" scripts/serve_vllm.sh >"$LOG_DIR/vllm.log" 2>&1 &
VLLM_PID=$!
COMMAND_PID=""
stop() {
    trap - EXIT INT TERM
    [[ -n "$COMMAND_PID" ]] && kill -TERM "$COMMAND_PID" 2>/dev/null || true
    kill -TERM "$VLLM_PID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop EXIT INT TERM

echo "starting vLLM (CPU, gemma-3-270m) on $URL; log: $LOG_DIR/vllm.log"
for _ in $(seq 1 300); do
    healthy && break
    if ! kill -0 "$VLLM_PID" 2>/dev/null; then
        echo "error: vLLM exited during start-up; see $LOG_DIR/vllm.log" >&2
        tail -n 20 "$LOG_DIR/vllm.log" >&2
        exit 1
    fi
    sleep 1
done
healthy || { echo "error: vLLM not healthy after 300 s; see $LOG_DIR/vllm.log" >&2; exit 1; }
echo "vLLM ready"

EXPOUND_LLM_BASE_URL="$URL" "$@" &
COMMAND_PID=$!
set +e
wait -n "$VLLM_PID" "$COMMAND_PID"
status=$?
set -e
exit "$status"
