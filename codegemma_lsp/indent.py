"""Indentation for post-processing: the document's style (tabs or spaces, and the unit), and a completion
re-indented to fit the block the cursor is in. Pure functions over text."""

from __future__ import annotations

INDENT_IS_SYNTAX = ("python",)  # languages where a line's indentation decides which block it belongs to
_CONTINUES = ("\\", ",", "(", "[", "{")


def indentation(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def style(text: str) -> str:
    """The indentation character most lines of `text` start with."""
    lines = text.split("\n")
    tabs = sum(1 for line in lines if line.startswith("\t"))
    spaces = sum(1 for line in lines if line.startswith(" "))
    return "\t" if tabs > spaces else " "


def unit(text: str) -> int:
    """Spaces per indentation level in `text`: 2 when some indented line is not a multiple of 4, else 4."""
    widths = [indentation(line) for line in text.split("\n") if line.startswith(" ") and line.strip()]
    return 2 if any(w % 4 for w in widths) else 4


def match_style(text: str, window: str, first: int) -> str:
    """Re-indent lines `first`.. of `text` with the indentation character of the document (`window`)."""
    want = style(window)
    lines = text.split("\n")
    body = [line for line in lines[first:] if line.strip()]
    if not body or not any(line[:1] in " \t" for line in body) or style("\n".join(body)) == want:
        return text
    size = unit(window if want == " " else "\n".join(body))
    for i in range(first, len(lines)):
        width = indentation(lines[i])
        head = lines[i][:width]
        if want == "\t":
            spaces = len(head.expandtabs(size))
            head = "\t" * (spaces // size) + " " * (spaces % size)
        else:
            head = head.replace("\t", " " * size)
        lines[i] = head + lines[i][width:]
    return "\n".join(lines)


def _previous_code_line(prefix: str) -> str | None:
    """The last line before the cursor's line with code on it (comment-only lines skipped)."""
    for line in reversed(prefix.split("\n")[:-1]):
        if line.strip() and not line.lstrip().startswith("#"):
            return line
    return None


def repair(text: str, prefix: str, line_prefix: str, language: str, window: str) -> str:
    """In a language where indentation is syntax, a completion starting a line must sit where the previous line
    allows: one level deeper after a line that opens a block (`if x:`), and no deeper than the previous line
    otherwise. The model's lines keep their relative indentation and move together; anything else is left as is.
    The caller makes sure the cursor is in code (not inside brackets or a string)."""
    if language not in INDENT_IS_SYNTAX or line_prefix.strip() or style(window) != " ":
        return text
    lines = text.split("\n")
    index = next((i for i, line in enumerate(lines) if line.strip()), None)
    previous = _previous_code_line(prefix)
    if index is None or previous is None:
        return text
    first = indentation(lines[index]) + (len(line_prefix) if index == 0 else 0)
    code = previous.split("#", 1)[0].rstrip()
    level = indentation(previous)
    if code.endswith(":"):
        want = level + unit(window) if first <= level else first
    elif first > level and not code.endswith(_CONTINUES):
        want = level
    else:
        want = first
    delta = want - first
    if delta == 0 or any(line.strip() and indentation(line) < -delta for line in lines[index:]):
        return text
    for i in range(index, len(lines)):
        if lines[i].strip():
            lines[i] = " " * delta + lines[i] if delta > 0 else lines[i][-delta:]
    return "\n".join(lines)
