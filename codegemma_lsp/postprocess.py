"""Raw model text -> the text a careful programmer would accept. Pure functions only.

Small models run on past the hole: they re-type the code after the cursor, close brackets the editor already
closed, loop on a line, or leak control tokens. Each step below answers one of those faults and can be switched
off by name (`postprocess` setting), so the benchmark can show what each one is worth.

Two phases keep the early stop and the final cut in agreement. `detect` finds the first point in the raw text at
which some step's cut becomes certain; it looks only at the text before that point, so it gives the same answer
during generation (where it is the engine's stop predicate) as on the full raw text. `finalize` then cuts the text
up to that point. `process(raw)` is `finalize(raw[:detect(raw)])` whether the engine stopped early or not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Collection

from . import indent
from .balance import Balance, duplicate_closer, excess_opener, first_closer
from .duplicates import duplicated_suffix, lines_of, overlap_on_line, repeated_lines
from .indent import indentation
from .syntax import error_count, lexical

STEPS = ("tokens", "mode", "repeats", "suffix", "fuzzy", "brackets", "anchor", "nested", "indent", "syntax")
DEFAULT_STEPS = tuple(s for s in STEPS if s != "fuzzy")

BLOCK_OPENERS = (":", "{", "(", "[", "=>", "->")
_CLOSERS_ONLY = re.compile(r"[)\]}>;:,'\"`\s]+")
_CONTROL = re.compile(
    r"<\|[A-Za-z0-9_.\-]{1,40}\|>|<｜[^｜\s]{1,40}｜>"
    r"|<(?:fim_(?:prefix|middle|suffix|pad)|file_sep|repo_name|filename|gh_stars|end_of_turn|start_of_turn"
    r"|PRE|SUF|MID|EOT)>"
)
_FENCE = re.compile(r"^[ \t]*```", re.M)
MAX_TARGET_LINES = 12  # document lines after the cursor compared against the completion


@dataclass(frozen=True)
class Mode:
    """How much text one suggestion may span, decided from the cursor's surroundings."""

    multiline: bool
    floor: int = 0  # multi-line: a line indented less than this (in characters) ends the block


@dataclass(frozen=True)
class Edit:
    """The suggestion: `text` replaces the cursor line's next `replace` characters (0: a plain insert)."""

    text: str
    replace: int = 0


@dataclass(frozen=True)
class Surroundings:
    """What post-processing sees of the document: the window text on each side of the cursor."""

    prefix: str
    suffix: str
    language: str = ""  # syntax.language_for(path); "" when unknown (no syntax check)
    markers: tuple[str, ...] = ()  # the prompt template's control-token texts
    head: str = ""  # document text before `prefix` / after `suffix` that completes their top-level statements:
    tail: str = ""  # read by the bracket and syntax checks only (window.statement_margins)

    @cached_property
    def line_prefix(self) -> str:
        return self.prefix[self.prefix.rfind("\n") + 1 :]

    @cached_property
    def line_suffix(self) -> str:
        return self.suffix.split("\n", 1)[0]

    @property
    def inserts_lines(self) -> bool:
        """The cursor sits before the code of its line: a completion is lines inserted above that code."""
        return not self.line_prefix.strip() and bool(self.line_suffix.strip())

    @cached_property
    def prefix_balance(self) -> Balance:
        return Balance(lexical(self.language)).run(self.head + self.prefix)

    @cached_property
    def suffix_closer(self) -> str:
        return first_closer(self.suffix, self.prefix_balance)

    @cached_property
    def targets(self) -> list[str]:
        """The document's non-blank lines from the cursor on, without trailing whitespace. The cursor line counts
        whole when only indentation precedes the cursor, else as the text after the cursor, stripped."""
        lines = self.suffix.split("\n", MAX_TARGET_LINES + 1)[:MAX_TARGET_LINES]
        lines[0] = self.line_suffix.strip() if self.line_prefix.strip() else self.line_prefix + lines[0]
        return [line.rstrip() for line in lines if line.strip()]


