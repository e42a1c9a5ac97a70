"""Typed-ahead: answer from a completion already shown when the user types what it suggested.

Each entry remembers the text just before and just after the cursor when the completion was made (an empty one
too: at that state the model has nothing to add, and asking it again would only say so again). A later
request hits when its text after the cursor is the same and its text before the cursor is that entry's plus a
typed run that the completion starts with; the answer is the rest of the completion, with no model call. Undo
and scrolling back land on an earlier state exactly (a typed run of length 0), so they hit too.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

CONTEXT_CHARS = 1024  # characters compared on each side of the cursor


@dataclass(frozen=True)
class Entry:
    before: str  # up to CONTEXT_CHARS characters before the cursor
    after: str  # up to CONTEXT_CHARS characters after the cursor
    text: str  # the completion that was shown
    replace: int  # code points after the cursor that it replaces (unchanged by typing before the cursor)


def _sides(text: str, offset: int) -> tuple[str, str]:
    return text[max(0, offset - CONTEXT_CHARS) : offset], text[offset : offset + CONTEXT_CHARS]


class TypeAheadCache:
    """A small LRU of shown completions per document."""

    def __init__(self, per_document: int = 16) -> None:
        self._entries: dict[str, OrderedDict[tuple[str, str], Entry]] = {}
        self._per_document = per_document
        self.hits = 0

    def remember(self, uri: str, text: str, offset: int, completion: str, replace: int = 0) -> None:
        before, after = _sides(text, offset)
        entries = self._entries.setdefault(uri, OrderedDict())
        entries[(before, after)] = Entry(before, after, completion, replace)
        entries.move_to_end((before, after))
        while len(entries) > self._per_document:
            entries.popitem(last=False)

    def known(self, uri: str, text: str, offset: int) -> bool:
        """True when a completion was remembered for exactly this cursor state (nothing to work ahead on)."""
        return _sides(text, offset) in self._entries.get(uri, {})

    def lookup(self, uri: str, text: str, offset: int) -> tuple[str, int] | None:
        """(rest of a shown completion that the text typed since then agrees with, its replace length), or None."""
        entries = self._entries.get(uri)
        if not entries:
            return None
        after = text[offset : offset + CONTEXT_CHARS]
        for key in reversed(list(entries)):
            entry = entries[key]
            if entry.after != after:
                continue
            for typed_len in range(0, max(1, len(entry.text))):  # an empty answer hits at its own state only
                start = offset - typed_len
                if start < 0:
                    break
                if not entry.text.startswith(text[start:offset]):
                    continue
                if text[max(0, start - CONTEXT_CHARS) : start] == entry.before:
                    entries.move_to_end(key)
                    self.hits += 1
                    return entry.text[typed_len:], entry.replace
        return None

    def forget(self, uri: str) -> None:
        self._entries.pop(uri, None)
