"""Open documents as the server keeps them: pygls' TextDocument with LSP's line breaks and edits that cost one
pass over the text, not one Python step per line.

pygls re-splits the whole source on every `lines` access (with `str.splitlines`, which also breaks at form
feeds, U+2028 and other characters LSP does not count, so an edit below a form feed lands on the wrong line),
and `offset_at_position` sums every previous line. Here an edit is two offsets and one string splice, and an
offset is found by counting line breaks from the last line start this document looked up (see positions.py).
Part of the protocol edge: only server.py and rpc.py use it.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace

from . import positions

log = logging.getLogger(__name__)


class Document(TextDocument):
    """A text document whose positions are read in the client's negotiated encoding, one line at a time."""

    _mark: tuple[int, int] = (0, 0)  # (line, offset) of a line start in the current source

    @property
    def encoding(self) -> str:
        encoding = self.position_codec.encoding
        return str(getattr(encoding, "value", encoding) or positions.UTF16)

    @property
    def lines(self) -> tuple[str, ...]:
        """All lines with their breaks, split as LSP splits them. O(size): not for the request path."""
        return tuple(positions.split_lines(self.source))

    def line_start(self, line: int) -> int | None:
        """Offset of the start of `line`, None past the end; remembers a nearby line start for the next call."""
        text = self.source
        if line < 1:
            return 0 if line == 0 else None
        start = positions.line_start(text, line - 1, self._mark)
        if start is None:
            return None
        self._mark = (line - 1, start)  # an edit on `line` (after this offset) leaves it valid
        end, after = positions.line_bounds(text, start)
        return after if after > end else None

    def line_text(self, line: int) -> str:
        """The text of `line` without its break ("" past the end)."""
        start = self.line_start(line)
        return "" if start is None else self.source[start : positions.line_bounds(self.source, start)[0]]

    def offset_at(self, position: types.Position) -> int | None:
        """Code-point offset of a client position; None when its line is past the end of the document."""
        start = self.line_start(position.line)
        if start is None:
            return None
        text = self.source
        end = positions.line_bounds(text, start)[0]
        units = position.character
        return start + positions.to_index(text[start : min(end, start + max(units, 0))], units, self.encoding)

    def offset_at_position(self, client_position: types.Position) -> int:
        """pygls' API, clamped: a line past the end maps to the end of the document."""
        offset = self.offset_at(client_position)
        return len(self.source) if offset is None else offset

    def apply_change(self, change: types.TextDocumentContentChangeEvent) -> None:
        if isinstance(change, types.TextDocumentContentChangePartial) and self._is_sync_kind_incremental:
            text = self.source
            start = self.offset_at_position(change.range.start)
            end = self.offset_at_position(change.range.end)
            if end < start:  # a reversed range: still the text between the two positions
                start, end = end, start
            if self._mark[1] >= start:
                self._mark = (0, 0)  # the remembered line start may have moved
            self._source = f"{text[:start]}{change.text}{text[end:]}"
            return
        self._mark = (0, 0)
        super().apply_change(change)


class DocumentWorkspace(Workspace):
    """pygls' Workspace holding `Document`s; a change for a document that is not open is ignored."""

    def _create_text_document(self, doc_uri: str, source: str | None = None, version: int | None = None,
                              language_id: str | None = None) -> Document:
        return Document(doc_uri, source=source, version=version, language_id=language_id,
                        sync_kind=self._sync_kind, position_codec=self.position_codec)

    def open_document(self, uri: str) -> Document | None:
        """The open document with this URI (percent-encoded or not), else None: never a file read from disk."""
        document = self.text_documents.get(unquote(uri))
        return document if isinstance(document, Document) else None

    def update_text_document(self, text_doc: types.VersionedTextDocumentIdentifier,
                             change: types.TextDocumentContentChangeEvent) -> None:
        document = self.open_document(text_doc.uri)
        if document is None:
            log.warning("didChange for %s, which is not open: ignored", text_doc.uri)
            return
        document.apply_change(change)
        document.version = text_doc.version
