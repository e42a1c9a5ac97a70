"""Model name -> ready CompletionService: resolve the alias or path, download on first use, load, bind a template.

Blocking and pygls-free: the server runs it on a worker thread, the CLI calls it directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .completion import CompletionService, ContextProvider
from .config import Config
from .engine import Engine, LlamaEngine
from .errors import ModelNotFound
from .registry import ModelSpec, ResolvedModel, load_registry, local_path, resolve_model

log = logging.getLogger(__name__)

Progress = Callable[[str, int | None], None]  # message, percentage (None when unknown)
EngineFactory = Callable[[Path, Config], Engine]


def llama_engine(path: Path, config: Config) -> Engine:
    return LlamaEngine(path, n_ctx=config.ctx_size, n_gpu_layers=config.n_gpu_layers, threads=config.threads)


@dataclass(frozen=True)
class LoadedModel:
    service: CompletionService
    resolved: ResolvedModel | None  # None: a remote backend serves the model


def resolve_or_pull(name: str, progress: Progress, *, download: bool = True) -> ResolvedModel:
    """Resolve a model; a registry alias that is not on disk yet is downloaded (verified) first."""
    try:
        return resolve_model(name)
    except ModelNotFound:
        registry = load_registry()
        if not download or name not in registry.aliases:
            raise
    from .download import pull

    spec: ModelSpec = registry.get(name)
    progress(f"Downloading {spec.alias} ({spec.filename})", 0)
    pull(spec, progress=lambda done, total: progress(
        f"Downloading {spec.alias}: {done / 1e6:.0f}/{total / 1e6:.0f} MB" if total else f"Downloading {spec.alias}",
        int(100 * done / total) if total else None,
    ))
    return ResolvedModel(path=local_path(spec), spec=spec)


def load(
    config: Config,
    *,
    engine_factory: EngineFactory = llama_engine,
    context: ContextProvider | None = None,
    progress: Progress = lambda message, percent: None,
    download: bool = True,
) -> LoadedModel:
    if config.backend.url:
        return _connect(config, context, progress, download)
    resolved = resolve_or_pull(config.model, progress, download=download)
    progress(f"Loading {resolved.path.name}", None)
    engine = engine_factory(resolved.path, config)
    service = CompletionService(engine, config, context)
    log.info("model %s loaded (template %s)", resolved.path, service.template.name)
    return LoadedModel(service=service, resolved=resolved)


def _connect(config: Config, context: ContextProvider | None, progress: Progress, download: bool) -> LoadedModel:
    """A remote backend: no local model is resolved or downloaded, except a GGUF named as its tokenizer."""
    from .remote import connect

    tokenizer = config.backend.tokenizer
    vocab = resolve_or_pull(tokenizer, progress, download=download).path if tokenizer else None
    progress(f"Connecting to {config.backend.url}", None)
    engine = connect(config, vocab)
    service = CompletionService(engine, config, context)
    log.info("backend %s ready (template %s)", config.backend.url, service.template.name)
    return LoadedModel(service=service, resolved=None)
