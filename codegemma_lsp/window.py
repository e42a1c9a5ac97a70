"""Document + cursor -> prefix/suffix windows with exact token budgets.

Lines are tokenized one at a time and cached by their text, so a keystroke re-tokenizes only the cursor line,
the ids sent to the model are exactly the ids counted against the budget, and the ids of untouched lines never
change between keystrokes (which keeps the KV cache prefix valid). The window start snaps to line chunks and
sticks to its previous position while that still fits, so typing rarely moves it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Sequence

Tokenize = Callable[[str], Sequence[int]]
SLACK = 0.25  # share of the prefix budget left free for typing on when the window start has to move
MAX_TOKEN_CHARS = 16  # no token is longer: a piece of text longer than budget * this cannot fit the budget


class LineTokenizer:
    """Tokenizes whole lines through an LRU cache keyed by the text itself.

    A piece without a trailing line break (the cursor line's head) is new at every keystroke and is tokenized
    directly: caching it only filled the cache with dead versions, growing memory while the user typed."""

    def __init__(self, tokenize: Tokenize, capacity: int = 50_000, max_chars: int = 8_000_000) -> None:
        self._tokenize = tokenize
        self._cache: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self._capacity = capacity
        self._max_chars = max_chars  # also bounded by text size: minified files have very long lines
        self._chars = 0

    def __call__(self, text: str) -> tuple[int, ...]:
        if not text.endswith("\n"):
            return tuple(self._tokenize(text)) if text else ()
        ids = self._cache.get(text)
        if ids is None:
            ids = tuple(self._tokenize(text)) if text else ()
            self._cache[text] = ids
            self._chars += len(text)
            while len(self._cache) > self._capacity or (self._chars > self._max_chars and len(self._cache) > 1):
                self._chars -= len(self._cache.popitem(last=False)[0])
        else:
            self._cache.move_to_end(text)
        return ids


@dataclass(frozen=True)
class Window:
    """The text around the cursor that the prompt carries, with its token ids."""

    prefix_ids: tuple[int, ...]
    suffix_ids: tuple[int, ...]
    prefix_text: str
    suffix_text: str
    line_prefix: str  # the cursor line up to the cursor
    line_suffix: str  # the cursor line after the cursor, without its line break
    start_line: int  # 0-based line where the prefix window starts (for the next request's anchor)
    cursor_line: int
    lead: str = ""  # blanks before the cursor left out of `prefix_ids`: the completion must start with them
    head: str = ""  # document text just before the prefix window: the rest of its first top-level statement
    tail: str = ""  # document text just after the suffix window: the rest of its last top-level statement

    @property
    def lines(self) -> range:
        """The document lines the windows carry, whole or in part."""
        return range(self.start_line, self.cursor_line + self.suffix_text.count("\n") + 1)


MARGIN_CHARS = 16_384  # the most text `statement_margins` adds on each side


def _top_level(text: str, line_start: int) -> bool:
    """Whether the line at `line_start` starts a top-level statement: code at column 0, not a closing bracket."""
    return line_start < len(text) and text[line_start] not in " \t\r\n)]}"


def statement_margins(text: str, start: int, end: int, limit: int = MARGIN_CHARS) -> tuple[str, str]:
    """The text before `start` and after `end` (both line starts) that completes the top-level statements the
    window `text[start:end]` cuts through, or "" on a side where that takes more than `limit` characters.

    Not for the prompt: for post-processing, which parses the window to judge a completion. A window that
    starts inside a docstring or a long literal parses as nonsense (its closing quote opens a string), and a
    completion's bracket may close beyond the suffix window; the margins give the checks whole statements.
    """
    # Both searches stay within `limit` of the window: a huge line must not be scanned at every keystroke.
    head_start, floor = start, max(0, start - limit)
    while head_start > 0 and not _top_level(text, head_start):
        nl = text.rfind("\n", max(0, floor - 1), head_start - 1)
        if nl < 0 and floor > 0:
            head_start = start
            break
        head_start = nl + 1
    tail_end, ceiling = end, min(len(text), end + limit)
    while tail_end < len(text) and not _top_level(text, tail_end):
        nl = text.find("\n", tail_end, ceiling)
        if nl < 0:
            tail_end = end if ceiling < len(text) else len(text)
            break
        tail_end = nl + 1
    return text[head_start:start], text[end:tail_end]


def _line_break_end(text: str, start: int) -> int:
    """Index just past the line break at or after `start` (or len(text))."""
    nl = text.find("\n", start)
    return len(text) if nl < 0 else nl + 1


def _first_line(lines: list[tuple[int, int, tuple[int, ...]]], held: int, budget: int, snap_lines: int,
                anchor: int | None) -> int:
    """The prefix window's first line, given the lines that fit `budget` (nearest first, none reaching the top
    of the file) and the `held` ids of the cursor line's head.

    A moved start re-evaluates the whole prefix, so the anchor (the previous request's start) stays while it
    fits and its window holds at least 1 - 2 * SLACK of the budget (after a jump of the cursor, a fuller window
    is worth more). When typing outgrows it, the start jumps SLACK of the budget past the tightest fit: the next
    move then comes after that much new text, not after the 16 lines of one snap. A fresh start (no anchor, or
    one the cursor jumped away from) fits the budget as tightly as `snap_lines` allows.
    """
    tightest = lines[-1][0]
    if anchor is not None and tightest <= anchor:
        if held + sum(len(ids) for index, _, ids in lines if index >= anchor) >= budget * (1 - 2 * SLACK):
            return anchor
    elif anchor is not None and tightest <= anchor + snap_lines:
        for index, _, ids in lines:
            held += len(ids)
            if held > budget * (1 - SLACK):
                tightest = index + 1
                break
    return -(-tightest // snap_lines) * snap_lines


def cursor_window(
    text: str,
    offset: int,
    tokenize: Tokenize,
    *,
    prefix_tokens: int,
    suffix_tokens: int,
    snap_lines: int = 16,
    anchor: int | None = None,
    heal: bool = False,
) -> Window:
    """Cut `text` at code-point `offset` into prefix and suffix windows within the token budgets.

    The prefix keeps whole lines back from the cursor; its first line index is a multiple of `snap_lines`, or
    `anchor` (the previous request's start) while that still serves (`_first_line`). The suffix keeps whole
    lines forward from the cursor. Only the lines near the cursor are read, so a huge document costs no more
    than a small one.

    With `heal`, blanks at the end of the cursor line's head (indentation on a new line, the space after `=`)
    stay out of `prefix_ids` and come back as `lead`. A BPE vocabulary joins a space to the word after it, so a
    prompt ending in bare blanks is a token boundary the model never saw in training: it tends to end at once.
    An engine that forces its first tokens to spell `lead` lets the model pick that boundary itself.
    """
    offset = max(0, min(offset, len(text)))
    line_start = text.rfind("\n", 0, offset) + 1
    cursor_line = text.count("\n", 0, line_start)
    line_prefix = text[line_start:offset]
    line_end = text.find("\n", offset)
    line_suffix = text[offset:] if line_end < 0 else text[offset:line_end]
    lead = line_prefix[len(line_prefix.rstrip(" \t")):] if heal and prefix_tokens > 0 else ""
    cut_at = offset - len(lead)

    # Prefix: the cursor line's head, then whole lines backwards while they fit. Only as much of a very long
    # line (minified or binary files) is read as could fit the budget; a cut head takes the whole budget.
    head_start = max(line_start, cut_at - prefix_tokens * MAX_TOKEN_CHARS) if prefix_tokens > 0 else cut_at
    head = tuple(tokenize(text[head_start:cut_at]))[-prefix_tokens:] if prefix_tokens > 0 else ()
    budget = prefix_tokens - len(head) if head_start == line_start else 0
    lines: list[tuple[int, int, tuple[int, ...]]] = []  # (line index, start offset, ids), nearest first
    pos, index = line_start, cursor_line
    while pos > 0 and budget > 0:
        start = text.rfind("\n", 0, pos - 1) + 1
        if pos - start > budget * MAX_TOKEN_CHARS:
            break
        ids = tuple(tokenize(text[start:pos]))
        if len(ids) > budget:
            break
        budget -= len(ids)
        index -= 1
        lines.append((index, start, ids))
        pos = start
    if lines and lines[-1][0] > 0:  # the window does not reach the top of the file: snap its start
        first = _first_line(lines, len(head), prefix_tokens, snap_lines, anchor)
        lines = [entry for entry in lines if entry[0] >= first]
    start_line = lines[-1][0] if lines else cursor_line
    prefix_start = lines[-1][1] if lines else head_start
    prefix_ids = tuple(i for _, _, ids in reversed(lines) for i in ids) + head

    # Suffix: the rest of the cursor line (cut on the right if it alone is too long), then whole lines.
    tail_end = _line_break_end(text, offset)
    cut = min(tail_end, offset + suffix_tokens * MAX_TOKEN_CHARS)
    suffix_ids_list = list(tuple(tokenize(text[offset:cut]))[:suffix_tokens]) if suffix_tokens > 0 else []
    budget = suffix_tokens - len(suffix_ids_list) if cut == tail_end else 0
    tail_end = cut
    suffix_end = tail_end if suffix_ids_list or offset == tail_end else offset
    pos = tail_end
    while pos < len(text) and budget > 0:
        end = _line_break_end(text, pos)
        if end - pos > budget * MAX_TOKEN_CHARS:
            break
        ids = tuple(tokenize(text[pos:end]))
        if len(ids) > budget:
            break
        suffix_ids_list.extend(ids)
        budget -= len(ids)
        pos = suffix_end = end

    head, tail = statement_margins(text, prefix_start, suffix_end)
    return Window(
        prefix_ids=prefix_ids,
        suffix_ids=tuple(suffix_ids_list),
        prefix_text=text[prefix_start:offset],
        suffix_text=text[offset:suffix_end],
        line_prefix=line_prefix,
        line_suffix=line_suffix,
        start_line=start_line,
        cursor_line=cursor_line,
        lead=lead,
        head=head,
        tail=tail,
    )
