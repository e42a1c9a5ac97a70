"""LSP positions <-> code-point offsets, reading only the lines involved.

LSP counts lines at `\\n`, `\\r\\n` and `\\r` only (not at form feeds or U+2028, which `str.splitlines` also
splits on) and columns in the negotiated encoding's code units: UTF-16 by default, UTF-8 or UTF-32 when both
sides agree. A keystroke in a 50 MB document must not split the whole text into lines, so the line is found by
counting line breaks chunk by chunk at C speed and the column is converted on that one line, with the codec
doing the counting. Pure functions: no LSP types, no I/O.
"""

from __future__ import annotations

import re

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"
_CHUNK = 1 << 16  # characters whose line breaks are counted at once
_SURROGATE = re.compile("[\ud800-\udfff]")
_BREAK = re.compile(r"\r\n|\r|\n")


def _breaks(text: str, start: int, end: int) -> int:
    """Line breaks in text[start:end], `\\r\\n` counted once (the range never splits one)."""
    count = text.count("\n", start, end)
    returns = text.count("\r", start, end)
    if returns:
        count += returns - text.count("\r\n", start, end)
    return count


def line_bounds(text: str, start: int) -> tuple[int, int]:
    """(end of the line's content, start of the next line) for the line that starts at `start`."""
    newline = text.find("\n", start)
    stop = newline if newline >= 0 else len(text)
    ret = text.find("\r", start, stop)
    if ret >= 0:
        return ret, ret + (2 if text.startswith("\n", ret + 1) else 1)
    return (newline, newline + 1) if newline >= 0 else (len(text), len(text))


def line_start(text: str, line: int, known: tuple[int, int] = (0, 0)) -> int | None:
    """Offset where 0-based `line` starts, or None when the text has fewer lines. A text ending with a line
    break has an empty last line after it, as editors show. `known` is a (line, offset) of a line start to
    count from when it is not past `line` (what the caller found last time, still valid)."""
    if line <= 0:
        return 0 if line == 0 else None
    known_line, pos = known if 0 <= known[0] <= line else (0, 0)
    remaining, size = line - known_line, len(text)
    if remaining == 0:
        return pos
    while True:
        if pos >= size:
            return None
        end = min(pos + _CHUNK, size)
        if end < size and text[end - 1] == "\r" and text[end] == "\n":
            end += 1  # never split a \r\n between two chunks
        count = _breaks(text, pos, end)
        if count >= remaining:
            break
        remaining -= count
        pos = end
    while remaining:
        pos = line_bounds(text, pos)[1]
        remaining -= 1
    return pos


def _unit_length(char: str, encoding: str) -> int:
    point = ord(char)
    if encoding == UTF16:
        return 2 if point > 0xFFFF else 1
    if encoding == UTF8:
        return 1 if point < 0x80 else 2 if point < 0x800 else 3 if point < 0x10000 else 4
    return 1


def to_index(line: str, units: int, encoding: str) -> int:
    """Code points of `line` (no line break) covered by `units` code units; past the end clamps to the end and
    a column inside a character rounds down to its start."""
    if units <= 0:
        return 0
    if encoding not in (UTF8, UTF16) or line.isascii():
        return min(units, len(line))
    if _SURROGATE.search(line):  # lone surrogates (JSON can carry them): count one character at a time
        seen = 0
        for index, char in enumerate(line):
            seen += _unit_length(char, encoding)
            if seen > units:
                return index
        return len(line)
    if encoding == UTF16:
        data = line.encode("utf-16-le")
        cut = data[: 2 * units]
        if len(cut) >= 2 and 0xD8 <= cut[-1] <= 0xDB:  # the first half of a surrogate pair: round down
            cut = cut[:-2]
        return len(cut.decode("utf-16-le"))
    return len(line.encode("utf-8")[:units].decode("utf-8", errors="ignore"))


def to_units(line: str, index: int, encoding: str) -> int:
    """Code units of the first `index` code points of `line`."""
    head = line[: max(index, 0)]
    if encoding not in (UTF8, UTF16) or head.isascii():
        return len(head)
    if encoding == UTF16:
        return len(head.encode("utf-16-le", errors="surrogatepass")) // 2
    return len(head.encode("utf-8", errors="surrogatepass"))


def offset_at(text: str, line: int, units: int, encoding: str) -> int | None:
    """Code-point offset of an LSP position; None when the line is past the end. Columns past the end of the
    line clamp to it (before its line break)."""
    start = line_start(text, line)
    if start is None:
        return None
    end = line_bounds(text, start)[0]
    # A code point is at least one unit, so the column lies within the first `units` characters.
    return start + to_index(text[start : min(end, start + max(units, 0))], units, encoding)


def line_text(text: str, line: int) -> str:
    """The text of `line` without its line break ("" past the end)."""
    start = line_start(text, line)
    if start is None:
        return ""
    return text[start : line_bounds(text, start)[0]]


def split_lines(text: str) -> list[str]:
    """Lines with their breaks, split where LSP splits them (`str.splitlines` also splits at \\f, \\v, U+2028 …)."""
    lines, pos = [], 0
    for match in _BREAK.finditer(text):
        lines.append(text[pos : match.end()])
        pos = match.end()
    if pos < len(text):
        lines.append(text[pos:])
    return lines
