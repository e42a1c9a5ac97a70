"""End to end against a real llama-server, built from the llama.cpp sources vendored in llama-cpp-python's sdist
(scripts/build_llama_server.sh, run by scripts/test.sh; these tests skip without it unless
CODEGEMMA_REQUIRE_LLAMA_SERVER=1), serving the Qwen2.5-Coder 0.5B stand-in on loopback. The real language-server
process detects it and completes through it; our exact prompt ids go to `/completion`, so its greedy text equals
the in-process engine's; `cache_prompt` keeps the server's KV cache between keystrokes; a cancelled request
closes the stream and frees the server's only slot; `/infill` works when asked for."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lsprotocol import types

from codegemma_lsp.completion import CompletionRequest, CompletionService
from codegemma_lsp.config import Config
from codegemma_lsp.engine import GenerationRequest
from tests.conftest import lsp_session, open_document, position_of, server_command, status
from tests.servers import llama_server_binary, serve
from tests.test_remote_openai import (  # noqa: F401 (in_process is a fixture)
    PROMPTS, THREADS, _prompt_ids, cancel_frees_the_server, in_process, remote)
from tests.test_stand_in import SOURCE, URI

pytestmark = pytest.mark.model
FIB_AT = SOURCE.index("        return n\n    return ") + len("        return n\n    return ")


def binary() -> Path:
    path = llama_server_binary(build=False)
    if not os.access(path, os.X_OK):
        message = f"llama-server is not built (run `bash scripts/build_llama_server.sh`; expected {path})"
        if os.environ.get("CODEGEMMA_REQUIRE_LLAMA_SERVER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def llama_server(stand_in_model, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    with serve("llama-server", stand_in_model, THREADS, log_path, binary=binary()) as url:
        yield url, log_path


def inline(uri: str, pos: types.Position) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=pos,
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))


async def test_lsp_detects_llama_server_completes_and_reuses_its_kv_cache(llama_server, tmp_path):
    url, _ = llama_server
    async with lsp_session(server_command("--backend", url), root=tmp_path) as (client, _):
        st = await status(client)
        assert st["state"] == "ready", st
        backend = st["backend"]
        assert backend["url"] == url and backend["kind"] == "llama-server" and backend["tokenizer"] == "server"
        assert st["model"]["template"] == "qwen2.5-coder"  # detected through the server's vocabulary

        open_document(client, URI, SOURCE)
        pos = position_of(SOURCE, "        return n\n    return ")
        [item] = (await client.text_document_inline_completion_async(inline(URI, pos))).items
        assert item.insert_text.replace(" ", "") == "fibonacci(n-1)+fibonacci(n-2)"
        first = (await status(client))["last"]

        # One keystroke later (one the ghost text does not start with, so the typed-ahead cache cannot answer) the
        # server evaluates only what follows the cursor: our prompt is byte-stable before it and `cache_prompt`
        # keeps the server's KV cache. (Prefix-suffix-middle order: the suffix after the cursor comes again.)
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos), text="x")]))
        after = types.Position(line=pos.line, character=pos.character + 1)
        await client.text_document_inline_completion_async(inline(URI, after))
        second = (await status(client))["last"]
        assert first["reusedTokens"] + first["evaluatedTokens"] == first["promptTokens"], first
        assert second["reusedTokens"] + second["evaluatedTokens"] == second["promptTokens"], second
        tokenize = remote(url).tokenize
        suffix_tokens = sum(len(tokenize(line)) for line in SOURCE[FIB_AT:].splitlines(keepends=True))
        assert second["evaluatedTokens"] <= suffix_tokens + 4, (first, second, suffix_tokens)
        assert (await status(client))["backend"]["latency"]["completions"] == 2


@pytest.mark.parametrize("text,offset", PROMPTS, ids=["fib", "circle", "stack"])
def test_remote_greedy_completion_equals_in_process(llama_server, in_process, text, offset):
    """llama-server takes our ids as they are: the same prompt ids in, the same greedy text out."""
    url, _ = llama_server
    engine = remote(url)
    service = CompletionService(engine, Config(max_tokens=24, postprocess=()))
    assert service.template.name == "qwen2.5-coder"
    service.complete(CompletionRequest(uri="file:///p.py", path="p.py", text=text, offset=offset))
    ours = service.last
    assert ours is not None and ours.stats is not None and ours.raw.strip()
    prompt_ids = _prompt_ids(service, text, offset)
    assert ours.stats.prompt_tokens == len(prompt_ids)
    local = in_process.generate(GenerationRequest(prompt=prompt_ids, max_tokens=24,
                                                  stop_ids=service.template.stop_ids), lambda: False)
    assert ours.raw == local.text
    assert ours.stats.stop_reason == local.stats.stop_reason


def test_tokenizer_is_the_servers_and_matches_the_gguf(llama_server, in_process):
    url, _ = llama_server
    engine = remote(url)
    for text in (SOURCE, 's = "<|fim_middle|>"  # marker spelled in a string\n', "naïve 漢字 😀\n"):
        assert list(engine.tokenize(text)) == list(in_process.tokenize(text))


def test_cancelling_closes_the_stream_and_frees_the_slot(llama_server):
    url, _ = llama_server
    cancel_frees_the_server(remote(url))  # one slot (--parallel 1)


def test_infill_endpoint_when_asked(llama_server):
    url, _ = llama_server
    service = CompletionService(remote(url, infill=True), Config(max_tokens=24))
    completion = service.complete(CompletionRequest(uri="file:///fib.py", path="fib.py", text=SOURCE, offset=FIB_AT))
    assert "fibonacci(n" in completion.text.replace(" ", ""), completion
