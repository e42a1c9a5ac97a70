"""A remote inference server behind the same token-level `Engine` interface as in-process llama.cpp.

Windowing, cross-file context, templates, post-processing, the typed-ahead cache and cancellation stay local:
the server only evaluates a prompt and streams tokens back. `connect` finds out what kind of server sits at
the URL (llama-server's `/props`, Ollama's `/api/tags`, an OpenAI-compatible `/v1/models`), which model it
serves and where exact token ids come from; the template is then detected from that vocabulary as for a
local GGUF. Generation streams, and every stop condition is applied here as tokens arrive: when the request
is cancelled, out of time, or the completion is complete, the connection is closed, which makes the server
stop generating.
"""

from __future__ import annotations

import logging
import re
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

from .backends import Chunk, Figures, InfillContext, LlamaServerWire, OllamaWire, OpenAIWire, Sampling
from .config import Config
from .engine import Generation, GenerationRequest, GenerationStats, GgufVocab, ModelInfo
from .errors import BackendError, ConfigError, EndpointMissing, ModelError
from .remote_vocab import ExtrasVocab, LlamaServerVocab, Vocab, neutralize
from .transport import Stream, Transport

log = logging.getLogger(__name__)

Wire = LlamaServerWire | OpenAIWire | OllamaWire
WATCH_S = 0.02  # how often cancellation and the time budget are polled while a read blocks
LATENCY_WINDOW = 100  # requests behind the median latency in `codegemma/status`


@dataclass(frozen=True)
class Backend:
    """What `codegemma/status` and `doctor` show about the server."""

    url: str
    kind: str
    model: str
    tokenizer: str  # "server" or the local GGUF's path
    n_ctx: int


class Latency:
    """Wall time of recent generations (request sent -> last token used), and the last backend failure (of a
    generation or a tokenization), for the status."""

    def __init__(self) -> None:
        self.recent: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.completions = 0
        self.failures = 0
        self.last_error: str | None = None

    def ok(self, ms: float) -> None:
        self.recent.append(ms)
        self.completions += 1
        self.last_error = None

    def failed(self, error: BackendError) -> None:
        self.failures += 1
        self.last_error = str(error)

    def summary(self) -> dict[str, Any]:
        return {
            "lastMs": round(self.recent[-1], 2) if self.recent else None,
            "medianMs": round(statistics.median(self.recent), 2) if self.recent else None,
            "completions": self.completions,
            "failures": self.failures,
            "up": self.last_error is None,
            "lastError": self.last_error,
        }


