#!/usr/bin/env bash
# Set up, then run the whole test suite (unit, real-process LSP, real llama.cpp on generated and stand-in GGUFs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
