#!/usr/bin/env bash
# The main job on a machine without Hugging Face access: set up, then a real completion from the real LSP
# server (stdio, JSON-RPC) on the offline stand-in model. On a normal machine: codegemma-lsp --model 2b-q4.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
