"""The completion pipeline, top to bottom in one place:
cursor window -> cross-file context -> prompt ids -> engine -> post-process -> result.

No LSP types here: the server and the one-shot CLI both drive this service.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from .config import Config
from .engine import Engine, GenerationRequest, GenerationStats, PromptParts
from .postprocess import Mode, Surroundings, decide_mode, process, stop_predicate
from .prompt import ContextFile, build_prompt
from .syntax import language_for
from .templates import FimTemplate, detect_template
from .window import LineTokenizer, Tokenize, cursor_window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompletionRequest:
    """An immutable snapshot of what the user sees: the text is copied when the request arrives."""

    uri: str
    path: str  # workspace-relative path, shown to the model as the file's name
    text: str
    offset: int  # code points
    repo: str = ""
    request_id: int = 0


class Pending(threading.Event):
    """A request's cancel flag, holding its document snapshot until the worker takes it. Setting the flag drops
    the snapshot, so superseded requests still queued behind a busy worker pin no old copies of the text."""

    def __init__(self, request: CompletionRequest) -> None:
        super().__init__()
        self.request: CompletionRequest | None = request

    def set(self) -> None:
        self.request = None
        super().set()


@dataclass(frozen=True)
class Completion:
    """Text to insert at the cursor (empty: no suggestion) and the figures behind it."""

    text: str
    mode: Mode
    stats: GenerationStats | None
    raw: str = ""
    replace: int = 0  # code points of the cursor line after the cursor that `text` replaces (0: insert)
    context_paths: tuple[str, ...] = ()
    context_tokens: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)


class ContextProvider(Protocol):
    """Cross-file context: files the current one depends on, within a token budget, dependencies first."""

    def gather(self, request: CompletionRequest, budget: int, tokenize: Tokenize, *,
               ahead: bool = False, shown: range | None = None) -> Sequence[ContextFile]:
        """The files to show. `ahead`: work done before the user asked, which must not change what the user's
        next real request gets. `shown`: the current file's lines that the prompt's windows carry."""

    def prepare(self, uri: str) -> None:
        """Work ahead for a document just opened, run in the background (caches only: nothing to return)."""

    def forget(self, uri: str) -> None:
        """A document was closed: drop what is kept for it."""


class CompletionService:
    """Holds the engine, its template and per-document window anchors; one request at a time."""

    def __init__(self, engine: Engine, config: Config, context: ContextProvider | None = None) -> None:
        self.engine = engine
        self.config = config
        self.context = context
        self.template: FimTemplate = detect_template(
            engine.special_token, bos_id=engine.bos_id, end_ids=engine.end_ids
        )
        self.tokenize = LineTokenizer(engine.tokenize)
        self._anchors: dict[str, int] = {}
        self.last: Completion | None = None

    def forget(self, uri: str) -> None:
        """A closed document's window anchor and kept context go, so a day of opening files does not accumulate
        them."""
        self._anchors.pop(uri, None)
        if self.context is not None:
            self.context.forget(uri)

    def _shifts(self, config: Config) -> bool:
        """`kvShift`: "auto" shifts on the CPU only, where evaluating a changed block's thousand-odd tokens again
        takes seconds; a GPU does it in tens of milliseconds, so there the prompt is evaluated exactly."""
        return config.kv_shift == "on" or (config.kv_shift == "auto" and not self.engine.info.on_gpu)

    def complete(
        self, request: CompletionRequest, cancelled: Callable[[], bool] = lambda: False, *, ahead: bool = False
    ) -> Completion:
        """Run the pipeline. `ahead`: work done before the user asked (speculation); it leaves the window
        anchor and `last` as they are, so the user's next real request builds the same prompt as without it."""
        config = self.config
        t0 = time.perf_counter()
        window = cursor_window(
            request.text,
            request.offset,
            self.tokenize,
            prefix_tokens=config.prefix_tokens,
            suffix_tokens=config.suffix_tokens,
            anchor=self._anchors.get(request.uri),
            heal=self.engine.heals,
        )
        if not ahead:
            self._anchors[request.uri] = window.start_line
        where = Surroundings(
            prefix=window.prefix_text, suffix=window.suffix_text, language=language_for(request.path),
            markers=tuple(self.template.spec.controls.values()),
            head=window.head, tail=window.tail,
        )
        mode = decide_mode(where)
        t1 = time.perf_counter()

        context: Sequence[ContextFile] = ()
        if self.context is not None and config.context.cross_file and config.context.max_tokens > 0:
            context = self.context.gather(request, config.context.max_tokens, self.tokenize, ahead=ahead,
                                          shown=window.lines)
        t2 = time.perf_counter()

        prompt = build_prompt(
            self.template,
            self.tokenize,
            path=request.path,
            prefix_ids=window.prefix_ids,
            suffix_ids=window.suffix_ids,
            context=context,
            repo=request.repo,
            layout=config.fim_layout,
        )
        t3 = time.perf_counter()

        generation = self.engine.generate(
            GenerationRequest(
                prompt=prompt.ids,
                max_tokens=config.max_tokens,
                time_budget_s=config.time_budget_ms / 1000 if config.time_budget_ms else None,
                stop_ids=self.template.stop_ids,
                session=request.uri,
                reuse=config.kv_reuse,
                shift=self._shifts(config),
                current_at=prompt.current_at,
                prefix_at=prompt.prefix_at,
                stop_text=stop_predicate(where, mode, config.postprocess),
                parts=PromptParts(window.prefix_ids, window.suffix_ids, tuple(context)),
                lead=window.lead,
                speculative=ahead,
            ),
            cancelled,
        )
        t4 = time.perf_counter()
        finished = generation.stats.stop_reason in ("eos", "stop_token")  # the model ended it, not a limit
        edit = process(generation.text, where, mode, config.postprocess, finished)
        t5 = time.perf_counter()

        completion = Completion(
            text=edit.text,
            mode=mode,
            stats=generation.stats,
            raw=generation.text,
            replace=edit.replace,
            context_paths=prompt.context_paths,
            context_tokens=prompt.context_tokens,
            timings_ms={
                "window": (t1 - t0) * 1000,
                "context": (t2 - t1) * 1000,
                "prompt": (t3 - t2) * 1000,
                "engine": (t4 - t3) * 1000,
                "postprocess": (t5 - t4) * 1000,
                "total": (t5 - t0) * 1000,
            },
        )
        if not ahead:
            self.last = completion
        s = generation.stats
        log.info(
            "%s=%d %s prompt=%d reused=%d moved=%d eval=%d gen=%d eval_ms=%.0f gen_ms=%.0f stop=%s total_ms=%.0f",
            "ahead" if ahead else "req", request.request_id, request.path, s.prompt_tokens, s.reused_tokens,
            s.moved_tokens, s.evaluated_tokens, s.generated_tokens, s.eval_ms, s.gen_ms, s.stop_reason,
            completion.timings_ms["total"],
        )
        return completion
