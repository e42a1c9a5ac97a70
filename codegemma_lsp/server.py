"""Protocol handling: LSP requests in, completion service calls out. The only module that imports pygls.

State lives on the server object built by `build_server`, so tests can build one with a fake engine for
protocol logic. Inference runs on one worker thread; each request carries a cancel flag that `$/cancelRequest`
or a newer request for the same document sets, and the engine polls it between tokens.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from . import __version__
from .completion import Completion, CompletionRequest
from .config import Config, apply_settings, reload_needed
from .errors import CodegemmaError
from .loader import EngineFactory, LoadedModel, llama_engine, load

log = logging.getLogger(__name__)

STATUS_METHOD = "codegemma/status"
_WORD_END = re.compile(r"[A-Za-z0-9_]*\Z")


class RequestFailed(JsonRpcException):
    """LSP's RequestFailed (-32803): the request was valid but the server could not complete it."""

    CODE = -32803
    MESSAGE = "request failed"


class CodegemmaServer(LanguageServer):
    """The language server and everything it holds between requests."""

    def __init__(self, config: Config, engine_factory: EngineFactory, download: bool = True) -> None:
        super().__init__("codegemma-lsp", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.config = config
        self.engine_factory = engine_factory
        self.download = download
        self.state = "idle"  # idle | loading | ready | error
        self.error: str | None = None
        self.loaded: LoadedModel | None = None
        self.pending_messages: list[str] = []
        self.infer = ThreadPoolExecutor(1, thread_name_prefix="codegemma-infer")
        self.loader = ThreadPoolExecutor(1, thread_name_prefix="codegemma-load")
        self.latest: dict[str, threading.Event] = {}
        self.request_ids = itertools.count(1)
        self.last_latency_ms: float | None = None
        self.stale_requests = 0

    # --- model lifecycle -------------------------------------------------------------------------------------

    async def load_model(self) -> None:
        """Load (downloading if needed) the configured model, with `$/progress`; failures keep the server up."""
        self.loaded, self.state, self.error = None, "loading", None
        loop = asyncio.get_running_loop()
        token = f"codegemma-load-{uuid.uuid4()}"
        progress = await self._progress_begin(token, f"Loading model {self.config.model}")
        last = [-1]

        def report(message: str, percent: int | None) -> None:
            if progress and percent != last[0]:
                last[0] = percent if percent is not None else last[0]
                loop.call_soon_threadsafe(
                    self.work_done_progress.report, token,
                    types.WorkDoneProgressReport(message=message, percentage=percent),
                )

        config = self.config
        try:
            loaded = await loop.run_in_executor(
                self.loader,
                lambda: load(config, engine_factory=self.engine_factory, progress=report, download=self.download),
            )
        except CodegemmaError as exc:
            self._fail(str(exc))
        except Exception as exc:  # llama.cpp and the OS can fail in ways no one enumerated; stay up
            log.exception("model load failed")
            self._fail(f"loading {config.model} failed unexpectedly: {exc!r} — see the log (--log-file)")
        else:
            if config is self.config:  # a newer configuration may have started another load meanwhile
                self.loaded, self.state = loaded, "ready"
        finally:
            if progress:
                end = "Model ready" if self.state == "ready" else f"Model not loaded: {self.error}"
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=end))

    def _fail(self, message: str) -> None:
        self.state, self.error = "error", message
        log.error("%s", message)
        self.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=f"codegemma-lsp: {message}"))

    async def _progress_begin(self, token: str, title: str) -> bool:
        caps = self.client_capabilities.window
        if not (caps and caps.work_done_progress):
            return False
        try:
            await self.work_done_progress.create_async(token)
        except Exception:  # a client that refuses the token still gets completions
            return False
        self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title, cancellable=False))
        return True

    def update_settings(self, settings: Any) -> bool:
        """Apply client settings; True when the model must be loaded again."""
        config, messages = apply_settings(self.config, settings)
        for message in messages:
            log.warning("%s", message)
            self.pending_messages.append(message)
        old, self.config = self.config, config
        if self.loaded is not None:
            self.loaded.service.config = config
        return reload_needed(old, config)

    def flush_messages(self) -> None:
        for message in self.pending_messages:
            self.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=f"codegemma-lsp: {message}"))
        self.pending_messages.clear()

    # --- completion --------------------------------------------------------------------------------------------

    def _relative_path(self, uri: str) -> tuple[str, str]:
        """(workspace-relative path, repository name) for the prompt's path line."""
        path = Path(to_fs_path(uri) or uri)
        for folder in self.workspace.folders.values():
            root = Path(to_fs_path(folder.uri) or folder.uri)
            if path.is_relative_to(root):
                return path.relative_to(root).as_posix(), root.name
        root_path = self.workspace.root_path
        if root_path and path.is_relative_to(root_path):
            return path.relative_to(root_path).as_posix(), Path(root_path).name
        return path.name, ""

    async def complete(self, uri: str, position: types.Position) -> Completion | None:
        """Run the pipeline for an open document; None when there is nothing to show (not ready, stale, …)."""
        if self.loaded is None or uri not in self.workspace.text_documents:
            return None
        document = self.workspace.get_text_document(uri)
        lines = document.lines
        if position.line > len(lines) or (position.line == len(lines) and position.character > 0):
            raise JsonRpcInvalidParams(f"position {position.line}:{position.character} is past the end of {uri}")
        offset = document.offset_at_position(position)
        path, repo = self._relative_path(uri)
        request = CompletionRequest(
            uri=uri, path=path, text=document.source, offset=offset, repo=repo, request_id=next(self.request_ids)
        )
        cancel = threading.Event()
        if (previous := self.latest.get(uri)) is not None:
            previous.set()  # latest wins: the older request for this document stops within one token
        self.latest[uri] = cancel
        service = self.loaded.service

        def run() -> Completion | None:
            if cancel.is_set():  # went stale while queued: never start it
                self.stale_requests += 1
                return None
            return service.complete(request, cancel.is_set)

        try:
            completion = await asyncio.get_running_loop().run_in_executor(self.infer, run)
        except asyncio.CancelledError:
            cancel.set()
            raise
        except CodegemmaError as exc:
            raise RequestFailed(str(exc)) from exc
        finally:
            if self.latest.get(uri) is cancel:
                del self.latest[uri]
        if completion is None or cancel.is_set():
            return None
        self.last_latency_ms = completion.timings_ms.get("total")
        return completion

    def status(self) -> dict[str, Any]:
        loaded = self.loaded
        result: dict[str, Any] = {"state": self.state, "error": self.error, "version": __version__}
        config = self.config
        result["config"] = {
            "model": config.model, "nGpuLayers": config.n_gpu_layers, "maxTokens": config.max_tokens,
            "prefixTokens": config.prefix_tokens, "suffixTokens": config.suffix_tokens, "ctxSize": config.ctx_size,
            "context": {"crossFile": config.context.cross_file, "maxTokens": config.context.max_tokens},
        }
        if loaded is None:
            return result
        info, spec = loaded.service.engine.info, loaded.resolved.spec
        result["model"] = {
            "alias": spec.alias if spec else None,
            "path": info.path,
            "family": spec.family if spec else loaded.service.template.name,
            "quantization": spec.quantization if spec else info.file_type,
            "template": loaded.service.template.name,
            "architecture": info.architecture,
            "name": info.name,
            "sizeBytes": info.size_bytes,
            "nParams": info.n_params,
        }
        result["device"] = {
            "gpuOffloadSupported": info.gpu_offload_supported,
            "nGpuLayers": info.n_gpu_layers if info.gpu_offload_supported else 0,
            "offload": "gpu" if info.gpu_offload_supported and info.n_gpu_layers != 0 else "cpu",
            "nCtx": info.n_ctx,
        }
        last = loaded.service.last
        if last is not None and last.stats is not None:
            s = last.stats
            result["last"] = {
                "promptTokens": s.prompt_tokens,
                "reusedTokens": s.reused_tokens,
                "evaluatedTokens": s.evaluated_tokens,
                "generatedTokens": s.generated_tokens,
                "evalMs": round(s.eval_ms, 2),
                "generationMs": round(s.gen_ms, 2),
                "stopReason": s.stop_reason,
                "multiline": last.mode.multiline,
                "contextFiles": list(last.context_paths),
                "contextTokens": last.context_tokens,
                "latencyMs": round(last.timings_ms.get("total", 0.0), 2),
                "timingsMs": {k: round(v, 2) for k, v in last.timings_ms.items()},
            }
        result["staleRequests"] = self.stale_requests
        return result

    def stop_all(self) -> None:
        for cancel in self.latest.values():
            cancel.set()