def _last_line(text: str) -> str | None:
    for line in reversed(text.split("\n")):
        if line.strip():
            return line
    return None


def _block_floor(where: Surroundings) -> int:
    """The least indentation a block completion's lines may have, the cursor's line being blank before it.

    With the cursor after indentation, the block is the cursor's. At column 0 the line before the cursor says
    whether it is inside an indented construct; lines may dedent within it (an `elif`, the end of a loop), but a
    line back at column 0 leaves it (the next function, a `# test` comment, `if __name__ ...`). An indented line
    after the cursor with none before it means the hole opens that construct (`table = Table(` over its
    arguments, a `def` over its body): its first line is at column 0 and must not end the block.
    """
    if where.line_prefix:
        return len(where.line_prefix)
    before = _last_line(where.prefix[: len(where.prefix) - len(where.line_prefix)])
    inside = before is not None and (indentation(before) > 0 or before.rstrip().endswith(BLOCK_OPENERS))
    return 1 if inside else 0


def decide_mode(where: Surroundings) -> Mode:
    """Single line when the cursor sits inside code on its line; a block when the line is blank before the
    cursor or ends with a block opener.

    Text after the cursor means the user is finishing that line, unless it is only closers the editor inserted.
    A blank line, or the start of a line's code (new lines go above it), invites a block whose lines stay inside
    the cursor's block; a line ending with an opener invites a body indented deeper than that line.
    """
    line_prefix, rest = where.line_prefix, where.line_suffix.strip()
    if rest and not _CLOSERS_ONLY.fullmatch(rest) and line_prefix.strip():
        return Mode(multiline=False)
    stripped = line_prefix.rstrip()
    if not stripped:
        return Mode(multiline=True, floor=_block_floor(where))
    if stripped.endswith(BLOCK_OPENERS):
        return Mode(multiline=True, floor=indentation(line_prefix) + 1)
    return Mode(multiline=False)


# --- the steps: each returns (cut, detected) for the first cut it is sure of, or None -------------------------


def leaked_token(text: str, where: Surroundings) -> tuple[int, int] | None:
    """A control token spelled out as text, or a chat-style code fence, that the document itself lacks."""
    window = where.prefix + where.suffix
    hits = [(m.start(), m.end()) for m in _CONTROL.finditer(text) if m.group() not in window]
    hits += [(i, i + len(mark)) for mark in where.markers if mark and mark not in window
             for i in [text.find(mark)] if i >= 0]
    if "```" not in window:
        hits += [(m.start(), m.end()) for m in _FENCE.finditer(text)]
    return min(hits, key=lambda hit: hit[1]) if hits else None


def mode_cut(text: str, where: Surroundings, mode: Mode) -> tuple[int, int] | None:
    """Single line: the first line (kept with its line break when lines go above the cursor's code).
    Block: up to the first line indented less than the block (a closing bracket at the opener's indentation
    is kept)."""
    if not mode.multiline:
        blank = not where.line_prefix.strip()
        content = re.search(r"\S", text) if blank else None
        start = content.start() if content else 0
        nl = text.find("\n", start) if (content or not blank) else -1
        if nl < 0:
            return None
        return (nl + 1, nl + 1) if where.inserts_lines else (nl, nl + 1)
    for index, (start, line, complete) in enumerate(lines_of(text)):
        if index == 0 and where.line_prefix:
            continue  # the rest of the cursor's line
        width = indentation(line)
        if width == len(line) or width >= mode.floor:
            continue
        if line[width] in ")]}" and width == mode.floor - 1:
            return (start + len(line), start + len(line) + 1) if complete else None
        return start, start + width + 1
    return None


