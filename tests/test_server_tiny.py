"""The real server process with real llama.cpp on a generated tiny GGUF: load, progress, status figures,
KV-cache reuse, and model faults that must keep the server up."""

from __future__ import annotations

import pytest
from lsprotocol import types

from tests.conftest import lsp_session, open_document, position_of, server_command, status
from tests.gguf_factory import write_not_gguf, write_tiny_gemma

SOURCE = 'def greet(name):\n    """Say hello."""\n    return "Hello, " + \n\nprint(greet("world"))\n'
URI = "file:///work/demo/greet.py"


async def test_capabilities_progress_and_real_inference(tiny_model, tmp_path):
    async with lsp_session(server_command("--model", str(tiny_model)), root=tmp_path) as (client, init):
        caps = init.capabilities
        assert caps.inline_completion_provider is not None
        assert caps.completion_provider is not None
        assert caps.position_encoding in (None, types.PositionEncodingKind.Utf16)
        sync = caps.text_document_sync
        assert getattr(sync, "change", sync) == types.TextDocumentSyncKind.Incremental

        kinds = [type(v).__name__ for reports in client.progress_reports.values() for v in reports]
        assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd"

        st = await status(client)
        assert st["state"] == "ready", st
        assert st["model"]["template"] == "codegemma" and st["model"]["architecture"] == "gemma"
        assert st["model"]["layout"] == st["config"]["fimLayout"] == "spm"  # the template declares SPM
        assert st["device"]["offload"] in ("cpu", "gpu")

        open_document(client, URI, SOURCE)
        pos = position_of(SOURCE, '"Hello, " + ')
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI), position=pos,
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        )
        result = await client.text_document_inline_completion_async(params)
        assert isinstance(result, types.InlineCompletionList)
        for item in result.items:
            assert item.range.start == pos and item.range.end == pos
        first = (await status(client))["last"]
        assert first["promptTokens"] > 20 and first["evaluatedTokens"] == first["promptTokens"] - first["reusedTokens"]
        assert first["generatedTokens"] >= 1 or first["stopReason"] in ("eos", "stop_token")
        assert first["stopReason"] in {"eos", "stop_token", "stop_text", "max_tokens", "time_budget"}

        # The same request again (an editor re-asking, or undo back here) is answered from the typed-ahead cache.
        repeat = await client.text_document_inline_completion_async(params)
        assert [i.insert_text for i in repeat.items] == [i.insert_text for i in result.items]
        assert (await status(client))["typedAheadHits"] == (1 if result.items else 0)

        # Type one character: only the tokens after the edit are evaluated again.
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos), text="n")],
        ))
        params.position = types.Position(line=pos.line, character=pos.character + 1)
        await client.text_document_inline_completion_async(params)
        typed = (await status(client))["last"]
        assert typed["reusedTokens"] > typed["promptTokens"] // 2
        assert typed["evaluatedTokens"] < typed["promptTokens"] // 2


@pytest.mark.parametrize("fault", ["missing", "not-gguf", "no-fim"])
async def test_model_faults_give_a_message_and_keep_the_server_up(fault, tmp_path):
    path = tmp_path / "model.gguf"
    if fault == "not-gguf":
        write_not_gguf(path)
    elif fault == "no-fim":
        write_tiny_gemma(path, fim=False)
    async with lsp_session(server_command("--model", str(path), "--no-download")) as (client, _):
        st = await status(client)
        assert st["state"] == "error"
        expected = {"missing": "no such file", "not-gguf": "not a GGUF", "no-fim": "fill-in-the-middle"}[fault]
        assert expected in st["error"]
        assert any(expected in m.message and m.type == types.MessageType.Error for m in client.messages)
        open_document(client, URI, SOURCE)
        result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI), position=types.Position(line=0, character=0),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
        ))
        assert list(result.items) == []


async def test_switching_model_by_configuration_reloads(tiny_model, tmp_path):
    broken = write_not_gguf(tmp_path / "broken.gguf")
    async with lsp_session(server_command("--model", str(broken), "--no-download")) as (client, _):
        assert (await status(client))["state"] == "error"
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"codegemma": {"model": str(tiny_model), "maxTokens": 8}})
        )
        from tests.conftest import wait_for_state

        st = await wait_for_state(client, {"ready"})
        assert st["config"]["maxTokens"] == 8 and st["model"]["path"] == str(tiny_model)
