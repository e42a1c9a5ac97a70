"""The cross-file ContextProvider the completion service calls: import graph -> ContextFile entries."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from urllib.parse import unquote, urlparse

from ..completion import CompletionRequest
from ..prompt import ContextFile
from ..window import Tokenize
from .graph import Selection, select_context
from .index import WorkspaceIndex
from .languages import language_of
from .snippets import SnippetFinder

log = logging.getLogger(__name__)

REACH = 64  # lines: a block is kept for the code this near where it was chosen


@dataclass(frozen=True)
class Kept:
    """The block last sent for a document, and where it was chosen."""

    selection: Selection
    budget: int
    cursor_line: int


def still_serves(kept: Kept, fresh: Selection, cursor_line: int, budget: int) -> bool:
    """Whether the kept block may stand in for the fresh choice. Each line typed changes the counts that rank
    the definitions, and a block that differs from its first file on costs its thousand-odd tokens again (five
    seconds on a CPU); so the block stays while it shows at least the least of every definition the fresh choice
    requires, the current file imports the same files, and the cursor stays near where it was chosen."""
    return (budget == kept.budget and abs(cursor_line - kept.cursor_line) <= REACH
            and fresh.imports == kept.selection.imports
            and all(lines <= kept.selection.lines.get(path, frozenset()) for path, lines in fresh.required.items()))


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
        self._kept: dict[str, Kept] = {}

    def prepare(self, uri: str) -> None:
        """The cursor-independent part of a document's first request: the file list and the chunks of the files
        near it."""
        path = uri_to_path(uri)
        current = self.index.confine(path) if path is not None else None
        spec = language_of(current) if current is not None else None
        if spec is not None and self.snippets is not None:
            self.snippets.prepare(current, spec)

    def forget(self, uri: str) -> None:
        self._kept.pop(uri, None)

    def _unchanged(self, kept: Kept, current: Path, text: str) -> bool:
        """The kept block's files still read as they did (an edited dependency's lines may have moved). The
        current file's own chunks move with every line typed above them: they need only still be in it."""
        for path, lines in kept.selection.sources.items():
            if path == current:
                if not set(lines) <= set(text.split("\n")):
                    return False
                continue
            facts = self.index.facts(path)
            if facts is None or facts.lines != lines:
                return False
        return True

    def gather(self, request: CompletionRequest, budget: int, tokenize: Tokenize, *,
               ahead: bool = False, shown: range | None = None) -> Sequence[ContextFile]:
        t0 = time.perf_counter()
        path = uri_to_path(request.uri)
        current = self.index.confine(path) if path is not None else None
        if current is None or len(request.text) > self.index.max_bytes:
            return ()  # a current file over the index's size limit (generated, minified) would be parsed per keystroke
        cursor_line = request.text.count("\n", 0, request.offset)
        try:
            fresh = select_context(self.index, current, request.text, cursor_line, budget, tokenize,
                                   repo=request.repo, max_depth=self.max_depth, snippets=self.snippets,
                                   shown=shown)
        except RecursionError:  # a pathological import cycle: complete without context rather than fail
            log.warning("req=%d cross-file context gave up on %s", request.request_id, request.path)
            return ()
        kept = self._kept.get(request.uri)
        if kept is not None and still_serves(kept, fresh, cursor_line, budget) \
                and self._unchanged(kept, current, request.text):
            selection = kept.selection
        else:
            selection = fresh
            if not ahead:  # work ahead leaves the choice to the user's next real request
                self._kept[request.uri] = Kept(fresh, budget, cursor_line)
        self.last_ms = (time.perf_counter() - t0) * 1000
        log.debug("req=%d context files=%s kept=%s ms=%.1f", request.request_id, [p for p, _ in selection.files],
                  selection is not fresh, self.last_ms)
        return tuple(ContextFile(path=p, ids=ids) for p, ids in selection.files)
