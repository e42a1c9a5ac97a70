"""The inference engine: a small interface, and its in-process llama.cpp implementation.

Only this module imports llama_cpp. The interface is token-level (ids in, text out) so a remote backend can
replace it without touching windowing, prompts or post-processing. The llama.cpp engine keeps what it last
evaluated in the KV cache and re-evaluates only the tokens after the longest common prefix with the new
prompt, less a run that only moved (a changed context block: `GenerationRequest.shift`, kvplan.py);
generation is greedy (argmax, no repeat penalty) and polls a cancel flag between tokens.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

from .errors import ModelError, ModelNotFound
from .kvplan import Move, common_prefix_len, find_move
from .prompt import ContextFile

PROMPT_SLICE = 128  # prompt tokens evaluated between two cancellation checks
PARKED_SESSIONS = 4  # documents whose KV cache is kept in RAM while another one is being completed
# Work ahead may re-evaluate this many tokens at the end of the last real request's prompt (the cursor line,
# tokenized again with what follows it), never more: the user's next keystroke most likely needs that prompt.
SPECULATIVE_SLACK = 16

llama_log = logging.getLogger("codegemma_lsp.llama_cpp")
_LLAMA_LEVELS = {3: logging.WARNING, 4: logging.ERROR}  # ggml: 1 debug, 2 info, 3 warn, 4 error, 5 cont.
_log_callback = None  # kept alive: llama.cpp holds a raw pointer to it


def _route_llama_logs(llama_cpp) -> None:
    """Send llama.cpp's own log lines to Python logging, never to stdout.

    llama-cpp-python's quiet mode (verbose=False) silences loading by pointing file descriptors 1 and 2 at
    /dev/null; in stdio mode fd 1 is the LSP channel, so a response written meanwhile would vanish. Loading
    verbosely with this callback keeps both channels intact.
    """
    global _log_callback
    if _log_callback is None:

        @llama_cpp.llama_log_callback
        def forward(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            line = text.decode("utf-8", errors="replace").rstrip()
            if line:
                llama_log.log(_LLAMA_LEVELS.get(level, logging.DEBUG), "%s", line)

        _log_callback = forward
    llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


@dataclass(frozen=True)
class PromptParts:
    """The prompt before the template joined it, for a backend that builds the FIM prompt itself (llama-server's
    `/infill`); engines that take `GenerationRequest.prompt` ignore it."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    context: tuple[ContextFile, ...] = ()


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate: the prompt ids, limits, and when the text is complete."""

    prompt: tuple[int, ...]
    max_tokens: int
    stop_ids: frozenset[int]
    stop_text: Callable[[str], bool] | None = None  # True once the text generated so far is complete
    time_budget_s: float | None = None
    session: str = ""  # whose KV cache to continue (the document); others are parked in RAM, not evaluated again
    reuse: bool = True  # False: evaluate the whole prompt, nothing kept from the KV cache (a benchmark baseline)
    parts: PromptParts | None = None
    lead: str = ""  # text the completion must start with (see `Engine.heals`); not part of the returned text
    speculative: bool = False  # work ahead: declined where it would evict the last real request's prompt
    shift: bool = False  # keep the cells of a run that moved (after a changed context block), shifted: kvplan.py
    current_at: int = 0  # where the current file's part of the prompt starts: only a change before it may shift
    prefix_at: int | None = None  # where the prefix starts when it ends the prompt: a change after it may shift too


@dataclass(frozen=True)
class GenerationStats:
    """Exact per-request figures, reported by `codegemma/status`."""

    prompt_tokens: int
    reused_tokens: int
    evaluated_tokens: int
    generated_tokens: int
    eval_ms: float
    gen_ms: float
    stop_reason: str  # eos | stop_token | stop_text | max_tokens | time_budget | cancelled | declined
    moved_tokens: int = 0  # kept from the cache at other positions (`GenerationRequest.shift`), not evaluated


@dataclass(frozen=True)
class Generation:
    text: str
    ids: tuple[int, ...]  # the generated ids; empty when a remote backend streams text only
    stats: GenerationStats


@dataclass(frozen=True)
class ModelInfo:
    """What the status request and `doctor` show about the loaded model."""

    path: str
    architecture: str
    name: str
    file_type: str
    size_bytes: int
    n_params: int
    n_ctx: int
    n_gpu_layers: int
    gpu_offload_supported: bool
    vocab_size: int

    @property
    def on_gpu(self) -> bool:
        """Layers run on a GPU: the build can offload and nGpuLayers is not 0."""
        return self.gpu_offload_supported and self.n_gpu_layers != 0


class Engine(Protocol):
    """Token-level inference. Implementations must be safe to call from one worker thread at a time."""

    info: ModelInfo
    bos_id: int | None
    end_ids: frozenset[int]
    heals: bool  # honours `GenerationRequest.lead`: its first tokens spell the lead, whatever they are

    def tokenize(self, text: str) -> list[int]:
        """Plain-text tokenization: special tokens off, no BOS."""
        ...

    def special_token(self, text: str) -> int | None:
        """The id of a control/special token with this exact text, or None if the vocabulary lacks it."""
        ...

    def generate(self, request: GenerationRequest, cancelled: Callable[[], bool]) -> Generation: ...


def check_gguf(path: Path) -> None:
    """Fail early, with the fix, on the faults llama.cpp reports only as a generic load error."""
    if not path.is_file():
        raise ModelNotFound(f"model file not found: {path}", "check --model, or run `codegemma-lsp models pull ALIAS`")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise ModelError(
            f"{path} is not a GGUF file",
            "point --model at a .gguf file (llama.cpp format), or pull one with `codegemma-lsp models pull ALIAS`",
        )


def _open_llama(llama_cpp, **kwargs):
    """llama_cpp.Llama(**kwargs) with its logs routed to logging (see _route_llama_logs: quiet mode would
    hijack stdout) and the metadata banner it prints to stderr kept at debug level."""
    _route_llama_logs(llama_cpp)
    banner = io.StringIO()
    try:
        with contextlib.redirect_stderr(banner):
            return llama_cpp.Llama(verbose=True, **kwargs)
    finally:
        llama_log.debug("%s", banner.getvalue())


@contextlib.contextmanager
def _context_defaults(llama_cpp, **fields):
    """Llama() builds its llama_context_params from llama.cpp's defaults and has no argument for n_seq_max or
    kv_unified: change those defaults for the time of the call."""
    module = llama_cpp.llama_cpp
    default = module.llama_context_default_params

    def params():
        p = default()
        for name, value in fields.items():
            setattr(p, name, value)
        return p

    module.llama_context_default_params = params
    try:
        yield
    finally:
        module.llama_context_default_params = default


def _plain_ids(llm, text: str) -> list[int]:
    """Text as text: special tokens off, no BOS. errors="replace": a lone surrogate (JSON can carry one into a
    document) becomes "?", not a crash."""
    return llm.tokenize(text.encode("utf-8", errors="replace"), add_bos=False, special=False)


def _special_id(llm, lib, text: str, attrs: tuple[str, ...] = ("CONTROL", "USER_DEFINED")) -> int | None:
    """The id of the single special token spelled `text` whose attributes include one of `attrs`, else None."""
    ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    if len(ids) != 1:
        return None
    mask = 0
    for name in attrs:
        mask |= getattr(lib, f"LLAMA_TOKEN_ATTR_{name}")
    return ids[0] if llm._model.token_get_attr(ids[0]) & mask else None


def _end_ids(llm) -> frozenset[int]:
    return frozenset(t for t in (llm.token_eos(), llm._model.token_eot()) if t >= 0)


def _decode(llm, ids: Sequence[int]) -> str:
    # A multi-byte character may be split across tokens; a trailing partial character is dropped, not mangled.
    return llm.detokenize(list(ids)).decode("utf-8", errors="ignore")


@dataclass
class _Parked:
    """A document's KV-cache cells copied out of the context, and the tokens they hold."""

    tokens: list[int]
    data: ctypes.Array
    size: int


