"""FIM templates: loaded from `models/templates.toml` and resolved against a model's vocabulary.

A template is chosen by which control tokens the GGUF vocabulary really contains, never by a model's name, so
a renamed file or an unknown fine-tune still gets the prompt format its tokenizer was trained with.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Mapping

from .errors import NoFimSupport
from .paths import models_dir

SLOTS = ("{prefix}", "{suffix}", "{content}")


@dataclass(frozen=True)
class Layout:
    """The pieces of the file being completed, with and without context files before it."""

    current: tuple[str, ...]
    standalone: tuple[str, ...]


def _layout(raw: Mapping) -> Layout:
    current = tuple(raw["current"])
    return Layout(current, tuple(raw.get("standalone", current)))


@dataclass(frozen=True)
class TemplateSpec:
    """One family's prompt layout, as written in templates.toml."""

    name: str
    description: str
    controls: Mapping[str, str]
    required: tuple[str, ...]
    stop: tuple[str, ...]
    bos: bool
    repo: tuple[str, ...]
    file: tuple[str, ...]
    layouts: Mapping[str, Layout]  # "psm" (the top-level `current`/`standalone`) and any declared, e.g. "spm"

    def layout(self, name: str) -> tuple[str, Layout]:
        """(effective name, pieces) of layout `name`: a template that does not declare it gets "psm", the
        order every FIM model was trained with."""
        found = name if name in self.layouts else "psm"
        return found, self.layouts[found]


@dataclass(frozen=True)
class FimTemplate:
    """A template bound to one vocabulary: control names resolved to token ids."""

    spec: TemplateSpec
    ids: Mapping[str, int]
    bos_id: int | None
    stop_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def name(self) -> str:
        return self.spec.name


def _spec(raw: Mapping) -> TemplateSpec:
    return TemplateSpec(
        name=raw["name"],
        description=raw.get("description", ""),
        controls=dict(raw["controls"]),
        required=tuple(raw["required"]),
        stop=tuple(raw.get("stop", ())),
        bos=bool(raw.get("bos", False)),
        repo=tuple(raw.get("repo", ())),
        file=tuple(raw.get("file", ())),
        layouts={"psm": _layout(raw), **{name: _layout(table) for name, table in raw.get("layouts", {}).items()}},
    )


@lru_cache(maxsize=1)
def load_templates() -> tuple[TemplateSpec, ...]:
    """All templates, in detection priority order."""
    with open(models_dir() / "templates.toml", "rb") as fh:
        return tuple(_spec(raw) for raw in tomllib.load(fh)["template"])


def detect_template(
    lookup: Callable[[str], int | None],
    *,
    bos_id: int | None,
    end_ids: frozenset[int],
    specs: tuple[TemplateSpec, ...] | None = None,
) -> FimTemplate:
    """Bind the first template whose required controls exist in the vocabulary.

    `lookup` maps a control token's text to its id, or None when the vocabulary has no such single special
    token; `end_ids` are the vocabulary's own end-of-generation ids (EOS, EOT).
    """
    for spec in specs or load_templates():
        ids = {name: tid for name, text in spec.controls.items() if (tid := lookup(text)) is not None}
        if all(name in ids for name in spec.required):
            stop = frozenset(ids[name] for name in spec.stop if name in ids) | end_ids
            return FimTemplate(spec=spec, ids=ids, bos_id=bos_id if spec.bos else None, stop_ids=stop)
    known = ", ".join(spec.name for spec in specs or load_templates())
    raise NoFimSupport(
        "this model's vocabulary has no fill-in-the-middle tokens, so it cannot complete code at the cursor",
        f"use a FIM-capable code model (CodeGemma 2B/7B, Qwen2.5-Coder, …; known templates: {known}); "
        "`codegemma-lsp models list` shows the registry",
    )
