"""Model faults beyond test_server_tiny.py's (missing file, not a GGUF, no FIM tokens): a truncated GGUF, a cached
registry model whose bytes do not match its sha256, and not enough memory for the requested context. Each one
leaves the server up, says what is wrong and how to fix it (window message and `codegemma/status`), serves
requests with empty results, and recovers when the configuration is fixed, without a restart.

Memory: the process runs under an address-space limit (RLIMIT_AS, 3 GiB) and loads a GGUF whose KV cache needs
8 GiB at ctxSize 131072 but 256 MiB at 4096, so the failure is deterministic and nothing is really allocated.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from lsprotocol import types

import tests.gguf_factory as gguf_factory
from codegemma_lsp.registry import load_registry, sidecar_path
from tests.conftest import STAND_IN, lsp_session, open_document, server_command, status, wait_for_state
from tests.gguf_factory import write_truncated

URI = "file:///work/demo/faults.py"
SOURCE = "def add(a, b):\n    return \n"
AS_LIMIT = 3 << 30


async def served_empty(client) -> bool:
    open_document(client, URI, SOURCE)
    result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI), position=types.Position(line=1, character=11),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    return list(result.items) == []


def shown(client, text: str) -> bool:
    return any(text in m.message and m.type == types.MessageType.Error for m in client.messages)


async def test_truncated_gguf_says_so_and_recovers_when_the_model_is_fixed(tiny_model, tmp_path):
    broken = write_truncated(tiny_model, tmp_path / "truncated.gguf")
    async with lsp_session(server_command("--model", str(broken), "--no-download")) as (client, _):
        st = await status(client)
        assert st["state"] == "error"
        assert "could not load" in st["error"] and "truncated or corrupt" in st["error"], st["error"]
        assert "models pull" in st["error"]  # the fix
        assert shown(client, "truncated or corrupt")
        assert await served_empty(client)
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"codegemma": {"model": str(tiny_model)}}))
        assert (await wait_for_state(client, {"ready", "error"}))["state"] == "ready"


async def test_cached_model_with_the_wrong_sha256_is_never_loaded(tmp_path):
    spec = load_registry().get(STAND_IN)
    cache = tmp_path / "cache"
    cache.mkdir()
    model = cache / spec.filename
    model.write_bytes(b"GGUF" + b"\0" * 4096)  # right name, wrong bytes
    sidecar_path(model).write_text(json.dumps({"sha256": "0" * 64, "size": model.stat().st_size}))
    env = {"CODEGEMMA_LSP_CACHE": str(cache), "PATH": "/usr/bin:/bin"}
    async with lsp_session(server_command("--model", STAND_IN, "--no-download"), env=env) as (client, _):
        st = await status(client)
        assert st["state"] == "error" and "model" not in st
        assert "not verified" in st["error"] and f"models pull {STAND_IN}" in st["error"], st["error"]
        assert shown(client, "not verified")
        assert await served_empty(client)


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny GGUF with 8 KV heads of 2048 dims: 64 KiB of KV cache per token."""
    saved = gguf_factory.HEAD_COUNT, gguf_factory.HEAD_COUNT_KV, gguf_factory.HEAD_DIM
    gguf_factory.HEAD_COUNT, gguf_factory.HEAD_COUNT_KV, gguf_factory.HEAD_DIM = 8, 8, 2048
    try:
        return gguf_factory.write_tiny_gemma(tmp_path_factory.mktemp("wide") / "wide.gguf")
    finally:
        gguf_factory.HEAD_COUNT, gguf_factory.HEAD_COUNT_KV, gguf_factory.HEAD_DIM = saved


def limited(*args: str) -> list[str]:
    """The server under an address-space limit: allocations past it fail as they would on a full machine."""
    code = ("import resource, runpy, sys; "
            f"resource.setrlimit(resource.RLIMIT_AS, ({AS_LIMIT}, {AS_LIMIT})); "
            f"sys.argv = ['codegemma-lsp', *{list(args)!r}]; "
            "runpy.run_module('codegemma_lsp', run_name='__main__', alter_sys=True)")
    return [sys.executable, "-c", code]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS semantics")
async def test_not_enough_memory_for_the_context_says_lower_ctx_size_and_recovers(wide_model):
    command = limited("--log-level", "INFO", "--model", str(wide_model), "--n-gpu-layers", "0", "--no-download",
                      "--ctx-size", "131072")
    async with lsp_session(command) as (client, _):
        st = await status(client)
        assert st["state"] == "error", st
        assert "not enough memory for a 131072-token context" in st["error"], st["error"]
        assert "ctxSize" in st["error"]  # the fix
        assert shown(client, "not enough memory")
        assert await served_empty(client)
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"codegemma": {"ctxSize": 4096}}))
        st = await wait_for_state(client, {"ready", "error"})
        assert st["state"] == "ready" and st["device"]["nCtx"] == 4096, st