class LlamaEngine:
    """llama-cpp-python in process, with KV-cache prefix reuse across requests."""

    heals = True
    LEAD_CANDIDATES = 64  # most likely tokens searched for one that continues the lead

    def __init__(self, path: Path, *, n_ctx: int = 4096, n_gpu_layers: int = -1, threads: int | None = None) -> None:
        check_gguf(path)
        import llama_cpp  # only the engine imports llama.cpp

        self._lib = llama_cpp
        try:
            # A second sequence holds a moved run while the tokens before it are evaluated (`_evaluate`); one
            # unified KV buffer, so handing cells back and forth copies nothing.
            with _context_defaults(llama_cpp, n_seq_max=2, kv_unified=True):
                self._llm = _open_llama(
                    llama_cpp,
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_batch=512,
                    n_gpu_layers=n_gpu_layers,
                    n_threads=threads or max(1, os.cpu_count() or 1),
                    logits_all=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            if "llama_context" in str(exc):  # the weights loaded; the KV cache for n_ctx tokens did not fit
                raise ModelError(
                    f"not enough memory for a {n_ctx}-token context with {path.name} ({exc})",
                    "lower ctxSize / --ctx-size (4096 is plenty for completion), or use a smaller model",
                ) from exc
            raise ModelError(
                f"llama.cpp could not load {path}: {exc}",
                "the file may be truncated or corrupt (delete it and run `codegemma-lsp models pull ALIAS`), "
                "or too large for memory at this --ctx-size (try a smaller --ctx-size or a smaller quantization)",
            ) from exc
        llm = self._llm
        self._lock = threading.Lock()
        self._session = ""
        self._kept = 0  # prompt tokens of the current session's last real request still in the cache
        self._parked: OrderedDict[str, _Parked] = OrderedDict()
        self._n_vocab = llm.n_vocab()
        self._can_shift = bool(llama_cpp.llama_memory_can_shift(llm._ctx.memory))
        meta = llm.metadata
        bos = llm.token_bos()
        self.bos_id = bos if bos >= 0 else None
        model = llm._model
        self.end_ids = _end_ids(llm)
        self.info = ModelInfo(
            path=str(path),
            architecture=meta.get("general.architecture", "unknown"),
            name=meta.get("general.name", path.stem),
            file_type=meta.get("general.file_type", ""),
            size_bytes=path.stat().st_size,
            n_params=model.n_params(),
            n_ctx=llm.n_ctx(),
            n_gpu_layers=n_gpu_layers,
            gpu_offload_supported=bool(llama_cpp.llama_supports_gpu_offload()),
            vocab_size=self._n_vocab,
        )

    def tokenize(self, text: str) -> list[int]:
        return _plain_ids(self._llm, text)

    def special_token(self, text: str) -> int | None:
        return _special_id(self._llm, self._lib, text)

    def _logits_last(self):
        import numpy as np

        ptr = self._lib.llama_get_logits_ith(self._llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))

    def _lead_token(self, rest: str) -> int:
        """The most likely token that spells the start of `rest` or all of it and more (token healing): the
        model chooses where the word after the blanks begins. Falls back to the plain tokenization of `rest`."""
        import numpy as np

        logits = self._logits_last()
        top = np.argpartition(logits, -self.LEAD_CANDIDATES)[-self.LEAD_CANDIDATES:]
        for token in top[np.argsort(logits[top])[::-1]]:
            piece = _decode(self._llm, [int(token)])
            if piece and (rest.startswith(piece) or piece.startswith(rest)):
                return int(token)
        return _plain_ids(self._llm, rest)[0]

    def generate(self, request: GenerationRequest, cancelled: Callable[[], bool]) -> Generation:
        with self._lock:
            return self._generate(request, cancelled)

    def _switch_session(self, session: str) -> None:
        """Park the current document's KV cells and bring back `session`'s, so switching files re-evaluates
        nothing that was evaluated before (a copy of a few MB instead of seconds of prefill)."""
        if session == self._session:
            return
        llm, lib, ctx = self._llm, self._lib, self._llm._ctx.ctx
        if self._session and llm.n_tokens > 0:
            size = lib.llama_state_seq_get_size(ctx, 0)
            data = (ctypes.c_uint8 * size)()
            written = lib.llama_state_seq_get_data(ctx, data, size, 0)
            self._parked[self._session] = _Parked(llm.input_ids[: llm.n_tokens].tolist(), data, written)
            while len(self._parked) > PARKED_SESSIONS:
                self._parked.popitem(last=False)
        parked = self._parked.pop(session, None)
        if parked is not None:
            llm._ctx.kv_cache_seq_rm(0, 0, -1)
            if lib.llama_state_seq_set_data(ctx, parked.data, parked.size, 0):
                llm.input_ids[: len(parked.tokens)] = parked.tokens
                llm.n_tokens = len(parked.tokens)
            else:
                llm.n_tokens = 0
        self._session = session

    def _decode_at(self, tokens: Sequence[int], pos: int, cancelled: Callable[[], bool]) -> int:
        """Evaluate `tokens` at positions pos, pos+1, … in slices, checking `cancelled` between slices.
        Returns how many were evaluated."""
        llm = self._llm
        for i in range(0, len(tokens), PROMPT_SLICE):
            if cancelled():
                return i
            piece = list(tokens[i : i + PROMPT_SLICE])
            llm._batch.set_batch(batch=piece, n_past=pos + i, logits_all=False)
            llm._ctx.decode(llm._batch)
        return len(tokens)

    def _evaluate(self, prompt: list[int], reused: int, move: Move | None,
                  cancelled: Callable[[], bool]) -> tuple[int, int]:
        """Bring the KV cache to `prompt`: keep its first `reused` cells, shift `move`'s cells into place and
        evaluate the rest. Returns (tokens evaluated, tokens moved); `llm.n_tokens` ends at the last valid one.

        llama.cpp only decodes a sequence at positions after its last cell, so the moved run waits in sequence 1
        while the tokens before it are evaluated in sequence 0, then joins sequence 0 again."""
        llm, kv = self._llm, self._llm._ctx

        def decode(start: int, end: int) -> bool:
            done = self._decode_at(prompt[start:end], start, cancelled)
            llm.input_ids[start : start + done] = prompt[start : start + done]
            llm.n_tokens = start + done
            return start + done == end

        kv.kv_cache_seq_rm(0, reused, -1 if move is None else move.cache_at)
        if move is None:
            decode(reused, len(prompt))
            return llm.n_tokens - reused, 0
        c, p, n = move.cache_at, move.prompt_at, move.length
        kv.kv_cache_seq_rm(0, c + n, -1)
        kv.kv_cache_seq_cp(0, 1, c, c + n)
        kv.kv_cache_seq_rm(0, c, c + n)
        if p != c:
            kv.kv_cache_seq_shift(1, c, c + n, p - c)
        if not decode(reused, p):  # cancelled before the run: it is dropped
            kv.kv_cache_seq_rm(1, 0, -1)
            return llm.n_tokens - reused, 0
        kv.kv_cache_seq_cp(1, 0, p, p + n)
        kv.kv_cache_seq_rm(1, 0, -1)
        llm.input_ids[p : p + n] = prompt[p : p + n]
        llm.n_tokens = p + n
        decode(p + n, len(prompt))
        return llm.n_tokens - reused - n, n

    def _generate(self, request: GenerationRequest, cancelled: Callable[[], bool]) -> Generation:
        llm = self._llm
        prompt = list(request.prompt)
        if request.speculative and request.session != self._session:
            return _declined(prompt)  # parking the user's document for a guess would cost more than it saves
        self._switch_session(request.session)
        n_ctx = llm.n_ctx()
        if len(prompt) >= n_ctx:
            raise ModelError(f"prompt of {len(prompt)} tokens does not fit the {n_ctx}-token context",
                             "raise --ctx-size or lower prefixTokens/suffixTokens/context.maxTokens")
        room = n_ctx - len(prompt)  # context cells left for every generated token, the lead's included
        started = time.perf_counter()
        deadline = started + request.time_budget_s if request.time_budget_s else None

        # The cache holds the last prompt and the completion generated after it: in the suffix-prefix-middle
        # layout the completion continues the prefix, so typing what the ghost text showed reuses its cells too.
        cached = llm.input_ids[: llm.n_tokens].tolist()
        reused = min(common_prefix_len(cached, prompt), len(prompt) - 1) if request.reuse else 0  # >= 1 for logits
        if request.speculative and reused < self._kept - SPECULATIVE_SLACK:
            return _declined(prompt)  # e.g. a new line changed the context block: the real request pays for it
        shifts = request.shift and request.reuse and self._can_shift
        # A run may start before the current file (a changed block) or, when only a prefix that ends the prompt
        # changed (its window's start moved down), anywhere in it: the rest was computed after the same suffix.
        prefix_only = request.prefix_at is not None and reused >= request.prefix_at
        before = len(prompt) - 1 if prefix_only else request.current_at
        move = find_move(cached, prompt, reused, before) if shifts else None
        evaluated, moved = self._evaluate(prompt, reused, move, cancelled)
        if not request.speculative:
            self._kept = llm.n_tokens
        stop_reason = "" if llm.n_tokens == len(prompt) else "cancelled"
        eval_done = time.perf_counter()

        out: list[int] = []
        text = ""
        lead = request.lead
        spent = 0  # tokens that spelled the lead: they do not count against max_tokens
        spelled = ""
        while not stop_reason:
            if len(spelled) < len(lead):
                token = self._lead_token(lead[len(spelled):])
                spent += 1
            else:
                token = int(self._logits_last().argmax())
                if token in request.stop_ids:
                    stop_reason = "eos" if token in self.end_ids else "stop_token"
                    break
            out.append(token)
            spelled = _decode(llm, out)
            text = spelled[len(lead):]
            if request.stop_text is not None and request.stop_text(text):
                stop_reason = "stop_text"
            elif len(out) - spent >= request.max_tokens or len(out) >= room:
                stop_reason = "max_tokens"
            elif cancelled():
                stop_reason = "cancelled"
            elif deadline is not None and time.perf_counter() > deadline:
                stop_reason = "time_budget"
            else:
                self._decode_at([token], llm.n_tokens, lambda: False)
                llm.input_ids[llm.n_tokens] = token
                llm.n_tokens += 1
        finished = time.perf_counter()
        stats = GenerationStats(
            prompt_tokens=len(prompt),
            reused_tokens=reused,
            evaluated_tokens=evaluated,
            generated_tokens=len(out),
            eval_ms=(eval_done - started) * 1000,
            gen_ms=(finished - eval_done) * 1000,
            stop_reason=stop_reason,
            moved_tokens=moved,
        )
        return Generation(text=text, ids=tuple(out), stats=stats)