def closer_cut(text: str, where: Surroundings, mode: Mode, complete: bool) -> tuple[int, int] | None:
    """Stop before a closer the document already has after the cursor. On the cursor line of a block, wait for
    the line's end: a model that re-types the rest of the line and goes on gets a replace edit instead."""
    hit = duplicate_closer(text, where.prefix_balance, where.suffix_closer)
    if hit is None:
        return None
    rest = where.line_suffix.strip()
    if mode.multiline and rest and where.line_prefix.strip() and "\n" not in text[: hit[0]]:
        nl = text.find("\n")
        if nl < 0:
            return (hit[0], len(text)) if complete else None
        return None if text[:nl].rstrip().endswith(rest) else (hit[0], nl + 1)
    return hit


def detect(text: str, where: Surroundings, mode: Mode, steps: Collection[str] = DEFAULT_STEPS) -> int | None:
    """The first point in `text` where some step's cut is certain (None: keep generating)."""
    found: list[tuple[int, int] | None] = []
    if "tokens" in steps:
        found.append(leaked_token(text, where))
    if "mode" in steps:
        found.append(mode_cut(text, where, mode))
    if "repeats" in steps:
        found.append(repeated_lines(text, where))
    if "suffix" in steps:
        found.append(duplicated_suffix(text, where, complete=False, fuzzy="fuzzy" in steps))
    if "brackets" in steps:
        found.append(closer_cut(text, where, mode, complete=False))
    points = [hit[1] for hit in found if hit is not None]
    return min(points) if points else None


def _shape(text: str, where: Surroundings) -> str:
    """Lines inserted above the cursor's code end with a line break (and the cursor line's indentation, so that
    code keeps its place); in the middle of a line, trailing spaces stay (the line's code follows them); anything
    else ends without trailing whitespace (the document's line break follows)."""
    if where.inserts_lines:
        body = text.rstrip(" \t")
        if body.endswith("\n") or (body and not where.line_prefix and where.line_suffix[:1] in (" ", "\t")):
            return body.rstrip("\n") + "\n" + where.line_prefix  # (code before indentation cannot share its line)
        return body
    stripped = text.rstrip()
    if where.line_suffix.strip() and "\n" not in text[len(stripped) :]:
        return text
    return stripped


def _line_cuts(text: str, where: Surroundings) -> list[int]:
    """Candidate ends at line boundaries, longest first (the text itself excluded)."""
    cuts = [i + 1 if where.inserts_lines else i for i, ch in enumerate(text) if ch == "\n"]
    return sorted({c for c in cuts if 0 < c < len(text)} | {0}, reverse=True)


def syntax_cut(text: str, where: Surroundings, replace: int) -> str:
    """The longest line-prefix of the completion that adds no syntax errors to the window (tree-sitter)."""
    before, after = where.head + where.prefix, where.suffix[replace:] + where.tail
    base = error_count(before + where.suffix + where.tail, where.language)
    if base is None or not text.strip():
        return text
    for cut in [len(text)] + _line_cuts(text, where):
        candidate = _shape(text[:cut], where)
        if error_count(before + candidate + after, where.language) <= base:
            return candidate
    return ""


def _inside_after(where: Surroundings, mode: Mode) -> bool:
    """Whether the document has code after the cursor inside the cursor's block (a block must rejoin it)."""
    after = where.targets[0] if where.targets else None
    return after is not None and (where.inserts_lines or indentation(after) >= mode.floor)


def first_line(text: str, where: Surroundings, nested: bool = False) -> str:
    """The completion's first line with content (and its line break, when lines go above the cursor's code),
    with the lines after it that are nested deeper than the document's next line (`nested`): a block the
    completion opens and closes before that line."""
    content = re.search(r"\S", text)
    if content is None:
        return ""
    end = text.find("\n", content.start())
    if end >= 0 and nested and where.targets:
        deeper, base = indentation(where.targets[0]), end + 1
        for start, line, _ in lines_of(text[base:]):
            if line.strip() and (indentation(line) <= deeper or line.strip() == where.targets[0].strip()):
                break  # not nested, or the next line re-typed at another indentation
            if line.strip():
                end = base + start + len(line)
    return text if end < 0 else text[: end + 1 if where.inserts_lines else end]


