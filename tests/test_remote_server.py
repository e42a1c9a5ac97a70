"""The real server process with `--backend`, against a loopback llama-server that speaks its wire format
(tests/remote_fakes.py): status shows the backend, a dead backend is a clear error while the server stays up,
and a backend that goes down after loading still leaves typed-ahead completions served."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from lsprotocol import types

from tests.conftest import lsp_session, open_document, position_of, server_command, status
from tests.remote_fakes import FakeLlamaServer, byte_ids
from tests.test_remote_transport import closed_port
from tests.test_server_protocol import inline_params

URI = "file:///work/proj/app.py"
TEXT = "def total(values):\n    result = sum(val\n    return result\n"


def typed(pos: types.Position, text: str) -> types.DidChangeTextDocumentParams:
    return types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
        content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos), text=text)],
    )


async def test_dead_backend_at_start_is_a_clear_status_and_the_server_stays_up():
    url = f"http://127.0.0.1:{closed_port()}"
    async with lsp_session(server_command("--backend", url)) as (client, _):
        st = await status(client)
        assert st["state"] == "error" and f"backend {url} is unreachable" in st["error"]
        assert st["config"]["backend"] == url
        assert any("unreachable" in m.message for m in client.messages)
        open_document(client, URI, TEXT)
        result = await client.text_document_inline_completion_async(inline_params(position_of(TEXT, "sum(val")))
        assert list(result.items) == []  # not an error storm: no model, no suggestion


async def test_backend_status_latency_and_outage_with_typed_ahead_still_served():
    fake = FakeLlamaServer()
    fake.script.reply = byte_ids("ues) * 2", False)
    try:
        async with lsp_session(server_command("--backend", fake.url)) as (client, _):
            st = await status(client)
            assert st["state"] == "ready", st
            assert st["backend"]["url"] == fake.url and st["backend"]["kind"] == "llama-server"
            assert st["backend"]["model"] == "fake.gguf" and st["model"]["template"] == "codegemma"
            assert st["device"]["offload"] == "remote"

            open_document(client, URI, TEXT)
            pos = position_of(TEXT, "sum(val")
            first = await client.text_document_inline_completion_async(inline_params(pos))
            assert first.items[0].insert_text == "ues) * 2"
            st = await status(client)
            latency = st["backend"]["latency"]
            assert latency["completions"] == 1 and latency["up"] and latency["lastMs"] > 0 and latency["medianMs"] > 0
            assert st["last"]["reusedTokens"] == 3 and st["last"]["evaluatedTokens"] == 7  # the server's timings
            await asyncio.sleep(0.5)  # time enough for work ahead, which a remote backend never gets
            st = await status(client)
            assert st["workedAhead"] == 0 and st["backend"]["latency"]["completions"] == 1

            fake.close()  # the backend goes down
            client.text_document_did_change(typed(pos, "ue"))
            ahead = types.Position(line=pos.line, character=pos.character + 2)
            cached = await client.text_document_inline_completion_async(inline_params(ahead))
            assert cached.items[0].insert_text == "s) * 2"  # typed-ahead cache: no backend needed

            elsewhere = position_of(TEXT, "return result")
            try:
                await client.text_document_inline_completion_async(inline_params(elsewhere))
                message = ""
            except Exception as exc:  # pygls raises the JSON-RPC RequestFailed error
                message = str(exc)
            assert "unreachable" in message and "start the inference server" in message
            assert sum("unreachable" in m.message for m in client.messages) == 1  # told once per outage
            latency = (await status(client))["backend"]["latency"]
            assert latency["failures"] == 1 and not latency["up"] and "unreachable" in latency["lastError"]
    finally:
        fake.close()


def test_doctor_reports_the_backend_or_why_it_is_not_usable():
    fake = FakeLlamaServer()
    try:
        out = subprocess.run([sys.executable, "-m", "codegemma_lsp", "doctor", "--backend", fake.url],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        assert f"backend: {fake.url}" in out
        assert "kind llama-server, model fake.gguf, context 4096, tokenizer server, template codegemma" in out
        assert "one completion:" in out and "NOT USABLE" not in out
    finally:
        fake.close()
    dead = f"http://127.0.0.1:{closed_port()}"
    out = subprocess.run([sys.executable, "-m", "codegemma_lsp", "doctor", "--backend", dead],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert f"NOT USABLE: backend {dead} is unreachable" in out
