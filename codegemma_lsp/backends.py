"""Wire formats of the remote inference servers: the request body for a prompt, and each streamed event read
back as a `Chunk`. Pure functions of JSON, so every format is unit-tested without a server.

- llama-server (llama.cpp): `/completion` with the prompt as token ids (our template's exact ids, no
  re-tokenization) and `cache_prompt`, so the server keeps the common prefix in its KV cache; or `/infill`,
  where the server builds the FIM prompt itself from prefix/suffix ids and context files. Events are SSE.
- OpenAI-compatible `/v1/completions` (llama-cpp-python's server, vLLM, TGI): the prompt as text, because
  llama-cpp-python's server and TGI take no token ids. Events are SSE ending in `[DONE]`.
- Ollama `/api/generate` with `raw: true` (no chat template around our FIM prompt). Events are NDJSON.

All requests are greedy (temperature 0, no repeat penalty) so a remote completion equals the in-process one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .errors import BackendError


@dataclass(frozen=True)
class Figures:
    """What the server measured for one request; None where it does not say."""

    evaluated: int | None = None  # prompt tokens it evaluated (the rest came from its cache)
    reused: int | None = None
    generated: int | None = None
    eval_ms: float | None = None
    gen_ms: float | None = None


@dataclass(frozen=True)
class Chunk:
    """One streamed event. `token`: the event stands for generated tokens (an OpenAI event with empty text
    is then a control token, which llama.cpp renders as nothing); `finish`: the server ended generation
    (eos | max_tokens), "" while it goes on."""

    text: str = ""
    ids: tuple[int, ...] = ()
    token: bool = False
    finish: str = ""
    figures: Figures | None = None


@dataclass(frozen=True)
class Sampling:
    """The request-independent part of a generation request."""

    max_tokens: int
    stop: tuple[str, ...]  # control-token texts that end the completion, for servers that see text
    model: str | None
    n_ctx: int
    cache: bool = True  # llama-server keeps the common prompt prefix in its KV cache (`cache_prompt`)


@dataclass(frozen=True)
class InfillContext:
    """A context file for llama-server's `/infill` (`input_extra`)."""

    filename: str
    text: str


def _checked(event: Any, server: str) -> dict[str, Any]:
    """A streamed event as a JSON object; an error event raises with the server's message."""
    if not isinstance(event, dict):
        raise BackendError(f"{server} sent an unexpected event: {event!r}")
    if "error" in event:
        raise BackendError(f"{server} failed: {event['error']}")
    return event


class LlamaServerWire:
    kind = "llama-server"
    sse = True
    string_prompt = False
    empty_is_control = False  # events carry token ids: stop ids are matched exactly

    @staticmethod
    def _common(sampling: Sampling) -> dict[str, Any]:
        return {
            "n_predict": sampling.max_tokens, "stream": True, "cache_prompt": sampling.cache,
            "return_tokens": True, "timings_per_token": True, "temperature": 0.0, "top_k": 1, "repeat_penalty": 1.0,
        }

    def completion(self, prompt: Sequence[int], sampling: Sampling) -> tuple[str, dict[str, Any]]:
        return "/completion", {"prompt": list(prompt), **self._common(sampling)}

    def infill(self, prefix: Sequence[int], suffix: Sequence[int], extra: Sequence[InfillContext],
               sampling: Sampling) -> tuple[str, dict[str, Any]]:
        """llama-server builds [repo][files][PRE]prefix[SUF]suffix[MID] from its vocabulary's FIM tokens;
        prefix and suffix go as ids (tokenized as text, control tokens never parsed), context files as text."""
        return "/infill", {
            "input_prefix": list(prefix), "input_suffix": list(suffix), "prompt": "",
            "input_extra": [{"filename": e.filename, "text": e.text} for e in extra], **self._common(sampling),
        }

    @staticmethod
    def parse(event: Any) -> Chunk:
        event = _checked(event, "llama-server")
        timings = event.get("timings") or {}
        figures = Figures(
            evaluated=timings.get("prompt_n"), reused=timings.get("cache_n"), generated=timings.get("predicted_n"),
            eval_ms=timings.get("prompt_ms"), gen_ms=timings.get("predicted_ms"),
        ) if timings else None
        ids = tuple(int(t) for t in event.get("tokens") or ())
        finish = ""
        if event.get("stop"):
            finish = {"eos": "eos", "limit": "max_tokens"}.get(event.get("stop_type", ""), "eos")
        return Chunk(text=event.get("content", ""), ids=ids, token=bool(ids), finish=finish, figures=figures)


class OpenAIWire:
    kind = "openai"
    sse = True
    string_prompt = True
    # One event per token, text only: an event with no text is a control token, which llama.cpp renders as
    # nothing. Every control token our templates name is a stop token, so it ends the completion here too.
    empty_is_control = True

    @staticmethod
    def completion(prompt: str, sampling: Sampling) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "prompt": prompt, "max_tokens": sampling.max_tokens, "temperature": 0.0, "top_p": 1.0,
            "stream": True, "stream_options": {"include_usage": True},
            "repeat_penalty": 1.0,  # llama-cpp-python's server defaults to 1.1: not greedy without this
        }
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.model:
            body["model"] = sampling.model
        return "/v1/completions", body

    @staticmethod
    def parse(event: Any) -> Chunk:
        event = _checked(event, "the OpenAI-compatible server")
        usage = event.get("usage") or {}
        figures = None
        if usage:
            cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
            prompt = usage.get("prompt_tokens")
            figures = Figures(
                evaluated=prompt - cached if prompt is not None and cached is not None else None,
                reused=cached, generated=usage.get("completion_tokens"),
            )
        choices = event.get("choices") or []
        if not choices:
            return Chunk(figures=figures)  # the usage-only event that closes a stream with include_usage
        choice = choices[0]
        reason = choice.get("finish_reason")
        finish = {"stop": "eos", "length": "max_tokens"}.get(reason, "eos") if reason else ""
        return Chunk(text=choice.get("text") or "", token=not reason, finish=finish, figures=figures)


class OllamaWire:
    kind = "ollama"
    sse = False
    string_prompt = True
    empty_is_control = False  # Ollama spells control tokens out, so the stop strings catch them

    @staticmethod
    def completion(prompt: str, sampling: Sampling) -> tuple[str, dict[str, Any]]:
        options: dict[str, Any] = {
            "temperature": 0.0, "top_k": 1, "repeat_penalty": 1.0, "num_predict": sampling.max_tokens,
            "num_ctx": sampling.n_ctx,  # Ollama's default window (2048/4096) would cut our prompts silently
        }
        if sampling.stop:
            options["stop"] = list(sampling.stop)
        return "/api/generate", {"model": sampling.model, "prompt": prompt, "raw": True, "stream": True,
                                 "options": options}

    @staticmethod
    def parse(event: Any) -> Chunk:
        event = _checked(event, "Ollama")
        if not event.get("done"):
            return Chunk(text=event.get("response", ""), token=True)
        ns = 1e-6  # Ollama reports durations in nanoseconds
        figures = Figures(
            evaluated=event.get("prompt_eval_count"), generated=event.get("eval_count"),
            eval_ms=event["prompt_eval_duration"] * ns if "prompt_eval_duration" in event else None,
            gen_ms=event["eval_duration"] * ns if "eval_duration" in event else None,
        )
        finish = "max_tokens" if event.get("done_reason") == "length" else "eos"
        return Chunk(text=event.get("response", ""), finish=finish, figures=figures)