def finalize(text: str, where: Surroundings, mode: Mode, steps: Collection[str] = DEFAULT_STEPS,
             finished: bool = False) -> Edit:
    """Apply every enabled step's cut to `text` (generation is over) and shape the result. `finished`: the
    model ended the text itself (an end-of-generation token), rather than running into max tokens."""
    ended = "model" if finished else "length"
    for step, find in (
        ("tokens", lambda t: leaked_token(t, where)),
        ("mode", lambda t: mode_cut(t, where, mode)),
        ("repeats", lambda t: repeated_lines(t, where)),
        ("suffix", lambda t: duplicated_suffix(t, where, complete=True, fuzzy="fuzzy" in steps)),
    ):
        if step in steps and (hit := find(text)) is not None:
            text, ended = text[: hit[0]], step
    replace = 0
    if "suffix" in steps:
        first, _, more = text.partition("\n")
        rest = where.line_suffix.strip()
        if (cut := overlap_on_line(text, where)) is not None:
            text = text[:cut]
        elif rest and where.line_prefix.strip() and first.rstrip().endswith(rest):
            if more.strip():  # the first line re-types the rest of the cursor line, and goes on: replace it
                replace = len(where.line_suffix)
            else:
                text = first.rstrip()[: -len(rest)]
    if "brackets" in steps:
        if (hit := closer_cut(text, where, mode, complete=True)) is not None:
            text, ended = text[: hit[0]], "suffix"
        before = where.prefix_balance.copy().run(where.suffix + where.tail).unmatched
        at = excess_opener(where.prefix_balance, text, where.suffix[replace:] + where.tail, before)
        if at is not None:
            line_start = text.rfind("\n", 0, at) + 1
            text = text[: line_start if line_start or not where.line_prefix.strip() else at]
    if "anchor" in steps and mode.multiline and not replace and "\n" in text.strip():
        # A block is kept when it ends where it should: the model's own end, or where it rejoins the document
        # (re-typing the code after the cursor, or its closer); or, with no code after the cursor inside the
        # block, where it leaves the block or runs out of tokens. Otherwise the model is rewriting the code
        # after the cursor rather than filling the hole: keep only its first line.
        anchored = ended in ("model", "tokens", "suffix") or (
            ended in ("mode", "repeats", "length") and not _inside_after(where, mode))
        if not anchored:
            text = first_line(text, where, "nested" in steps)
    text = _shape(text, where)
    if "indent" in steps:
        text = indent.match_style(text, where.prefix + where.suffix, 0 if not where.line_prefix else 1)
        if not where.prefix_balance.stack and not where.prefix_balance.quote:
            text = indent.repair(text, where.prefix, where.line_prefix, where.language, where.prefix + where.suffix)
    if "syntax" in steps:
        text = syntax_cut(text, where, replace)
    if not text.strip():
        return Edit("")
    return Edit(text, replace)


def process(raw: str, where: Surroundings, mode: Mode, steps: Collection[str] = DEFAULT_STEPS,
            finished: bool = False) -> Edit:
    """The whole chain on the model's raw text; an empty text means "no suggestion". No steps: the raw text.
    `finished`: generation ended on an end-of-generation token (not max tokens, not the early stop)."""
    if not steps:
        return Edit(raw)
    text = raw.replace("\r", "")
    end = detect(text, where, mode, steps)
    if end is not None:
        return finalize(text[:end], where, mode, steps)
    return finalize(text, where, mode, steps, finished)


def stop_predicate(where: Surroundings, mode: Mode, steps: Collection[str] = DEFAULT_STEPS) -> Callable[[str], bool] | None:
    """When generation may stop: as soon as `detect` is sure of a cut (None without steps: run to the end)."""
    if not steps:
        return None
    return lambda text: detect(text.replace("\r", ""), where, mode, steps) is not None
