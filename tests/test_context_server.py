"""Cross-file context end to end: the real server process on the tiny GGUF, the workspace on disk, an open
document importing from it; `codegemma/status` says which files the prompt carried."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from tests.conftest import lsp_session, open_document, position_of, server_command, status
from tests.test_context_resolve import write
from tests.test_snippets import CURSOR_LINE, OFFSET_REPORT, REPORT, STYLE

MAIN = "from shop.pricing import apply_discount\n\n\ndef checkout(total):\n    return apply_discount(total, \n"
PRICING = 'def apply_discount(total: float, percent: float) -> float:\n    """Take percent off total."""\n    return total * (1 - percent / 100)\n'


async def complete(client, uri: str, text: str, needle: str) -> dict:
    await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(text, needle),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    return (await status(client))["last"]


async def test_status_lists_the_imported_file_and_cross_file_off_turns_it_off(tiny_model, tmp_path):
    root = write(tmp_path / "ws", {"shop/__init__.py": "", "shop/pricing.py": PRICING, "main.py": "# stale copy on disk\n"})
    uri = (root / "main.py").as_uri()
    options = {"context": {"maxTokens": 1000}}
    async with lsp_session(server_command("--model", str(tiny_model)), root=root, init_options=options) as (client, _):
        open_document(client, uri, MAIN)
        last = await complete(client, uri, MAIN, "apply_discount(total, ")
        assert last["contextFiles"] == ["shop/pricing.py"]
        assert 0 < last["contextTokens"] <= 1000

        # An edit to the dependency that is open in the editor wins over disk.
        dep_uri = (root / "shop/pricing.py").as_uri()
        open_document(client, dep_uri, PRICING.replace("percent: float", "percent: float, cap: float = 50"))
        changed = "# edited\n" + MAIN  # a new document state, so no earlier completion is reused
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=changed)]))
        with_open = await complete(client, uri, changed, "apply_discount(total, ")
        assert with_open["contextFiles"] == ["shop/pricing.py"]
        assert with_open["contextTokens"] > last["contextTokens"]

    async with lsp_session(server_command("--model", str(tiny_model)), root=root,
                           init_options={"context": {"crossFile": False}}) as (client, _):
        open_document(client, uri, MAIN)
        last = await complete(client, uri, MAIN, "apply_discount(total, ")
        assert last["contextFiles"] == [] and last["contextTokens"] == 0


async def test_the_current_files_own_code_comes_only_from_outside_the_prompts_windows(tiny_model, tmp_path):
    root = write(tmp_path / "ws", {"pkg/__init__.py": "", "pkg/style.py": STYLE, "pkg/report.py": "# on disk\n"})
    uri = (root / "pkg/report.py").as_uri()
    text = REPORT.format(align="left")
    cursor = text[:OFFSET_REPORT].rsplit("\n", 1)[-1]
    for prefix_tokens, expected in ((4096, ["pkg/style.py"]), (64, ["pkg/style.py", "pkg/report.py"])):
        options = {"prefixTokens": prefix_tokens, "suffixTokens": 16}
        async with lsp_session(server_command("--model", str(tiny_model)), root=root, init_options=options) as (client, _):
            open_document(client, uri, text)
            await client.text_document_inline_completion_async(types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=CURSOR_LINE, character=len(cursor)),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
            assert (await status(client))["last"]["contextFiles"] == expected


async def index_files(client, want: int) -> dict:
    """Poll `codegemma/status` until the index lists `want` files (the walk runs in the background)."""
    for _ in range(200):
        index = (await status(client))["index"]
        if index["files"] == want:
            return index
        await asyncio.sleep(0.05)
    raise AssertionError(f"the index never listed {want} files: {index}")


async def test_the_file_list_is_built_before_any_completion_and_again_after_files_are_created(tiny_model, tmp_path):
    files = {f"pkg/mod{i}.py": f"def f{i}():\n    return {i}\n" for i in range(30)}
    root = write(tmp_path / "ws", {**files, "pkg/__init__.py": "", "notes.txt": "not source\n"})
    async with lsp_session(server_command("--model", str(tiny_model)), root=root, wait_ready=False) as (client, _):
        index = await index_files(client, 31)  # no document opened, nothing requested: listed while loading
        assert index["folders"] == [str(root)]

        (root / "pkg" / "new.py").write_text("X = 1\n")
        client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
            types.FileEvent(uri=(root / "pkg" / "new.py").as_uri(), type=types.FileChangeType.Created)]))
        await index_files(client, 32)

    async with lsp_session(server_command("--model", str(tiny_model)), root=root,
                           init_options={"context": {"crossFile": False}}) as (client, _):
        assert (await status(client))["index"]["files"] is None  # cross-file context off: no walk


async def test_a_changed_block_shifts_the_current_file_cells_and_answers_as_exact_evaluation(tiny_model, tmp_path):
    """When the context block changes (here the open dependency grew), the current file's cells move: with
    kvShift they are shifted, not evaluated again; with it off, everything after the change is evaluated. (The
    one-layer tiny model makes shifting exact: test_engine.py compares the logits.)"""
    main = ("from shop.pricing import apply_discount\n\n"
            + "".join(f"def rate_{i}(x):\n    return x * {i}\n\n" for i in range(12))
            + "def checkout(total):\n    return apply_discount(total, ")
    root = write(tmp_path / "ws", {"shop/__init__.py": "", "shop/pricing.py": PRICING, "main.py": main})
    uri, dep_uri = (root / "main.py").as_uri(), (root / "shop/pricing.py").as_uri()
    seen = {}
    for setting in (True, False):
        options = {"context": {"maxTokens": 1000}, "kvShift": setting, "speculate": False}
        async with lsp_session(server_command("--model", str(tiny_model)), root=root, init_options=options) as (client, _):
            open_document(client, uri, main)
            await complete(client, uri, main, "apply_discount(total, ")
            open_document(client, dep_uri, PRICING.replace("percent: float", "percent: float, cap: float = 50"))
            typed = main + "1"
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=typed)]))
            last = await complete(client, uri, typed, "apply_discount(total, 1")
            assert last["reusedTokens"] + last["movedTokens"] + last["evaluatedTokens"] == last["promptTokens"]
            seen[setting] = last
    shifted, exact = seen[True], seen[False]
    assert shifted["movedTokens"] > 200 and shifted["evaluatedTokens"] < exact["evaluatedTokens"] - 200
    assert exact["movedTokens"] == 0 and exact["reusedTokens"] == shifted["reusedTokens"]
    assert shifted["raw"] == exact["raw"]
