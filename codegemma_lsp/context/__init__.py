"""Cross-file context: the tree-sitter import graph around the current file, cut to the definitions it uses.

`languages` (grammars and query files) -> `imports` (extraction) -> `resolve` (per-language rules) ->
`graph` (walk, choose, order, budget) over `index` (confined, cached reads), with `snippets` (similar code from
other files in what the graph leaves of the budget) -> `crossfile` (the provider).
"""

from .crossfile import ImportGraphContext
from .index import WorkspaceIndex

__all__ = ["ImportGraphContext", "WorkspaceIndex"]
