"""A small JSON-RPC driver for benchmarks: the real server process and pytest-lsp's client, outside a pytest run."""

from __future__ import annotations

import sys
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.conftest import status  # noqa: F401  re-exported: the benchmarks read codegemma/status as the tests do


@asynccontextmanager
async def session(command: list[str], root: Path, init_options: Any) -> AsyncIterator[LanguageClient]:
    """Start the server with `root` as its workspace folder, wait until the model is ready, shut down after."""
    client = await ClientServerConfig(server_command=command).start()
    clean = False
    try:
        await client.initialize_session(types.InitializeParams(
            capabilities=types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities())),
            initialization_options=init_options,
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
        ))
        import asyncio

        # Poll with a timeout and ask again: a reply lost while the model loads (llama-cpp-python's quiet mode
        # once pointed fd 1 at /dev/null during loading) must not hang the benchmark.
        state = "loading"
        for _ in range(600):
            try:
                state = (await asyncio.wait_for(status(client), 2.0))["state"]
            except asyncio.TimeoutError:
                continue
            if state in ("ready", "error"):
                break
            await asyncio.sleep(0.2)
        if state != "ready":
            raise RuntimeError(f"server not ready: {await status(client)}")
        yield client
        await client.shutdown_session()
        clean = True
    finally:
        process = client._server
        if not clean and process is not None and process.returncode is None:
            process.kill()  # a server that failed to load must not keep the benchmark waiting
        await client.stop()


def server_command(*args: str, entry: str | None = None) -> list[str]:
    """`python -m codegemma_lsp …`, or a bench entry script that builds the same server differently."""
    head = [sys.executable, entry] if entry else [sys.executable, "-m", "codegemma_lsp"]
    # stderr to a file: llama.cpp's load progress is one long line, which pytest-lsp's line-by-line stderr
    # forwarder cannot read; the undrained pipe then fills and stalls the server.
    log = Path(tempfile.gettempdir()) / "codegemma-bench-server.log"
    return ["sh", "-c", f'exec "$@" 2>>"{log}"', "sh", *head, "--log-level", "WARNING", *args]


async def inline_completion(client: LanguageClient, uri: str, text: str, offset: int, version: int) -> str:
    """Open `text` as the document, ask for an inline completion at code-point `offset`, close it."""
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)))
    line = text.count("\n", 0, offset)
    column = offset - (text.rfind("\n", 0, offset) + 1)
    character = len(text[offset - column:offset].encode("utf-16-le")) // 2
    result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    return result.items[0].insert_text if result and result.items else ""
