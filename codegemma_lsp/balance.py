"""Bracket and quote balance: a small lexer that tells code from strings and comments, and keeps a stack.

Used by post-processing to stop a completion at a closer the document already has after the cursor, and to
refuse completions that leave the document with more unmatched openers than it had.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterator

from .syntax import Lexical

OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {")": "(", "]": "[", "}": "{"}


@lru_cache(maxsize=None)
def _code_pattern(lex: Lexical) -> re.Pattern[str]:
    """What ends a run of plain code: a comment start, a quote (triple first) or a bracket."""
    tokens = [*lex.line_comments, *(lex.block_comment[:1] if lex.block_comment else ())]
    tokens += ['"""', "'''"] if lex.triple_quotes else []
    return re.compile("|".join(map(re.escape, [*tokens, *lex.quotes, *OPENERS, *CLOSERS])))


@lru_cache(maxsize=None)
def _quote_pattern(quote: str) -> re.Pattern[str]:
    """What ends a run of string text: an escape, the closing quote, or the end of a one-line string's line."""
    line_end = "|\\n" if len(quote) == 1 and quote != "`" else ""
    return re.compile(r"\\|" + re.escape(quote) + line_end)


@dataclass
class Balance:
    """Lexer state plus the unmatched openers seen so far; `feed` it text, in order."""

    lex: Lexical
    quote: str = ""  # the delimiter of the string we are in ('"', "'", '\"\"\"', '`'), "" in code
    quote_at: int = -1  # where that string opened (offset into everything fed so far)
    in_block_comment: bool = False
    stack: list[tuple[str, int]] = field(default_factory=list)  # (opener, offset)
    dropped: int = 0  # openers skipped by a closer of another kind, and unterminated strings
    offset: int = 0

    def copy(self) -> "Balance":
        return Balance(self.lex, self.quote, self.quote_at, self.in_block_comment, list(self.stack), self.dropped,
                       self.offset)

    @property
    def unmatched(self) -> int:
        return self.dropped + len(self.stack) + (1 if self.quote else 0)

    def feed(self, text: str) -> Iterator[tuple[int, str, str]]:
        """Lex `text`, yielding (position in `text`, kind, delimiter) for `close` events, the closing quote of
        a string that was open before this text began (`qclose`), and `unmatched` closers; the state is updated
        as a side effect. Consume the iterator fully (or call `run`). Runs of plain characters are skipped by
        regular expression: post-processing feeds it whole windows and their margins on every request."""
        lex, i, n, base = self.lex, 0, len(text), self.offset
        started_in = self.quote_at < base and self.quote  # a string that opened before this text
        code = _code_pattern(lex)
        while i < n:
            if self.quote:
                m = _quote_pattern(self.quote).search(text, i)
                if m is None:
                    break
                i = m.start()
                if text[i] == "\\":
                    i += 2
                elif text[i] == "\n":  # an unterminated one-line string
                    self.dropped += 1
                    self.quote, self.quote_at = "", -1
                    i += 1
                else:
                    if started_in and self.quote_at < base:
                        yield i, "qclose", self.quote
                    i += len(self.quote)
                    self.quote, self.quote_at = "", -1
                continue
            if self.in_block_comment:
                j = text.find(lex.block_comment[1], i) if lex.block_comment else -1
                if j < 0:
                    break
                self.in_block_comment = False
                i = j + len(lex.block_comment[1])
                continue
            m = code.search(text, i)
            if m is None:
                break
            i, token = m.start(), m.group()
            if token in lex.line_comments:
                j = text.find("\n", i)
                i = n if j < 0 else j
                continue
            if lex.block_comment and token == lex.block_comment[0]:
                self.in_block_comment = True
            elif token[0] in lex.quotes:
                self.quote, self.quote_at = token, base + i
            elif token in OPENERS:
                self.stack.append((token, base + i))
            else:
                opener = CLOSERS[token]
                if self.stack and self.stack[-1][0] == opener:
                    self.stack.pop()
                    yield i, "close", token
                elif any(o == opener for o, _ in self.stack):
                    while self.stack[-1][0] != opener:
                        self.stack.pop()
                        self.dropped += 1
                    self.stack.pop()
                    yield i, "close", token
                else:
                    yield i, "unmatched", token
            i += len(token)
        self.offset = base + n

    def run(self, text: str) -> "Balance":
        for _ in self.feed(text):
            pass
        return self


def first_closer(text: str, start: Balance, max_lines: int = 50) -> str:
    """The first delimiter in `text` (the document after the cursor) that closes something opened before it:
    a bracket, or the quote of the string the cursor is in; "" when there is none."""
    lines = text.split("\n", max_lines)
    probe = start.copy()
    probe.stack, probe.dropped = [], 0
    for _, kind, delimiter in probe.feed("\n".join(lines[:max_lines])):
        if kind in ("qclose", "unmatched"):
            return delimiter
    return ""


def duplicate_closer(text: str, start: Balance, closer: str) -> tuple[int, int] | None:
    """(cut, detected) for the first delimiter in the completion `text` that closes something opened before
    it, when that delimiter is `closer` (what the document after the cursor closes first): the document already
    has it, so the completion should stop just before it. Causal: decided at `detected`."""
    if not closer:
        return None
    probe = start.copy()
    probe.stack, probe.dropped = [], 0
    for i, kind, delimiter in probe.feed(text):
        if kind in ("qclose", "unmatched"):
            return (i, i + len(delimiter)) if delimiter == closer else None
    return None


def excess_opener(start: Balance, text: str, after: str, before_unmatched: int) -> int | None:
    """Where the earliest opener of `text` that stays unclosed sits, if inserting `text` between the prefix
    (state `start`) and `after` leaves more unmatched openers than the document had; None when balanced."""
    probe = start.copy()
    probe.run(text)
    inside = probe.copy()
    if probe.run(after).unmatched <= before_unmatched:
        return None
    base = start.offset
    positions = [at - base for _, at in inside.stack if at >= base]
    if inside.quote and inside.quote_at >= base:
        positions.append(inside.quote_at - base)
    return min(positions) if positions else None
