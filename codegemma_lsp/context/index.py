"""The workspace as cross-file context sees it: confined reads, open documents first, facts cached by content.

Every read goes through `confine`: the path is resolved (symlinks, `..`) and must lie inside a workspace
folder, outside skipped directories (.git, virtualenvs, node_modules, build output), be a regular file of at
most `max_bytes` and not binary. Open documents' text always wins over disk. Parsed facts are cached by
(language, content hash), disk reads by (mtime, size), so a warm request re-parses only what changed.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from pathlib import Path

from .imports import FileFacts, extract
from .languages import language_of
from .lru import Lru

SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", "node_modules", ".venv", "venv", "env", ".env", "__pycache__", ".tox", ".nox",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", "site-packages", "build", "dist", "target", "out", ".next",
    ".gradle", ".idea", ".vscode", "bazel-bin", "bazel-out", ".eggs", "vendor-bin", "_build", "cmake-build-debug",
})
MAX_BYTES = 1 << 20
MAX_FACT_CHARS = 4 << 20  # parsed facts kept, in characters of the texts they came from (~6 bytes each)
MAX_DISK_CHARS = 32 << 20  # file texts kept from disk: a monorepo's every file read would be gigabytes
MAX_WALK_FILES = 50_000
MAX_DOCUMENT_FACTS = 64  # documents whose latest facts are kept, one version each
MEMO_SECONDS = 30.0  # resolutions are remembered this long, or until a file event says the file set changed


def _skipped_dir(name: str) -> bool:
    return name in SKIP_DIRS or name.endswith(".egg-info")


class WorkspaceIndex:
    """Workspace folders, open documents and a per-file cache of parsed facts. Thread-safe."""

    def __init__(self, roots: list[Path] | tuple[Path, ...] = (), *, max_bytes: int = MAX_BYTES,
                 cache_size: int = 20_000) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.RLock()
        self._walk_lock = threading.Lock()  # one file walk at a time; taken before `_lock`, never inside it
        self._roots: tuple[Path, ...] = ()
        self._open: dict[Path, str] = {}
        # path -> (mtime_ns, size, digest, text)
        self._disk: Lru[Path, tuple[int, int, str, str]] = Lru(cache_size, MAX_DISK_CHARS)
        # Also bounded by text size: facts hold their file's lines, so a count alone does not bound memory.
        self._facts: Lru[tuple[str, str], FileFacts] = Lru(cache_size, MAX_FACT_CHARS)
        # path -> (language, digest, facts, text): the text object itself lets a read skip the hash
        self._document_facts: Lru[Path, tuple[str, str, FileFacts, str]] = Lru(MAX_DOCUMENT_FACTS)
        self._files: dict[Path, tuple[Path, ...]] | None = None  # root -> walked files (lazy)
        self._by_name: dict[str, list[Path]] | None = None
        self._listing = 0  # bumped when the file list is dropped: a walk started before then is stale
        self.generation = 0  # bumped whenever the set of files may have changed
        self._memo: dict = {}
        self._memo_key: tuple = ()
        self.set_roots(roots)

    # --- workspace folders and documents ----------------------------------------------------------------------

    def set_roots(self, roots) -> None:
        resolved = []
        for root in roots:
            try:
                path = Path(root).resolve(strict=True)
                if not path.is_dir():
                    continue
            except (OSError, ValueError):  # missing, unreadable, or not a path at all (NUL, lone surrogates)
                continue
            if path not in resolved:
                resolved.append(path)
        with self._lock:
            self._roots = tuple(resolved)
            self._forget_files()

    @property
    def roots(self) -> tuple[Path, ...]:
        return self._roots

    def set_open(self, path: Path | str, text: str) -> None:
        key = self._key(path)
        with self._lock:
            new = key not in self._open
            self._open[key] = text
            if new:
                self.generation += 1

    def close(self, path: Path | str) -> None:
        key = self._key(path)
        with self._lock:
            self._document_facts.pop(key)
            if self._open.pop(key, None) is not None:
                self.generation += 1

    def changed_on_disk(self, paths, *, created_or_deleted: bool = True) -> None:
        """didSave / didChangeWatchedFiles: forget cached reads; new or deleted files reset the file list."""
        with self._lock:
            for path in paths:
                self._disk.pop(self._key(path))
            if created_or_deleted:
                self._forget_files()

    def _forget_files(self) -> None:
        self._files = None
        self._by_name = None
        self._listing += 1
        self.generation += 1

    @staticmethod
    def _key(path: Path | str) -> Path:
        try:
            return Path(os.path.realpath(path))
        except (OSError, ValueError):
            return Path(path)

    def memo(self) -> dict:
        """A scratch cache for path checks and import resolutions, emptied whenever the file set may have changed
        (a file event, a document opened or closed) and at least every MEMO_SECONDS for clients that send none."""
        key = (self.generation, int(time.monotonic() // MEMO_SECONDS))
        if key != self._memo_key:
            self._memo, self._memo_key = {}, key
        return self._memo

    # --- confinement ----------------------------------------------------------------------------------------

    def root_of(self, path: Path) -> Path | None:
        for root in self._roots:
            if path == root or path.is_relative_to(root):
                return root
        return None

    def confine(self, path: Path | str) -> Path | None:
        """The real path if it may be read as context: inside a workspace folder and not in a skipped directory."""
        memo = self.memo()
        key = ("confine", str(path))
        if key not in memo:
            memo[key] = self._confine(path)
        return memo[key]

    def _confine(self, path: Path | str) -> Path | None:
        try:
            real = Path(os.path.realpath(path))
        except (OSError, ValueError):
            return None
        root = self.root_of(real)
        if root is None:
            return None
        if any(_skipped_dir(part) for part in real.relative_to(root).parts[:-1]):
            return None
        return real

    def relative(self, path: Path) -> str:
        root = self.root_of(path)
        return path.relative_to(root).as_posix() if root else path.name

    def is_file(self, path: Path | str) -> Path | None:
        """The confined real path of an existing readable source file, else None."""
        real = self.confine(path)
        if real is None:
            return None
        if real in self._open:
            return real
        memo = self.memo()
        key = ("file", real)
        if key not in memo:
            try:
                st = os.stat(real)
                memo[key] = real if stat.S_ISREG(st.st_mode) and st.st_size <= self.max_bytes else None
            except (OSError, ValueError):
                memo[key] = None
        return memo[key]

    def is_dir(self, path: Path | str) -> Path | None:
        real = self.confine(Path(path) / "_")
        return real.parent if real is not None and real.parent.is_dir() else None

    def list_dir(self, directory: Path) -> list[Path]:
        """Source files directly in `directory` (confined), sorted."""
        real = self.is_dir(directory)
        if real is None:
            return []
        try:
            names = sorted(os.listdir(real))
        except OSError:
            return []
        out = []
        for name in names:
            if language_of(name) is not None and (path := self.is_file(real / name)) is not None:
                out.append(path)
        return out

    # --- reading and facts --------------------------------------------------------------------------------------

    def text(self, path: Path | str) -> str | None:
        """An open document's text, else the file on disk if it passes every check."""
        real = self.is_file(path)
        if real is None:
            return None
        with self._lock:
            if (opened := self._open.get(real)) is not None:
                return opened
        read = self._read(real)
        return read[1] if read else None

    def _read(self, real: Path) -> tuple[str, str] | None:
        try:
            st = os.stat(real)
        except OSError:
            return None
        with self._lock:
            cached = self._disk.get(real)
        if cached is not None and cached[0] == st.st_mtime_ns and cached[1] == st.st_size:
            return cached[2], cached[3]
        if not stat.S_ISREG(st.st_mode) or st.st_size > self.max_bytes:
            return None
        try:
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as fh:
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    return None
                data = fh.read(self.max_bytes + 1)
        except OSError:
            return None
        if len(data) > self.max_bytes or b"\0" in data[:8192]:
            return None
        text = data.decode("utf-8", errors="replace")
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        with self._lock:
            self._disk.put(real, (st.st_mtime_ns, st.st_size, digest, text), len(text))
        return digest, text

    def facts(self, path: Path | str) -> FileFacts | None:
        real = self.is_file(path)
        spec = language_of(real) if real is not None else None
        if real is None or spec is None:
            return None
        with self._lock:
            opened = self._open.get(real)
        if opened is not None:
            return self._document_facts_at(real, opened, spec.name)
        read = self._read(real)
        if read is None:
            return None
        return self._facts_cached(read[0], read[1], spec.name)

    def document_facts(self, path: Path | str, text: str, language: str) -> FileFacts:
        """Facts of a document's current text, kept in one slot per document: every keystroke makes a new text,
        and caching each version by content let typing push unchanged files out of the shared cache and grow
        memory by megabytes per thousand keystrokes."""
        return self._document_facts_at(self._key(path), text, language)

    def _document_facts_at(self, key: Path, text: str, language: str) -> FileFacts:
        with self._lock:
            slot = self._document_facts.get(key)
        if slot is not None and slot[3] is text and slot[0] == language:
            return slot[2]  # the very text of last time: a dependency open in the editor is read per request
        digest = hashlib.blake2b(text.encode("utf-8", errors="surrogatepass"), digest_size=16).hexdigest()
        if slot is not None and slot[:2] == (language, digest):
            return slot[2]
        facts = extract(text, language)
        with self._lock:
            if key in self._open:  # only open documents get a slot: work ahead may finish after didClose
                self._document_facts.put(key, (language, digest, facts, text))
        return facts

    def _facts_cached(self, digest: str, text: str, language: str) -> FileFacts:
        key = (language, digest)
        with self._lock:
            facts = self._facts.get(key)
        if facts is not None:
            return facts
        facts = extract(text, language)
        with self._lock:
            self._facts.put(key, facts, len(text))
        return facts

    # --- the file list (for longest-suffix matching and the nearby baseline) -------------------------------------

    def files(self) -> tuple[Path, ...]:
        """Every source file of the workspace folders. The walk runs outside the main lock, so the editor's
        edits (`set_open`) never wait for it; a walk that a file-set change overtook is done again."""
        with self._walk_lock:
            while True:
                with self._lock:
                    if self._files is not None:
                        return tuple(p for paths in self._files.values() for p in paths)
                    roots, listing = self._roots, self._listing
                walked = {root: tuple(self._walk(root)) for root in roots}
                with self._lock:
                    if self._listing == listing:
                        self._files, self._by_name = walked, {}
                        for paths in walked.values():
                            for path in paths:
                                self._by_name.setdefault(path.name, []).append(path)

    def file_count(self) -> int | None:
        """How many files the last walk listed; None until one has finished. Never walks or waits."""
        listed = self._files
        return None if listed is None else sum(len(paths) for paths in listed.values())

    def by_name(self, name: str) -> list[Path]:
        self.files()
        return list((self._by_name or {}).get(name, ()))

    def _walk(self, root: Path):
        count = 0
        stack = [root]
        while stack and count < MAX_WALK_FILES:
            directory = stack.pop()
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError:
                continue
            subdirs = []
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if not _skipped_dir(entry.name) and not entry.name.startswith("."):
                            subdirs.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False) and language_of(entry.name) is not None:
                        if entry.stat(follow_symlinks=False).st_size <= self.max_bytes:
                            count += 1
                            yield Path(entry.path)
                except OSError:
                    continue
            stack.extend(reversed(subdirs))

    def suffix_match(self, candidate: str, near: Path | None = None, min_parts: int = 1) -> Path | None:
        """The workspace file whose path shares the longest trailing run of segments with `candidate` (at least
        `min_parts`); ties go to the file nearest `near`, then the shortest path, then alphabetical order."""
        parts = [p for p in candidate.split("/") if p and p != "."]
        if not parts:
            return None
        best: tuple | None = None
        for path in self.by_name(parts[-1]):
            root = self.root_of(path)
            rel = path.relative_to(root).parts if root else path.parts
            n = 0
            while n < min(len(rel), len(parts)) and rel[-1 - n] == parts[-1 - n]:
                n += 1
            if n < min_parts:
                continue
            distance = 0
            if near is not None:
                common = len(os.path.commonpath([str(path.parent), str(near.parent)])) if root else 0
                distance = -common
            key = (-n, distance, len(rel), str(path))
            if best is None or key < best[0]:
                best = (key, path)
        return self.confine(best[1]) if best else None