def _cursor_word(completion_prefix: str) -> str:
    """Identifier characters just before the cursor: completion items replace from the word start so every
    client's filter (Helix, Neovim's omnifunc) matches the item against what the user typed."""
    match = _WORD_END.search(completion_prefix)
    return match.group(0) if match else ""


def _documentation(caps: types.ClientCapabilities, code: str) -> types.MarkupContent | None:
    """The whole suggestion as the item's documentation, in the richest format the client declares."""
    item = caps.text_document and caps.text_document.completion and caps.text_document.completion.completion_item
    formats = (item and item.documentation_format) or []
    if types.MarkupKind.Markdown in formats:
        return types.MarkupContent(kind=types.MarkupKind.Markdown, value=f"```\n{code}\n```")
    if types.MarkupKind.PlainText in formats:
        return types.MarkupContent(kind=types.MarkupKind.PlainText, value=code)
    return None


def build_server(config: Config | None = None, engine_factory: EngineFactory = llama_engine, *, download: bool = True) -> CodegemmaServer:
    """Create the server with its handlers registered."""
    server = CodegemmaServer(config or Config(), engine_factory, download)

    @server.feature(types.INITIALIZE)
    def initialize(ls: CodegemmaServer, params: types.InitializeParams) -> None:
        ls.update_settings(params.initialization_options)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: CodegemmaServer, params: types.InitializedParams) -> None:
        ls.flush_messages()
        await ls.load_model()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(ls: CodegemmaServer, params: types.DidChangeConfigurationParams) -> None:
        reload = ls.update_settings(params.settings)
        ls.flush_messages()
        if reload:
            await ls.load_model()

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: CodegemmaServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
        completion = await ls.complete(params.text_document.uri, params.position)
        if completion is None or not completion.text:
            return types.InlineCompletionList(items=[])
        here = types.Range(start=params.position, end=params.position)
        return types.InlineCompletionList(items=[types.InlineCompletionItem(insert_text=completion.text, range=here)])

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " ", ":", "="]))
    async def completion(ls: CodegemmaServer, params: types.CompletionParams) -> types.CompletionList:
        empty = types.CompletionList(is_incomplete=True, items=[])
        result = await ls.complete(params.text_document.uri, params.position)
        if result is None or not result.text:
            return empty
        document = ls.workspace.get_text_document(params.text_document.uri)
        line = document.lines[params.position.line] if params.position.line < len(document.lines) else ""
        server_pos = document.position_from_client_units(params.position)
        word = _cursor_word(line[: server_pos.character])
        # Identifier characters are one code unit in every encoding, so the word start is a plain subtraction.
        start = types.Position(line=params.position.line, character=params.position.character - len(word))
        new_text = word + result.text
        item = types.CompletionItem(
            label=new_text.strip().split("\n", 1)[0][:80] or new_text,
            kind=types.CompletionItemKind.Text,
            detail="codegemma" + (" (block)" if result.mode.multiline else ""),
            documentation=_documentation(ls.client_capabilities, new_text),
            filter_text=new_text,
            sort_text="0",
            preselect=True,
            insert_text_format=types.InsertTextFormat.PlainText,
            text_edit=types.TextEdit(range=types.Range(start=start, end=params.position), new_text=new_text),
        )
        return types.CompletionList(is_incomplete=True, items=[item])

    @server.feature(STATUS_METHOD)
    def status(ls: CodegemmaServer, params: Any) -> dict[str, Any]:
        return ls.status()

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: CodegemmaServer, params: Any) -> None:
        ls.stop_all()

    return server
