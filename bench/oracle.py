"""An upper bound for bench/crossfile.py (--modes oracle): the context holds exactly the definitions of the names
the hidden text uses, read from the case's answer — the issue's pre-code measurement ("only the definitions of
the hidden names, their source cut at 40 lines"), now through the real server on every case. It reads the
answer on purpose, so it measures what perfect selection could give the model; the server never uses it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from codegemma_lsp.completion import CompletionRequest, ContextProvider
from codegemma_lsp.context.crossfile import uri_to_path
from codegemma_lsp.context.imports import identifiers
from codegemma_lsp.context.index import WorkspaceIndex
from codegemma_lsp.prompt import ContextFile
from codegemma_lsp.window import Tokenize
from nearby import entry_cost, fit_lines

MAX_LINES = 40


class HiddenDefinitions(ContextProvider):
    def __init__(self, index: WorkspaceIndex, cases: Path) -> None:
        self.index = index
        self.cases = [json.loads(line) for line in cases.open()]

    def case(self, request: CompletionRequest) -> dict | None:
        """The benchmark case this request completes: same file, same text, same cursor."""
        for case in self.cases:
            if (case["path"] == request.path and len(case["prefix"]) == request.offset
                    and case["prefix"] + case["suffix"] == request.text):
                return case
        return None

    def gather(self, request: CompletionRequest, budget: int, tokenize: Tokenize, *,
               ahead: bool = False, shown: range | None = None) -> Sequence[ContextFile]:
        path = uri_to_path(request.uri)
        case = self.case(request) if path and self.index.confine(path) else None
        if case is None:
            return ()
        root = self.index.roots[0]
        hidden = set(identifiers(case["middle"]))
        used = len(tokenize(f"{request.repo}\n")) + 1
        out: list[ContextFile] = []
        for rel in case["imported_module_paths"]:
            facts = self.index.facts(root / rel)
            if facts is None:
                continue
            chunks = ["\n".join(facts.lines[d.start:min(d.end + 1, d.start + MAX_LINES)])
                      for d in facts.definitions if d.parent is None and d.name in hidden]
            if not chunks:
                continue
            cost = entry_cost(rel, tokenize)
            ids = fit_lines("\n\n".join(chunks), budget - used - cost, tokenize)
            if ids:
                out.append(ContextFile(rel, tuple(ids)))
                used += len(ids) + cost
        return out
