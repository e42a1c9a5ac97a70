"""Code like the code above the cursor, from the workspace's other files and from the parts of the current file
that the prompt's windows leave out: how the names it uses are used elsewhere (a call's arguments, the statement
a common pattern goes on with, a generated sibling's shape).

The import graph shows definitions; this shows uses. Each file is cut into chunks of CHUNK_LINES lines that
overlap by half, scored by the Jaccard similarity of their identifiers with those of the CHUNK_LINES non-blank
lines above the cursor (the cursor line left out, so typing on it changes nothing). The best fill what the
graph left of the budget, up to SHARE tokens; the current file's best chunk, when close enough, goes before the
graph (graph.OWN_FIRST), and its chunks bring the FOLLOW lines after them. Each other file's identifier
postings are kept and rebuilt only when its text changes, so a warm request costs a dictionary lookup per query
identifier per file.
"""

from __future__ import annotations

import heapq
import os
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .imports import identifiers, line_names
from .index import WorkspaceIndex
from .languages import LanguageSpec, language_of
from .lru import Lru

CHUNK_LINES = 12
STRIDE = CHUNK_LINES // 2
MIN_SIMILARITY = 0.15  # below this a chunk shares little more than keywords with the cursor's code
MAX_SNIPPETS = 8
FOLLOW = STRIDE  # lines after an own chunk shown with it: in its own file, what follows code like the cursor's
# is most often what the cursor's code goes on with (a sync twin's `return Response(` for its async twin)
SHARE = 256  # the most tokens of the budget snippets take, and only what the graph left
MAX_FILES = 500  # the files nearest the current one that are searched: a monorepo's far corners cost time
MAX_CUT_FILES = 4 * MAX_FILES  # files whose chunks are kept: a few folders' worth, not a monorepo's
MAX_CUT_CHARS = 16 << 20


@dataclass(frozen=True)
class Snippet:
    """A chunk of another file and how like the cursor's code it is."""

    path: Path
    start: int  # first line, 0-based
    stop: int  # the line after its last
    similarity: float

    @property
    def lines(self) -> frozenset[int]:
        return frozenset(range(self.start, self.stop))

    @property
    def matched(self) -> frozenset[int] | None:
        """The chunk without the lines it brings after it (None: it brings none), for a budget too tight for both."""
        return frozenset(range(self.start, self.start + CHUNK_LINES)) if self.stop > self.start + CHUNK_LINES else None


@dataclass(frozen=True)
class FileChunks:
    """One file's chunks as identifier sets, inverted: identifier -> the chunks holding it."""

    text: str  # the text they were cut from: a file whose text is another object is cut again
    sizes: tuple[int, ...]  # distinct identifiers per chunk
    postings: dict[str, tuple[int, ...]]


def chunk_starts(line_count: int) -> range:
    """First lines of a file's chunks: CHUNK_LINES long, overlapping by half."""
    return range(0, max(1, line_count - CHUNK_LINES + 1), STRIDE)


def jaccard(shared: int, size_a: int, size_b: int) -> float:
    return shared / (size_a + size_b - shared)


def cut(text: str) -> FileChunks:
    lines = text.split("\n")
    sizes = []
    postings: dict[str, list[int]] = defaultdict(list)
    for number, start in enumerate(chunk_starts(len(lines))):
        names = set(identifiers("\n".join(lines[start:start + CHUNK_LINES])))
        sizes.append(len(names))
        for name in names:
            postings[name].append(number)
    return FileChunks(text, tuple(sizes), {name: tuple(chunks) for name, chunks in postings.items()})


def cursor_names(lines: tuple[str, ...] | list[str], cursor_line: int) -> frozenset[str]:
    """Identifiers of the non-blank lines above the cursor line (at most CHUNK_LINES of them)."""
    above = [line for line in lines[max(0, cursor_line - 5 * CHUNK_LINES):cursor_line] if line.strip()]
    return frozenset(identifiers("\n".join(above[-CHUNK_LINES:])))


def similar(chunks: FileChunks, names: frozenset[str]) -> list[tuple[float, int]]:
    """(Jaccard similarity, chunk start line) of the chunks sharing at least one identifier with `names`."""
    shared: dict[int, int] = defaultdict(int)
    for name in names:
        for number in chunks.postings.get(name, ()):
            shared[number] += 1
    return [(jaccard(count, len(names), chunks.sizes[n]), n * STRIDE) for n, count in shared.items()]


