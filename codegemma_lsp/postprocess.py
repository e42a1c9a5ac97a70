"""Raw model text -> the text a careful programmer would accept. Pure functions only.

The model runs on past the hole and happily rewrites the code after the cursor; these steps decide how much
to show (single line or a block), cut what the document already has, and drop empty results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

BLOCK_OPENERS = (":", "{", "(", "[", "=>", "->")


@dataclass(frozen=True)
class Mode:
    """How much text one suggestion may span, decided from the cursor's surroundings."""

    multiline: bool
    indent: str  # indentation of the block the cursor is in (multi-line completions stay inside it)


def indentation(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def decide_mode(line_prefix: str, line_suffix: str, next_line: str = "") -> Mode:
    """Single-line when the cursor sits inside code on its line; a block when it opens one or is on a blank line.

    Text after the cursor on the same line means the user is finishing that line. A blank line, or a line that
    ends with a block opener, invites a block whose lines must stay at least as indented as the cursor's.
    """
    if line_suffix.strip() and line_suffix.strip() not in (")", "]", "}", "):", "];", ");", "},"):
        return Mode(multiline=False, indent=indentation(line_prefix))
    stripped = line_prefix.rstrip()
    if not stripped:
        # A blank line: the block is at the cursor's indentation, or the next line's if the cursor is at column 0.
        indent = line_prefix if line_prefix else indentation(next_line)
        return Mode(multiline=True, indent=indent)
    if stripped.endswith(BLOCK_OPENERS):
        return Mode(multiline=True, indent=indentation(line_prefix))
    return Mode(multiline=False, indent=indentation(line_prefix))


def stop_predicate(mode: Mode, line_prefix: str) -> Callable[[str], bool]:
    """When generation may stop early: end of line (single-line) or the block's end (multi-line)."""
    if not mode.multiline:
        return lambda text: "\n" in text.lstrip("\n") if not line_prefix.strip() else "\n" in text

    def block_done(text: str) -> bool:
        lines = (line_prefix + text).split("\n")
        # Complete lines after the first: a non-blank one indented less than the block ends it.
        return any(line.strip() and len(indentation(line)) < len(mode.indent) for line in lines[1:-1])

    return block_done


def cut_to_mode(text: str, mode: Mode, line_prefix: str) -> str:
    """Keep the first line (single-line), or the lines that stay inside the cursor's block (multi-line)."""
    if not mode.multiline:
        lead = len(text) - len(text.lstrip("\n")) if not line_prefix.strip() else 0
        first = text[lead:].split("\n", 1)[0]
        return text[:lead] + first
    lines = text.split("\n")
    kept = [lines[0]]
    for line in lines[1:]:
        if line.strip() and len(indentation(line)) < len(mode.indent):
            break
        kept.append(line)
    return "\n".join(kept).rstrip()


def trim_suffix_overlap(text: str, line_prefix: str, line_suffix: str, following: str) -> str:
    """Drop what the document already has after the cursor.

    On the cursor line: the longest end of the completion that is a start of the rest of the line (the model
    re-typed the closing `)` the editor already inserted). Below it: trailing completion lines that repeat the
    next lines of the document (compared as whole lines, the cursor line including its text before the cursor).
    """
    rest = line_suffix.strip()
    if rest and "\n" not in text.strip("\n"):
        body = text.rstrip()
        for k in range(min(len(body), len(rest)), 0, -1):
            if body.endswith(rest[:k]):
                return body[:-k]
        return text
    next_lines = [line.strip() for line in following.split("\n") if line.strip()][:8]
    lines = (line_prefix + text).split("\n")
    tail = [line.strip() for line in lines if line.strip()]
    repeated = next((n for n in range(min(len(tail), len(next_lines)), 0, -1) if tail[-n:] == next_lines[:n]), 0)
    while repeated:  # remove the repeated non-blank lines (and the blank lines among them) from the end
        if lines.pop().strip():
            repeated -= 1
    return "\n".join(lines)[len(line_prefix):].rstrip() if lines else ""


def finish(text: str, mode: Mode, line_prefix: str, line_suffix: str, following: str) -> str:
    """The full post-processing chain; an empty string means "no suggestion"."""
    text = cut_to_mode(text.replace("\r\n", "\n"), mode, line_prefix)
    text = trim_suffix_overlap(text, line_prefix, line_suffix, following)
    if not mode.multiline:
        text = text.rstrip()
    return text if text.strip() else ""
