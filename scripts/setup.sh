#!/usr/bin/env bash
# One-time set-up on a fresh machine: a virtual environment with the package, its test tools, and the offline
# stand-in model. llama-cpp-python compiles llama.cpp on first install (~9 min on 2 cores); pip caches the
# wheel, so later runs take seconds. Set CMAKE_ARGS first for GPU builds (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
.venv/bin/codegemma-lsp models pull "${CODEGEMMA_STAND_IN:-qwen2.5-coder-0.5b-q4}"