def own_chunks(lines: tuple[str, ...], names: frozenset[str], shown: range) -> list[tuple[float, int, int]]:
    """(Jaccard similarity, start line, stop line) of the current document's chunks that the prompt's windows
    leave out, each with the FOLLOW lines after it that the windows leave out too. Its text changes with each
    keystroke, so its chunks are scored directly from per-line cached names rather than cut and cached like the
    other files'."""
    found = []
    for start in chunk_starts(len(lines)):
        if start + CHUNK_LINES > shown.start and start < shown.stop:
            continue
        chunk = set().union(*(line_names(line)[0] for line in lines[start:start + CHUNK_LINES]))
        count = len(chunk & names)
        if count:
            stop = min(start + CHUNK_LINES + FOLLOW, shown.start if start < shown.start else len(lines))
            found.append((jaccard(count, len(names), len(chunk)), start, stop))
    return found


def folder_distance(a: Path, b: Path) -> int:
    """Steps up and down the folder tree from `a` to `b`."""
    shared = 0
    for x, y in zip(a.parts, b.parts):
        if x != y:
            break
        shared += 1
    return len(a.parts) + len(b.parts) - 2 * shared


class SnippetFinder:
    """Per-workspace chunk cache and the search over it."""

    def __init__(self, index: WorkspaceIndex) -> None:
        self.index = index
        self._files: Lru[Path, FileChunks] = Lru(MAX_CUT_FILES, MAX_CUT_CHARS)
        self._lock = threading.Lock()  # `prepare` runs in the background beside requests
        self._nearest: tuple[tuple, list[Path]] = ((), [])

    def candidates(self, current: Path, spec: LanguageSpec) -> list[Path]:
        """Up to MAX_FILES files in the current file's language, nearest its directory first; kept until the
        file set changes or the current directory does."""
        key = (current.parent, spec.name, self.index.generation)
        nearest = self._nearest  # one read: `prepare` may set it from another thread meanwhile
        if nearest[0] != key:
            distances: dict[str, int] = {}  # per folder, not per file, and on strings: a monorepo lists 50,000

            def rank(path: Path) -> tuple[int, str]:
                text = str(path)
                folder = text.rpartition(os.sep)[0]
                distance = distances.get(folder)
                if distance is None:
                    distance = distances[folder] = folder_distance(Path(folder), current.parent)
                return distance, text

            listed = [path for path in self.index.files() if language_of(path) is spec]
            nearest = self._nearest = (key, heapq.nsmallest(MAX_FILES, listed, key=rank))
        return nearest[1]

    def _chunks(self, path: Path) -> FileChunks | None:
        text = self.index.text(path)
        with self._lock:
            cached = self._files.get(path)
            if text is None:
                self._files.pop(path)
                return None
        if cached is None or (cached.text is not text and cached.text != text):
            cached = cut(text)
            with self._lock:
                self._files.put(path, cached, len(text))
        return cached

    def _nearby(self, current: Path, spec: LanguageSpec) -> Iterator[tuple[Path, FileChunks]]:
        """The candidate files other than the current one, with their chunks."""
        for listed in self.candidates(current, spec):
            path = self.index.is_file(listed)
            if path is None or path == current:
                continue
            chunks = self._chunks(path)
            if chunks is not None:
                yield path, chunks

    def prepare(self, current: Path, spec: LanguageSpec) -> None:
        """Cut the files near `current` into chunks ahead of its first request (the bulk of that request's time
        when the folder is new: 100 ms in a 10,000-file repository)."""
        for _ in self._nearby(current, spec):
            pass

    def find(self, current: Path, spec: LanguageSpec, lines: tuple[str, ...], cursor_line: int,
             shown: range | None = None) -> list[Snippet]:
        """The most similar chunks of other files in the current file's language, and of the current document
        outside `shown` (the lines the prompt's windows carry; None: unknown, so none of its own), best first
        (ties by path)."""
        names = cursor_names(lines, cursor_line)
        if not names:
            return []
        found: list[tuple[float, str, int, int, Path]] = []
        if shown is not None:
            found += [(score, str(current), start, stop, current)
                      for score, start, stop in own_chunks(lines, names, shown) if score >= MIN_SIMILARITY]
        for path, chunks in self._nearby(current, spec):
            found += [(score, str(path), start, start + CHUNK_LINES, path) for score, start in similar(chunks, names)
                      if score >= MIN_SIMILARITY]
        found.sort(key=lambda hit: (-hit[0], hit[1], hit[2]))
        return [Snippet(path, start, stop, score) for score, _, start, stop, path in found[:MAX_SNIPPETS]]
