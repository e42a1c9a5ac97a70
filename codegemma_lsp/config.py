"""The one configuration object, filled from CLI flags, `initializationOptions` and
`workspace/didChangeConfiguration`.

Clients send loosely typed JSON; every key is validated here once, and a bad value falls back to the current
value with a message instead of breaking the server (the editor keeps working with sane settings).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from .postprocess import DEFAULT_STEPS, STEPS

DEFAULT_MODEL = "2b-q4"


@dataclass(frozen=True)
class ContextConfig:
    """Cross-file context: on by default, bounded so it never crowds out the local window."""

    cross_file: bool = True
    max_tokens: int = 1024


FIM_LAYOUTS = ("psm", "spm")
KV_SHIFT = ("auto", "on", "off")
BACKEND_KINDS = ("auto", "llama-server", "openai", "ollama")


@dataclass(frozen=True)
class BackendConfig:
    """A remote inference server to send prompts to instead of loading a GGUF in process (url "" = local)."""

    url: str = ""
    kind: str = "auto"  # detected from the server's endpoints unless set
    model: str | None = None  # the server's model name; None = the one it serves (first listed)
    api_key_env: str = "CODEGEMMA_API_KEY"  # environment variable holding the key: never the key in settings
    tokenizer: str | None = None  # local GGUF (alias or path) whose vocabulary tokenizes; None = the server's
    infill: bool = False  # llama-server only: let the server build the FIM prompt (/infill) from our pieces


@dataclass(frozen=True)
class Config:
    """Everything a completion depends on. Frozen: a request works on one consistent snapshot."""

    model: str = DEFAULT_MODEL
    n_gpu_layers: int = -1  # all layers where the build can offload (Metal/CUDA); ignored on CPU builds
    max_tokens: int = 64
    time_budget_ms: int = 0  # generation stops this long after the model started on a request (0 = no limit)
    prefix_tokens: int = 1024
    suffix_tokens: int = 256
    kv_reuse: bool = True  # False: every request evaluates its whole prompt (a baseline; a suspected stale cache)
    kv_shift: str = "auto"  # shift prompt parts that moved (changed block, moved prefix start): on | off | auto (CPU)
    fim_layout: str = "spm"  # suffix before prefix, so typing forward only appends ("psm": prefix first)
    speculate: bool = True  # work ahead on what the user asks next, e.g. Tab then Enter (in-process engines only)
    ctx_size: int = 4096
    threads: int | None = None
    context: ContextConfig = field(default_factory=ContextConfig)
    postprocess: tuple[str, ...] = DEFAULT_STEPS  # post-processing steps; () = raw model text, no early stop
    backend: BackendConfig = field(default_factory=BackendConfig)


# Attributes whose change requires loading the model again (or connecting to another backend).
RELOAD_ATTRS = ("model", "n_gpu_layers", "ctx_size", "threads", "backend")


def _int_in(lo: int, hi: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {value!r}")
        if not lo <= value <= hi:
            raise ValueError(f"expected {lo}..{hi}, got {value}")
        return value

    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _nonempty_str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a model alias or path, got {value!r}")
    return value.strip()


def _threads(value: Any) -> int | None:
    return None if value is None else _int_in(1, 512)(value)


def _steps(value: Any) -> tuple[str, ...]:
    """`true` (the default steps), `false` (raw model text: benchmark floors), or a list of step names."""
    if isinstance(value, bool):
        return DEFAULT_STEPS if value else ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected true, false or a list of step names, got {value!r}")
    if unknown := [v for v in value if v not in STEPS]:
        raise ValueError(f"unknown step(s) {', '.join(map(repr, unknown))} (known: {', '.join(STEPS)})")
    return tuple(step for step in STEPS if step in value)


def _url(value: Any) -> str:
    """An http(s) URL with a host, or "" for in-process inference."""
    if not isinstance(value, str):
        raise ValueError(f"expected an http(s) URL or \"\", got {value!r}")
    value = value.strip().rstrip("/")
    if value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL with a host, got {value!r}")
    return value


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    return check


def _auto_or_bool(value: Any) -> str:
    """true, false or "auto", kept as "on", "off" or "auto"."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return _one_of(KV_SHIFT)(value)


def _optional_str(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a string or null, got {value!r}")
    return value.strip()


def _env_name(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(f"expected an environment variable name, got {value!r}")
    return value


# Client key -> (path of attributes on Config, validator). The keys are a public contract: editor configs and
# benchmarks use exactly these names.
KEYS: dict[str, tuple[tuple[str, ...], Callable[[Any], Any]]] = {
    "model": (("model",), _nonempty_str),
    "nGpuLayers": (("n_gpu_layers",), _int_in(-1, 10_000)),
    "maxTokens": (("max_tokens",), _int_in(1, 1024)),
    "timeBudgetMs": (("time_budget_ms",), _int_in(0, 600_000)),
    "prefixTokens": (("prefix_tokens",), _int_in(16, 32_768)),
    "suffixTokens": (("suffix_tokens",), _int_in(0, 32_768)),
    "fimLayout": (("fim_layout",), _one_of(FIM_LAYOUTS)),
    "kvReuse": (("kv_reuse",), _bool),
    "kvShift": (("kv_shift",), _auto_or_bool),
    "speculate": (("speculate",), _bool),
    "ctxSize": (("ctx_size",), _int_in(512, 131_072)),
    "threads": (("threads",), _threads),
    "context.crossFile": (("context", "cross_file"), _bool),
    "context.maxTokens": (("context", "max_tokens"), _int_in(0, 32_768)),
    "postprocess": (("postprocess",), _steps),
    "backend": (("backend", "url"), _url),
    "backendKind": (("backend", "kind"), _one_of(BACKEND_KINDS)),
    "backendModel": (("backend", "model"), _optional_str),
    "backendApiKeyEnv": (("backend", "api_key_env"), _env_name),
    "backendTokenizer": (("backend", "tokenizer"), _optional_str),
    "backendInfill": (("backend", "infill"), _bool),
}


def flatten(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"context": {"crossFile": false}}` and `{"context.crossFile": false}` mean the same thing."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and name not in KEYS:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _replace_path(obj: Any, path: tuple[str, ...], value: Any) -> Any:
    if len(path) == 1:
        return dataclasses.replace(obj, **{path[0]: value})
    child = getattr(obj, path[0])
    return dataclasses.replace(obj, **{path[0]: _replace_path(child, path[1:], value)})


def apply_settings(config: Config, settings: Any) -> tuple[Config, list[str]]:
    """Return `config` updated from client settings, and one message per rejected key.

    Settings may be wrapped in a `codegemma` section (what VS Code's `workspace/configuration` sends).
    """
    if settings is None:
        return config, []
    if not isinstance(settings, Mapping):
        return config, [f"settings must be an object, got {type(settings).__name__}; using current settings"]
    if isinstance(settings.get("codegemma"), Mapping):
        settings = settings["codegemma"]
    messages: list[str] = []
    for key, value in flatten(settings).items():
        if key not in KEYS:
            messages.append(f"unknown setting {key!r} ignored (known: {', '.join(sorted(KEYS))})")
            continue
        path, check = KEYS[key]
        try:
            config = _replace_path(config, path, check(value))
        except ValueError as exc:
            messages.append(f"setting {key!r}: {exc}; keeping the current value")
    return config, messages


def reload_needed(old: Config, new: Config) -> bool:
    """True when the model must be loaded again for `new` to take effect."""
    return any(getattr(old, name) != getattr(new, name) for name in RELOAD_ATTRS)
