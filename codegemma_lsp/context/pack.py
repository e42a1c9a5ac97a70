"""Packing chosen lines into the token budget and rendering them: exactly the ids that will be sent are counted.

A file's content is its kept lines in source order; a run of skipped lines inside a body becomes one elision
marker at the skipped code's indentation (`...` in Python, `// ...` elsewhere), a gap between top-level blocks a
blank line. Each line is tokenized on its own through the per-text cache, so re-rendering is cheap and the ids
of a file that did not change are identical from one request to the next.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..window import Tokenize
from .index import WorkspaceIndex
from .languages import BY_NAME, language_of

if TYPE_CHECKING:
    from .graph import Want
    from .imports import FileFacts


class Packer:
    """Fits wanted pieces into the budget, counting exactly the ids that will be sent."""

    def __init__(self, index: WorkspaceIndex, tokenize: Tokenize, budget: int, repo: str,
                 document: tuple[Path, FileFacts] | None = None) -> None:
        self.index = index
        self.document = document  # the current file as the request has it: never the index's copy
        self.tokenize = tokenize
        self.budget = budget
        self.header = len(tokenize(f"{repo}\n")) + 1
        self.used = 0
        self.lines: dict[Path, set[int]] = {}
        self.costs: dict[Path, int] = {}
        self.sources: dict[Path, tuple[str, ...]] = {}  # the lines each file's last rendering read

    def overhead(self, path: Path) -> int:
        """Path line and control tokens around one file, for any template (the most any of them spends)."""
        return len(self.tokenize(f"# {self.index.relative(path)}\n")) + 2

    def render(self, path: Path, lines: set[int]) -> list[int]:
        facts = self.document[1] if self.document and path == self.document[0] else self.index.facts(path)
        if facts is None:
            return []
        self.sources[path] = facts.lines
        spec = language_of(path)
        marker = BY_NAME[spec.name].comment if spec else "..."
        text = facts.lines
        ids: list[int] = []
        previous = -1
        for line in sorted(lines):
            if line >= len(text):
                continue
            if previous >= 0 and line > previous + 1:
                gap = next((text[i] for i in range(previous + 1, line) if text[i].strip()), "")
                indent = gap[: len(gap) - len(gap.lstrip())]
                if indent:
                    ids.extend(self.tokenize(f"{indent}{marker}\n"))
                elif text[previous].strip() and text[line].strip():
                    ids.extend(self.tokenize("\n"))
            ids.extend(self.tokenize(text[line] + "\n"))
            previous = line
        return ids

    def offer(self, want: Want, limit: int | None = None) -> bool:
        """Add the wanted lines (or their fallback) if they fit the budget, or `limit` when it is lower."""
        budget = self.budget if limit is None else min(limit, self.budget)
        for lines in (want.lines, want.fallback):
            if not lines:
                continue
            have = self.lines.get(want.path, set())
            merged = have | lines
            if merged == have:
                return True
            cost = len(self.render(want.path, merged))
            extra = cost - self.costs.get(want.path, 0)
            if want.path not in self.lines:
                extra += self.overhead(want.path) + (self.header if not self.lines else 0)
            if self.used + extra <= budget:
                self.lines[want.path] = merged
                self.costs[want.path] = cost
                self.used += extra
                return True
        return False
