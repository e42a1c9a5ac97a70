"""Baseline (c) for bench/crossfile.py: the nearest files instead of the import graph — the other files of the
current file's directory (nearest first: same directory, then its parent), each from its top, cut to fit.
Bench-only: the server's default path never uses it."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from codegemma_lsp.completion import CompletionRequest, ContextProvider
from codegemma_lsp.context.crossfile import uri_to_path
from codegemma_lsp.context.index import WorkspaceIndex
from codegemma_lsp.prompt import ContextFile
from codegemma_lsp.window import Tokenize


def entry_cost(rel: str, tokenize: Tokenize) -> int:
    """What a context entry costs besides its content: its path line and the separator around it."""
    return len(tokenize(f"# {rel}\n")) + 2


def fit_lines(text: str, room: int, tokenize: Tokenize) -> list[int]:
    """The token ids of `text`'s whole lines from the top, as many as fit in `room` tokens."""
    ids: list[int] = []
    for line in text.split("\n"):
        line_ids = tokenize(line + "\n")
        if len(ids) + len(line_ids) > room:
            break
        ids.extend(line_ids)
    return ids


class NearbyFiles(ContextProvider):
    def __init__(self, index: WorkspaceIndex, per_file: int = 512) -> None:
        self.index = index
        self.per_file = per_file

    def candidates(self, current: Path) -> list[Path]:
        out = [p for p in self.index.list_dir(current.parent) if p != current and p.suffix == current.suffix]
        out.sort(key=lambda p: (p.name.startswith("_"), p.name))
        parent = [p for p in self.index.list_dir(current.parent.parent) if p.suffix == current.suffix]
        return out + sorted(parent)

    def gather(self, request: CompletionRequest, budget: int, tokenize: Tokenize, *,
               ahead: bool = False, shown: range | None = None) -> Sequence[ContextFile]:
        path = uri_to_path(request.uri)
        current = self.index.confine(path) if path else None
        if current is None:
            return ()
        used = len(tokenize(f"{request.repo}\n")) + 1
        out: list[ContextFile] = []
        for candidate in self.candidates(current):
            text = self.index.text(candidate)
            if not text:
                continue
            rel = self.index.relative(candidate)
            cost = entry_cost(rel, tokenize)
            room = min(self.per_file, budget - used - cost)
            if room < 64:
                break
            ids = fit_lines(text, room, tokenize)
            out.append(ContextFile(rel, tuple(ids)))
            used += len(ids) + cost
        return out
