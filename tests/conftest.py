"""Shared fixtures: real models (a generated tiny GGUF, the 0.5B stand-in) and LSP sessions with the real
server process, driven by pytest-lsp's client over JSON-RPC."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.gguf_factory import write_tiny_gemma

STAND_IN = "qwen2.5-coder-0.5b-q4"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 1-layer Gemma GGUF with CodeGemma's control tokens: real llama.cpp, milliseconds to load."""
    return write_tiny_gemma(tmp_path_factory.mktemp("models") / "tiny-codegemma.gguf")


@pytest.fixture(scope="session")
def stand_in_model() -> Path:
    """The real Qwen2.5-Coder 0.5B stand-in, pulled (sha256-verified) into the cache if it is not there yet."""
    from codegemma_lsp.registry import is_present, load_registry, local_path

    spec = load_registry().get(STAND_IN)
    if not is_present(spec):
        subprocess.run([sys.executable, "-m", "codegemma_lsp", "models", "pull", STAND_IN], check=True)
    return local_path(spec)


def capabilities(inline: bool = True, encodings: list[str] | None = None) -> types.ClientCapabilities:
    """A client like VS Code 1.9x: inline completion, progress, snippets off."""
    return types.ClientCapabilities(
        general=types.GeneralClientCapabilities(position_encodings=encodings) if encodings else None,
        window=types.WindowClientCapabilities(work_done_progress=True),
        text_document=types.TextDocumentClientCapabilities(
            synchronization=types.TextDocumentSyncClientCapabilities(),
            completion=types.CompletionClientCapabilities(completion_item=types.ClientCompletionItemOptions(
                documentation_format=[types.MarkupKind.Markdown, types.MarkupKind.PlainText])),
            inline_completion=types.InlineCompletionClientCapabilities() if inline else None,
        ),
    )


@asynccontextmanager
async def lsp_session(
    command: list[str], *, init_options: Any = None, root: Path | None = None, wait_ready: bool = True,
    caps: types.ClientCapabilities | None = None, env: dict[str, str] | None = None,
) -> AsyncIterator[tuple[LanguageClient, types.InitializeResult]]:
    """Start the real server process, initialize, optionally wait for the model, and shut down cleanly."""
    client = await ClientServerConfig(server_command=command, server_env=env).start()
    assert isinstance(client, LanguageClient)
    clean = False
    try:
        result = await client.initialize_session(
            types.InitializeParams(
                capabilities=caps or capabilities(),
                initialization_options=init_options,
                root_uri=root.as_uri() if root else None,
                workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)] if root else None,
            )
        )
        if wait_ready:
            await wait_for_state(client, {"ready", "error"})
        yield client, result
        await client.shutdown_session()
        clean = True
    finally:
        process = client._server
        if not clean and process is not None and process.returncode is None:
            process.kill()  # a failed test must not hang waiting for a server that was never told to exit
        await client.stop()


async def status(client: LanguageClient) -> dict[str, Any]:
    result = await client.protocol.send_request_async("codegemma/status", {})
    return to_plain(result)


def to_plain(value: Any) -> Any:
    """pygls hands unknown-method results back as attribute objects; turn them into dicts and lists."""
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return [to_plain(v) for v in value]
    if hasattr(value, "_asdict"):
        return {k: to_plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return value


async def wait_for_state(client: LanguageClient, states: set[str], timeout: float = 120.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        current = await status(client)
        if current["state"] in states:
            return current
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"server stuck in state {current['state']!r}")
        await asyncio.sleep(0.05)


def server_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "codegemma_lsp", "--log-level", "INFO", *args]


def open_document(client: LanguageClient, uri: str, text: str, language: str = "python", version: int = 1) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)
        )
    )


def position_of(text: str, needle: str, after: bool = True) -> types.Position:
    """LSP position (UTF-16 units) just after (or at) the first occurrence of `needle`."""
    index = text.index(needle) + (len(needle) if after else 0)
    line = text.count("\n", 0, index)
    line_text = text[text.rfind("\n", 0, index) + 1 : index]
    return types.Position(line=line, character=len(line_text.encode("utf-16-le")) // 2)
