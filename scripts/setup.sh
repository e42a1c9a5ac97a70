#!/usr/bin/env bash
# One-time set-up on a fresh machine: a virtual environment with the package, its test tools, and the offline
# stand-in model. llama-cpp-python compiles llama.cpp on first install (~9 min on 2 cores); pip caches the
# wheel, so later runs take seconds. Set CMAKE_ARGS first for GPU builds (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# A portable CPU build (AVX2/FMA/F16C): llama.cpp's native build turns on the AMX kernels where the CPU reports
# AMX, and they crash (SIGSEGV in ggml_backend_amx_mul_mat) on virtual machines that do not grant AMX state.
# pip's wheel cache ignores CMAKE_ARGS, so a cached wheel must be portable to be safe on the next machine.
export CMAKE_ARGS="-DGGML_NATIVE=OFF ${CMAKE_ARGS:-}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
.venv/bin/codegemma-lsp models pull "${CODEGEMMA_STAND_IN:-qwen2.5-coder-0.5b-q4}"
# Smoke test: one real completion. A llama.cpp build that cannot run on this CPU fails here, loudly, not in a test.
smoke=$(mktemp -d)
printf 'def add(a, b):\n    return \n' > "$smoke/smoke.py"
if ! .venv/bin/codegemma-lsp complete "$smoke/smoke.py:2:11" --model "${CODEGEMMA_STAND_IN:-qwen2.5-coder-0.5b-q4}" \
    --no-download >/dev/null 2>"$smoke/err"; then
  tail -20 "$smoke/err" >&2
  echo "setup: llama.cpp could not run a completion on this machine (see above). Rebuild it with:" >&2
  echo "  .venv/bin/pip cache remove 'llama_cpp_python*'; CMAKE_ARGS='$CMAKE_ARGS' .venv/bin/pip install --force-reinstall --no-deps llama-cpp-python==0.3.36" >&2
  exit 1
fi
rm -rf "$smoke"
