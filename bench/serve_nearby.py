"""The real server with baseline (c), nearby files, as its context provider (bench/crossfile.py --mode nearby)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nearby import NearbyFiles  # noqa: E402

from codegemma_lsp import cli  # noqa: E402
from codegemma_lsp import server as server_module  # noqa: E402

_build = server_module.build_server


def build_server(*args, **kwargs):
    server = _build(*args, **kwargs)
    server.context_provider = NearbyFiles(server.context_index)
    return server


server_module.build_server = build_server

if __name__ == "__main__":
    sys.exit(cli.main())
