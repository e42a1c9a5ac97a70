"""What a completion repeats: the document after the cursor (the model ran past the hole), its own lines (a
loop), the line above the cursor. Each finder returns (cut, detected): where the completion should end, and the
point in the text at which that became certain (it looks at nothing after that point)."""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import TYPE_CHECKING

from .indent import indentation

if TYPE_CHECKING:
    from .postprocess import Surroundings

FUZZY_RATIO = 0.75  # how alike (difflib ratio) a line must be to the document's next line to count as re-typing it


def lines_of(text: str) -> list[tuple[int, str, bool]]:
    """(start offset, line, complete) for each line of `text`; complete: a line break follows it."""
    out, start = [], 0
    for line in text.split("\n"):
        end = start + len(line)
        out.append((start, line, end < len(text)))
        start = end + 1
    return out


def _substantial(lines: list[str]) -> bool:
    return sum(len(line.strip()) for line in lines) >= 10 and any(c.isalnum() for line in lines for c in line)


def repeated_lines(text: str, where: Surroundings) -> tuple[int, int] | None:
    """The start of the first block of 1-3 lines that repeats, indentation included, the block just before it (in
    the completion, or the document's lines just above a blank cursor line)."""
    lines = [(start, (where.line_prefix if start == 0 else "") + line.rstrip())
             for start, line, complete in lines_of(text) if complete]
    above: list[str] = []
    if not where.line_prefix.strip():
        above = [line.rstrip() for line in where.prefix.split("\n")[:-1] if line.strip()][-3:]
    for i in range(len(lines)):
        end = text.index("\n", lines[i][0]) + 1
        for k in range(1, 4):
            block = [line for _, line in lines[i - k + 1 : i + 1]]
            if not any(c.isalnum() for line in block for c in line) or i + 1 < k:
                continue
            seen = lines[: i - k + 1]
            if i + 1 >= 2 * k and block == [line for _, line in seen[-k:]]:
                if _substantial(block):
                    return lines[i - k + 1][0], end
                if i + 1 >= 3 * k and block == [line for _, line in seen[-2 * k : -k]]:
                    return lines[i - 2 * k + 1][0], end  # a short line (or block) three times over
            elif i + 1 == k and len(above) >= k and block == above[-k:] and _substantial(block):
                return 0, end
    return None


def _matches(text_lines: list[tuple[int, str, bool]], j: int, where: Surroundings, partial: bool) -> int:
    """How many non-blank lines of the completion from line j on equal the document's lines after the cursor, in
    order and with their indentation; -1 on a mismatch. With `partial`, an unfinished last line may be the start
    of its document line."""
    targets, count = where.targets, 0
    mid_line = bool(where.line_prefix.strip())
    for index, (_, line, complete) in enumerate(text_lines[j:], start=j):
        if index == 0:
            line = where.line_prefix + line
        if not line.strip():
            continue
        if count >= len(targets):
            return -1
        target = targets[count]
        if count == 0 and mid_line and where.line_suffix.strip():
            same = line.strip() == target
        else:
            same = line.rstrip() == target or (partial and not complete and target.startswith(line))
        if not same:
            return -1
        count += 1
    return count


def _resembles(line: str, target: str) -> bool:
    """A line that is a variant of the document's next line: same indentation, mostly the same characters."""
    if indentation(line) != indentation(target):
        return False
    return SequenceMatcher(None, line.strip(), target.strip(), autojunk=False).ratio() >= FUZZY_RATIO


def duplicated_suffix(text: str, where: Surroundings, complete: bool, fuzzy: bool = False) -> tuple[int, int] | None:
    """The first line of the completion from which it re-types the document after the cursor.

    Sure during generation (`complete` False) once two lines, or one line of 10+ characters, match; at the end,
    any run of lines to the end of the completion that matches (the last one possibly cut short) counts. With
    `fuzzy`, a later line that resembles the document's next line (a variant of it) counts too.
    """
    if not where.targets:
        return None
    lines = lines_of(text)
    first = 0 if not where.line_prefix.strip() else 1
    candidates = [j for j in range(first, len(lines)) if lines[j][1].strip()]
    for i, (start, line, done) in enumerate(lines):
        if not done or not line.strip():
            continue
        head = [(s, ln, True) for s, ln, _ in lines[: i + 1]]
        for j in candidates:
            if j > i:
                break
            count = _matches(head, j, where, False)
            if count >= 2 or (count == 1 and len(where.targets[0].strip()) >= 10):
                return lines[j][0], start + len(line) + 1
        if fuzzy and i >= 1 and not where.line_prefix.strip() and _resembles(line, where.targets[0]):
            return start, start + len(line) + 1
    if complete:
        for j in candidates:
            if _matches(lines, j, where, True) > 0:
                return lines[j][0], len(text)
    return None


def overlap_on_line(text: str, where: Surroundings) -> int | None:
    """A one-line completion in the middle of a line that ends by re-typing the rest of the line (all of it, or
    the closing punctuation it starts with): where the completion should end."""
    rest = where.line_suffix.strip()
    if not rest or not where.line_prefix.strip() or "\n" in text:
        return None
    body = text.rstrip()
    if body.endswith(rest):
        cut = len(body) - len(rest)
        return len(body[:cut].rstrip()) if where.line_suffix[:1].isspace() else cut
    for k in range(min(len(body), len(rest)) - 1, 0, -1):
        if body.endswith(rest[:k]) and not any(c.isalnum() or c == "_" for c in rest[:k]):
            return len(body) - k
    return None
