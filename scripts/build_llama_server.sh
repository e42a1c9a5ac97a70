#!/usr/bin/env bash
# Build llama-server from the llama.cpp sources vendored in llama-cpp-python's sdist: the same llama.cpp the
# in-process engine runs, so remote-vs-in-process comparisons differ only in the transport. Portable CPU flags
# (see scripts/setup.sh), static, target llama-server only. The binary is cached per llama-cpp-python version
# under ${XDG_CACHE_HOME:-~/.cache}/codegemma-lsp/; a second run only prints its path (stdout; build logs go to
# stderr). About 15 minutes on 2 cores. scripts/test.sh runs it: tests/test_remote_llama_server.py needs it.
#
#     bash scripts/build_llama_server.sh          # build once, print the binary's path
#     bash scripts/build_llama_server.sh --path   # print the path only
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('llama-cpp-python'))")
dest="${XDG_CACHE_HOME:-$HOME/.cache}/codegemma-lsp/llama-server-$version"
if [ "${1:-}" = "--path" ]; then  # where the binary is (or would be), without building it
  echo "$dest/llama-server"
  exit 0
fi
if [ -x "$dest/llama-server" ]; then
  echo "$dest/llama-server"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$work" >&2
tar xzf "$work/llama_cpp_python-$version.tar.gz" -C "$work"
cmake -S "$work/llama_cpp_python-$version/vendor/llama.cpp" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=ON >&2
cmake --build "$work/build" --target llama-server -j "$(nproc)" >&2
mkdir -p "$dest"
cp "$work/build/bin/llama-server" "$dest/llama-server.tmp"
mv "$dest/llama-server.tmp" "$dest/llama-server"
echo "$dest/llama-server"
