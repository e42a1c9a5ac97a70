#!/usr/bin/env bash
# Set up, then run the whole test suite: unit tests, the real server process over JSON-RPC, real llama.cpp on a
# generated GGUF and on the stand-in model, and the editor integrations in real clients (Neovim headless,
# VS Code as code-server in Chromium), remote backends against real servers (llama-cpp-python's, and llama-server
# built once from the llama.cpp it vendors: ~15 min on 2 cores, then cached). Editor tools come from Debian and
# npm (editors/setup.sh; needs root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bash editors/setup.sh
bash scripts/build_llama_server.sh >/dev/null  # a real llama-server for the remote-backend tests (cached build)
export CODEGEMMA_REQUIRE_EDITORS=1  # a missing editor install fails the run instead of skipping its tests
export CODEGEMMA_REQUIRE_LLAMA_SERVER=1
exec .venv/bin/python -m pytest -q "$@"
