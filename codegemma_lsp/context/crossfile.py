"""The cross-file ContextProvider the completion service calls: import graph -> ContextFile entries."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Sequence
from urllib.parse import unquote, urlparse

from ..completion import CompletionRequest
from ..prompt import ContextFile
from ..window import Tokenize
from .graph import select_context
from .index import WorkspaceIndex
from .languages import language_of
from .snippets import SnippetFinder

log = logging.getLogger(__name__)


def uri_to_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        return None
    return Path(unquote(parsed.path)) if parsed.scheme else Path(uri)


class ImportGraphContext:
    """Definitions the current file uses, from the files it imports, and code like the cursor's from other files,
    within the budget (see graph.py and snippets.py)."""

    def __init__(self, index: WorkspaceIndex, *, max_depth: int = 2, snippets: bool = True) -> None:
        self.index = index
        self.max_depth = max_depth
        self.snippets = SnippetFinder(index) if snippets else None
        self.last_ms = 0.0

    def prepare(self, uri: str) -> None:
        """The cursor-independent part of a document's first request: the file list and the chunks of the files
        near it."""
        path = uri_to_path(uri)
        current = self.index.confine(path) if path is not None else None
        spec = language_of(current) if current is not None else None
        if spec is not None and self.snippets is not None:
            self.snippets.prepare(current, spec)

    def gather(self, request: CompletionRequest, budget: int, tokenize: Tokenize) -> Sequence[ContextFile]:
        t0 = time.perf_counter()
        path = uri_to_path(request.uri)
        current = self.index.confine(path) if path is not None else None
        if current is None or len(request.text) > self.index.max_bytes:
            return ()  # a current file over the index's size limit (generated, minified) would be parsed per keystroke
        cursor_line = request.text.count("\n", 0, request.offset)
        try:
            selection = select_context(self.index, current, request.text, cursor_line, budget, tokenize,
                                       repo=request.repo, max_depth=self.max_depth, snippets=self.snippets)
        except RecursionError:  # a pathological import cycle: complete without context rather than fail
            log.warning("req=%d cross-file context gave up on %s", request.request_id, request.path)
            return ()
        self.last_ms = (time.perf_counter() - t0) * 1000
        log.debug("req=%d context files=%s ms=%.1f", request.request_id, [p for p, _ in selection], self.last_ms)
        return tuple(ContextFile(path=p, ids=ids) for p, ids in selection)
