"""Drive the real server as an editor would: start `codegemma-lsp` over stdio, open a file, ask for ghost text
(`textDocument/inlineCompletion`) and the completion fallback, and print what came back with the server's figures.

    .venv/bin/python scripts/demo.py [--model ALIAS|PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

SAMPLE = '''import math


def circle_area(radius: float) -> float:
    """Area of a circle with the given radius."""
    return 


def main() -> None:
    print(circle_area(2.0))
'''
CURSOR_AFTER = '"""Area of a circle with the given radius."""\n    return '


def plain(value):
    """pygls returns custom-method results as named tuples; make them JSON-ready."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value


async def status_of(client: LanguageClient) -> dict:
    return plain(await client.protocol.send_request_async("codegemma/status", {}))


async def demo(model: str) -> int:
    client = LanguageClient("codegemma-demo", "1")
    progress: list[str] = []

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def create(params: types.WorkDoneProgressCreateParams) -> None:
        return None

    @client.feature(types.PROGRESS)
    def on_progress(params: types.ProgressParams) -> None:
        value = params.value if isinstance(params.value, dict) else {}
        text = value.get("title") or value.get("message")
        if text and (not progress or progress[-1] != text):
            progress.append(text)
            print(f"  [progress] {text}", file=sys.stderr)

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def on_message(params: types.ShowMessageParams) -> None:
        print(f"  [server] {params.message}", file=sys.stderr)

    await client.start_io(sys.executable, "-m", "codegemma_lsp", "--model", model, "--log-level", "WARNING")
    root = Path(tempfile.mkdtemp(prefix="codegemma-demo-"))
    path = root / "geometry.py"
    path.write_text(SAMPLE)
    await client.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities(
            window=types.WindowClientCapabilities(work_done_progress=True),
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities()),
        ),
        root_uri=root.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
    ))
    client.initialized(types.InitializedParams())
    print(f"Waiting for {model} to load (downloaded on first use)...", file=sys.stderr)
    while (status := await status_of(client))["state"] in ("idle", "loading"):
        await asyncio.sleep(0.2)
    if status["state"] != "ready":
        print(f"Model not ready: {status.get('error')}", file=sys.stderr)
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
        return 1

    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=SAMPLE)))
    offset = SAMPLE.index(CURSOR_AFTER) + len(CURSOR_AFTER)
    line = SAMPLE.count("\n", 0, offset)
    position = types.Position(line=line, character=offset - SAMPLE.rfind("\n", 0, offset) - 1)

    started = time.perf_counter()
    inline = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position,
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    elapsed = (time.perf_counter() - started) * 1000
    ghost = inline.items[0].insert_text if inline and inline.items else ""
    source_line = SAMPLE.split("\n")[line]
    print(f"\n{path.name}:{line + 1}  {source_line}\033[2m{ghost}\033[0m   <- ghost text in {elapsed:.0f} ms")

    completion = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position))
    for item in (completion.items if completion else []):
        print(f"completion fallback: textEdit {item.text_edit.range.start.character}..{item.text_edit.range.end.character}"
              f" -> {item.text_edit.new_text!r}")

    status = await status_of(client)
    print("\ncodegemma/status:")
    print(json.dumps({k: status.get(k) for k in ("state", "model", "device", "last")}, indent=2))
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return 0 if ghost else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-q4")
    return asyncio.run(demo(parser.parse_args().model))


if __name__ == "__main__":
    sys.exit(main())
