"""Prompt token ids, assembled piece by piece from a FIM template.

Document text is only ever tokenized as plain text (special tokens off) and control tokens are inserted by
id, so a file that contains `<|fim_middle|>` cannot inject a control token. Stable parts come first (BOS, repo
header, context files, path line), so while the user types only the tail of the prompt changes; in the
suffix-prefix-middle layout the suffix goes before the prefix too, so typing forward only appends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .templates import FimTemplate
from .window import Tokenize


@dataclass(frozen=True)
class ContextFile:
    """A cross-file context entry: a workspace-relative path and its content's token ids."""

    path: str
    ids: tuple[int, ...]


@dataclass(frozen=True)
class Prompt:
    """The assembled prompt and how many of its tokens are cross-file context."""

    ids: tuple[int, ...]
    context_tokens: int
    context_paths: tuple[str, ...]
    current_at: int  # index of the first id of the current file's pieces (after BOS and the context block)
    prefix_at: int | None = None  # index of the first prefix id where the prefix ends the prompt (suffix first)


def _render(
    pieces: Sequence[str],
    template: FimTemplate,
    tokenize: Tokenize,
    values: dict[str, str],
    slots: dict[str, Sequence[int]],
) -> list[int]:
    out: list[int] = []
    for piece in pieces:
        if piece.startswith("@"):
            out.append(template.ids[piece[1:]])
        elif piece in slots:
            out.extend(slots[piece])
        else:
            out.extend(tokenize(piece.format(**values)))
    return out


def build_prompt(
    template: FimTemplate,
    tokenize: Tokenize,
    *,
    path: str,
    prefix_ids: Sequence[int],
    suffix_ids: Sequence[int],
    context: Sequence[ContextFile] = (),
    repo: str = "",
    layout: str = "psm",
) -> Prompt:
    """Assemble the FIM prompt: [BOS] [repo header, context files] current-file pieces, in `layout` order when
    the template declares it (else prefix-suffix-middle)."""
    spec = template.spec
    order = spec.layout(layout)[1]
    values = {"path": path, "repo": repo}
    ids: list[int] = [template.bos_id] if template.bos_id is not None else []
    if context:
        ids += _render(spec.repo, template, tokenize, values, {})
        for entry in context:
            ids += _render(spec.file, template, tokenize, {**values, "path": entry.path}, {"{content}": entry.ids})
    context_tokens = len(ids) - (1 if template.bos_id is not None else 0)
    pieces = order.current if context else order.standalone
    current_at = len(ids)
    ids += _render(pieces, template, tokenize, values, {"{prefix}": prefix_ids, "{suffix}": suffix_ids})
    prefix_at = len(ids) - len(prefix_ids) if pieces[-1] == "{prefix}" else None
    return Prompt(ids=tuple(ids), context_tokens=context_tokens, context_paths=tuple(c.path for c in context),
                  current_at=current_at, prefix_at=prefix_at)