class RemoteEngine:
    """`Engine` over HTTP. Safe from one worker thread at a time, like the in-process engine."""

    heals = False  # the servers take a prompt and stream text: nothing can force the first tokens

    def __init__(self, transport: Transport, wire: Wire, vocab: Vocab, backend: Backend, info: ModelInfo,
                 *, infill: bool = False) -> None:
        self.transport, self.wire, self.vocab, self.backend, self.info = transport, wire, vocab, backend, info
        self.bos_id = vocab.bos_id
        self.end_ids = vocab.end_ids
        self.latency = Latency()
        self._infill = infill
        # A server that parses a text prompt's special tokens must never see a control token's spelling.
        self._guard = wire.string_prompt or vocab.parses_special
        self._controls: dict[int, str] = {}  # control ids the template uses -> their spelling
        self._special = lru_cache(maxsize=4096)(vocab.special_token)
        self._is_control = lru_cache(maxsize=65_536)(lambda text: vocab.control_id(text) is not None)
        self._text_of = lru_cache(maxsize=256)(self._render_run)  # stable runs (context files, path lines)

    # --- tokens ---------------------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        try:
            return self.vocab.tokenize(neutralize(text, self._is_control) if self._guard else text)
        except BackendError as exc:
            self.latency.failed(exc)
            raise

    def special_token(self, text: str) -> int | None:
        tid = self._special(text)
        if tid is not None:
            self._controls[tid] = text
        return tid

    def _render_run(self, ids: tuple[int, ...]) -> str:
        text = self.vocab.detokenize(ids)
        return neutralize(text, self._is_control) if self._guard else text

    def prompt_text(self, ids: Sequence[int]) -> str:
        """The prompt as text for servers that take a string: plain runs detokenized (and neutralized),
        control ids spelled out. A leading BOS is left to servers that prepend their own."""
        if ids and self.vocab.adds_bos and ids[0] == self.bos_id:
            ids = ids[1:]
        pieces: list[str] = []
        run: list[int] = []
        for tid in ids:
            if tid in self._controls:
                if run:
                    pieces.append(self._text_of(tuple(run)))
                    run = []
                pieces.append(self._controls[tid])
            else:
                run.append(tid)
        if run:
            pieces.append(self._text_of(tuple(run)))
        return "".join(pieces)

    # --- generation -----------------------------------------------------------------------------------------

    def _request(self, request: GenerationRequest, sampling: Sampling) -> tuple[str, dict[str, Any]]:
        wire = self.wire
        if isinstance(wire, LlamaServerWire):
            if self._infill and request.parts is not None:
                parts = request.parts
                extra = [InfillContext(f.path, self._text_of(f.ids)) for f in parts.context]
                return wire.infill(parts.prefix, parts.suffix, extra, sampling)
            return wire.completion(request.prompt, sampling)
        return wire.completion(self.prompt_text(request.prompt), sampling)

    def generate(self, request: GenerationRequest, cancelled: Callable[[], bool]) -> Generation:
        n_ctx = self.info.n_ctx
        if len(request.prompt) >= n_ctx:
            raise ModelError(f"prompt of {len(request.prompt)} tokens does not fit the backend's {n_ctx}-token "
                             "context", "lower prefixTokens/suffixTokens/context.maxTokens, or give the server "
                             "a larger context")
        max_tokens = min(request.max_tokens, n_ctx - len(request.prompt))
        stop = tuple(self._controls[i] for i in sorted(request.stop_ids) if i in self._controls)
        sampling = Sampling(max_tokens=max_tokens, stop=stop, model=self.backend.model, n_ctx=n_ctx,
                            cache=request.reuse)
        started = time.perf_counter()
        try:
            path, body = self._request(request, sampling)
            stream = self.transport.stream(path, body, sse=self.wire.sse)
            generation = self._consume(stream, request, max_tokens, stop, cancelled, started)
        except BackendError as exc:
            self.latency.failed(exc)
            raise
        self.latency.ok((time.perf_counter() - started) * 1000)
        return generation

    def _consume(self, stream: Stream, request: GenerationRequest, max_tokens: int, stop: tuple[str, ...],
                 cancelled: Callable[[], bool], started: float) -> Generation:
        deadline = started + request.time_budget_s if request.time_budget_s else None
        why = ["cancelled"]

        def interrupted() -> bool:
            if cancelled():
                return True
            if deadline is not None and time.perf_counter() > deadline:
                why[0] = "time_budget"
                return True
            return False

        done = threading.Event()

        def watch() -> None:  # a blocked read (prompt evaluation) cannot poll: close the stream from here
            while not done.wait(WATCH_S):
                if interrupted():
                    stream.abort()
                    return

        watcher = threading.Thread(target=watch, name="codegemma-remote-watch", daemon=True)
        watcher.start()
        text, ids, generated, reason = "", [], 0, ""
        figures: Figures | None = None
        first: float | None = None
        try:
            for event in stream:
                chunk: Chunk = self.wire.parse(event)
                figures = chunk.figures or figures
                if reason:
                    continue  # the server finished; what follows is its closing figures (OpenAI usage)
                if first is None and (chunk.token or chunk.finish):
                    first = time.perf_counter()
                hit = next((i for i in chunk.ids if i in request.stop_ids), None)
                if hit is not None:
                    reason = "eos" if hit in self.end_ids else "stop_token"
                    break
                if chunk.token and not chunk.text and not chunk.ids and self.wire.empty_is_control:
                    reason = "stop_token"
                    break
                text += chunk.text
                ids += chunk.ids
                generated += len(chunk.ids) or int(chunk.token)
                if cut := _first_stop(text, stop):
                    text, reason = text[: cut[0]], "stop_token"
                elif chunk.finish:
                    reason = chunk.finish
                    continue
                elif request.stop_text is not None and request.stop_text(text):
                    reason = "stop_text"
                elif generated >= max_tokens:
                    reason = "max_tokens"
                elif interrupted():
                    reason = why[0]
                if reason:
                    break
        finally:
            done.set()
            stream.close()  # before the server finishes on its own: this is what stops it
        if not reason:
            if not stream.aborted:
                raise BackendError("the backend ended the stream without finishing the completion")
            reason = why[0]
        finished = time.perf_counter()
        first = first or finished
        prompt = len(request.prompt)
        reused = figures.reused if figures and figures.reused is not None else 0
        server_ended = reason in ("eos", "max_tokens") and figures is not None and figures.generated is not None
        stats = GenerationStats(
            prompt_tokens=prompt,
            reused_tokens=reused,
            evaluated_tokens=figures.evaluated if figures and figures.evaluated is not None else prompt - reused,
            generated_tokens=figures.generated if server_ended and figures else generated,
            eval_ms=figures.eval_ms if figures and figures.eval_ms is not None else (first - started) * 1000,
            gen_ms=figures.gen_ms if figures and figures.gen_ms is not None else (finished - first) * 1000,
            stop_reason=reason,
        )
        return Generation(text=text, ids=tuple(ids), stats=stats)

    def status(self) -> dict[str, Any]:
        b = self.backend
        return {"url": b.url, "kind": b.kind, "model": b.model, "tokenizer": b.tokenizer, "nCtx": b.n_ctx,
                "infill": self._infill, "latency": self.latency.summary()}

    def close(self) -> None:
        self.transport.close()