def _declined(prompt: list[int]) -> Generation:
    return Generation(text="", ids=(), stats=GenerationStats(len(prompt), 0, 0, 0, 0.0, 0.0, "declined"))


class GgufVocab:
    """A GGUF's vocabulary alone (no weights, loads in a fraction of a second): exact token ids for a remote
    backend (`backendTokenizer`), without one HTTP round trip per line of a document."""

    def __init__(self, path: Path) -> None:
        check_gguf(path)
        import llama_cpp

        self._lib = llama_cpp
        try:
            self._llm = _open_llama(llama_cpp, model_path=str(path), vocab_only=True)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"llama.cpp could not read the vocabulary of {path}: {exc}",
                             "point backendTokenizer at the GGUF of the model the server runs") from exc
        self.path = path
        bos = self._llm.token_bos()
        self.bos_id = bos if bos >= 0 else None
        self.end_ids = _end_ids(self._llm)
        self.adds_bos = self._llm._model.add_bos_token()  # a server tokenizing a text prompt prepends BOS
        self.parses_special = False

    def tokenize(self, text: str) -> list[int]:
        return _plain_ids(self._llm, text)

    def special_token(self, text: str) -> int | None:
        return _special_id(self._llm, self._lib, text)

    def control_id(self, text: str) -> int | None:
        return _special_id(self._llm, self._lib, text, ("CONTROL", "UNKNOWN"))

    def detokenize(self, ids: Sequence[int]) -> str:
        return self._llm.detokenize(list(ids)).decode("utf-8", errors="replace")
