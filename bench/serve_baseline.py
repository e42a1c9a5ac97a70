"""The real server with a benchmark baseline as its context provider (bench/crossfile.py --modes nearby,oracle):
`--bench-context nearby` (the nearest files, baseline (c)) or `--bench-context oracle` (the hidden names'
definitions, an upper bound). The flag is taken off before the server's own command line is parsed."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from nearby import NearbyFiles  # noqa: E402
from oracle import HiddenDefinitions  # noqa: E402

from codegemma_lsp import cli  # noqa: E402
from codegemma_lsp import server as server_module  # noqa: E402

_build = server_module.build_server


def _take(flag: str) -> str | None:
    """The value after `flag`, removed from the command line (the server's parser does not know it)."""
    if flag not in sys.argv:
        return None
    at = sys.argv.index(flag)
    value = sys.argv[at + 1]
    del sys.argv[at:at + 2]
    return value


if __name__ == "__main__":
    name, cases = _take("--bench-context"), _take("--bench-cases")

    def build_server(*args, **kwargs):
        server = _build(*args, **kwargs)
        index = server.context_index
        server.context_provider = (HiddenDefinitions(index, Path(cases)) if name == "oracle"
                                   else NearbyFiles(index))
        return server

    server_module.build_server = build_server
    sys.exit(cli.main())