def _first_stop(text: str, stop: Sequence[str]) -> tuple[int, str] | None:
    """(position, string) of the earliest stop string in `text`."""
    hits = [(pos, s) for s in stop if (pos := text.find(s)) >= 0]
    return min(hits) if hits else None


# --- connecting ---------------------------------------------------------------------------------------------

_FROM = re.compile(r"^FROM\s+(\S.*?)\s*$", re.MULTILINE)


def detect_kind(transport: Transport) -> str:
    """The kind of server at the URL, from the endpoints only that kind has."""
    props = transport.probe("/props")
    if isinstance(props, dict) and "default_generation_settings" in props:
        return "llama-server"
    tags = transport.probe("/api/tags")
    if isinstance(tags, dict) and isinstance(tags.get("models"), list):
        return "ollama"
    if transport.probe("/v1/models") is not None:
        return "openai"
    raise BackendError(f"{transport.url} is neither llama-server, Ollama nor an OpenAI-compatible server",
                       "check the URL (for an OpenAI-compatible server, without the /v1 suffix)")


def _first_model(models: Any, key: str) -> str:
    rows = models.get(key) if isinstance(models, dict) else None
    if not rows:
        raise BackendError("the backend serves no model", "load one on the server (e.g. `ollama pull NAME`)")
    return str(rows[0].get("id") or rows[0].get("name") or rows[0].get("model"))


def connect(config: Config, vocab_path: Path | None = None, transport: Transport | None = None) -> RemoteEngine:
    """Reach the configured backend, learn what it serves, and return an engine for it.

    `vocab_path` is a local GGUF whose vocabulary tokenizes (`backendTokenizer`); without it the server's
    own tokenizer is used where it has one.
    """
    cfg = config.backend
    transport = transport or Transport(cfg.url, api_key_env=cfg.api_key_env)
    kind = detect_kind(transport) if cfg.kind == "auto" else cfg.kind
    if cfg.infill and kind != "llama-server":
        raise ConfigError(f"backendInfill needs a llama-server backend; {cfg.url} is {kind}",
                          "set backendInfill to false")
    local = GgufVocab(vocab_path) if vocab_path else None
    n_ctx, arch, n_params, size, n_vocab = config.ctx_size, kind, 0, 0, 0
    vocab: Vocab
    wire: Wire
    if kind == "llama-server":
        props = transport.request("GET", "/props")
        models = transport.request("GET", "/v1/models")
        model = cfg.model or _first_model(models, "data")
        meta = (models.get("data") or [{}])[0].get("meta") or {}
        n_ctx = int((props.get("default_generation_settings") or {}).get("n_ctx") or n_ctx)
        n_params, size, n_vocab = meta.get("n_params", 0), meta.get("size", 0), meta.get("n_vocab", 0)
        vocab, wire = local or LlamaServerVocab(transport, props), LlamaServerWire()
    elif kind == "ollama":
        model = cfg.model or _first_model(transport.request("GET", "/api/tags"), "models")
        show = transport.request("POST", "/api/show", {"model": model})
        info = show.get("model_info") or {}
        arch = info.get("general.architecture", kind)
        n_params = info.get("general.parameter_count", 0)
        blob = _FROM.search(show.get("modelfile") or "")
        if local is None and blob and Path(blob.group(1)).is_file():  # Ollama on this machine: its GGUF is here
            local = GgufVocab(Path(blob.group(1)))
        if local is None:
            raise BackendError("Ollama has no tokenize endpoint, and its model file is not on this machine",
                               "set backendTokenizer to the model's GGUF (or a registry alias of the same model)")
        vocab, wire = local, OllamaWire()
    else:
        models = transport.request("GET", "/v1/models")
        model = cfg.model or _first_model(models, "data")
        n_ctx = int((models.get("data") or [{}])[0].get("max_model_len") or n_ctx)  # vLLM says; others do not
        if local is not None:
            vocab = local
        else:
            try:
                vocab = ExtrasVocab(transport, cfg.model)
            except EndpointMissing as exc:
                raise BackendError(
                    "this OpenAI-compatible server has no tokenize endpoint that keeps text as text",
                    "set backendTokenizer to the served model's GGUF (or a registry alias of the same model)",
                ) from exc
        wire = OpenAIWire()
    tokenizer = str(local.path) if local is not None else "server"
    backend = Backend(url=transport.url, kind=kind, model=model, tokenizer=tokenizer, n_ctx=n_ctx)
    info = ModelInfo(path=transport.url, architecture=arch, name=model, file_type="", size_bytes=int(size or 0),
                     n_params=int(n_params or 0), n_ctx=n_ctx, n_gpu_layers=0, gpu_offload_supported=False,
                     vocab_size=int(n_vocab or 0))
    log.info("backend %s: %s serving %s (tokenizer: %s, context %d)", transport.url, kind, model, tokenizer, n_ctx)
    return RemoteEngine(transport, wire, vocab, backend, info, infill=cfg.infill)
