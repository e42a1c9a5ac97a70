"""The product's promise on a real code model: the Qwen2.5-Coder 0.5B stand-in (real llama.cpp, real server
process over JSON-RPC) completes an easy hole sensibly, through ghost text, the completion fallback and the CLI."""

from __future__ import annotations

import subprocess
import sys

from lsprotocol import types

from tests.conftest import lsp_session, open_document, position_of, server_command, status
from tests.test_server_protocol import inline_params

SOURCE = '''def fibonacci(n):
    """Return the n-th Fibonacci number."""
    if n < 2:
        return n
    return 


def main():
    print(fibonacci(10))
'''
URI = "file:///work/demo/fib.py"


async def test_ghost_text_and_completion_fallback_on_the_stand_in(stand_in_model, tmp_path):
    async with lsp_session(server_command("--model", "qwen2.5-coder-0.5b-q4", "--no-download"), root=tmp_path) as (client, _):
        st = await status(client)
        assert st["state"] == "ready", st
        assert st["model"]["alias"] == "qwen2.5-coder-0.5b-q4" and st["model"]["template"] == "qwen2.5-coder"
        assert st["model"]["family"] == "qwen2.5-coder" and st["model"]["quantization"] == "Q4_K_M"

        open_document(client, URI, SOURCE)
        pos = position_of(SOURCE, "        return n\n    return ")  # just after the second "return "
        result = await client.text_document_inline_completion_async(inline_params(pos, URI))
        [item] = result.items
        assert item.range == types.Range(start=pos, end=pos)
        assert item.insert_text.replace(" ", "") == "fibonacci(n-1)+fibonacci(n-2)"
        assert not item.insert_text.startswith(" ")  # the space before the cursor is not typed twice

        last = (await status(client))["last"]
        assert last["promptTokens"] > 30 and last["generatedTokens"] >= 10
        assert last["stopReason"] in ("stop_text", "eos", "stop_token")
        assert last["evalMs"] > 0 and last["generationMs"] > 0 and not last["multiline"]

        completion = await client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI), position=pos))
        [entry] = completion.items
        edit = entry.text_edit
        line = SOURCE.split("\n")[pos.line]
        applied = line[: edit.range.start.character] + edit.new_text + line[edit.range.end.character :]
        assert applied.replace(" ", "") == "returnfibonacci(n-1)+fibonacci(n-2)"
        # The fallback at the same place is answered from the typed-ahead cache, without a model call.
        assert (await status(client))["typedAheadHits"] == 1


async def test_ghost_text_after_blanks_the_user_typed(stand_in_model, tmp_path):
    """The cursor after the indentation of a fresh line or after `= `, the commonest places to ask for ghost text.
    A prompt ending in those blanks is a token boundary the model never saw: it put a second blank in front of
    its text (an indentation error on a new line) or guessed worse (token healing, README)."""
    cases = [
        ("class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n        \n\n"
         "    def pop(self):\n        return self.items.pop()\n", types.Position(line=5, character=8),
         "self.items.append(item)"),
        ("def mean(values):\n    total = sum(values)\n    count = \n    return total / count\n",
         types.Position(line=2, character=12), "len(values)"),
    ]
    async with lsp_session(server_command("--model", "qwen2.5-coder-0.5b-q4", "--no-download"), root=tmp_path) as (client, _):
        for i, (source, pos, want) in enumerate(cases):
            uri = f"file:///work/demo/blanks{i}.py"
            open_document(client, uri, source)
            result = await client.text_document_inline_completion_async(inline_params(pos, uri))
            assert [item.insert_text for item in result.items] == [want]


def test_one_shot_complete_cli(stand_in_model, tmp_path):
    path = tmp_path / "fib.py"
    path.write_text(SOURCE)
    out = subprocess.run(
        [sys.executable, "-m", "codegemma_lsp", "complete", f"{path}:5:12", "--model", "qwen2.5-coder-0.5b-q4"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert out.stdout.strip().replace(" ", "") == "fibonacci(n-1)+fibonacci(n-2)"


async def test_tab_then_enter_on_the_stand_in_is_answered_from_work_ahead(stand_in_model, tmp_path):
    """Real llama.cpp: accept a line, let the editor ask at its end, press Enter. The request after Enter takes
    the answer worked out ahead (no model call of its own), and it is the answer a server that does not work
    ahead gives for the same document."""
    source = "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        \n"
    uri = "file:///work/demo/point.py"
    answers = {}
    for speculate in (True, False):
        command = server_command("--model", "qwen2.5-coder-0.5b-q4", "--no-download")
        async with lsp_session(command, root=tmp_path, init_options={"speculate": speculate}) as (client, _):
            open_document(client, uri, source)
            pos = position_of(source, "self.x = x\n        ")
            [item] = (await client.text_document_inline_completion_async(inline_params(pos, uri))).items
            assert item.insert_text == "self.y = y"
            text = source.replace("self.x = x\n        ", "self.x = x\n        self.y = y")
            change(client, uri, 2, text)
            end = types.Position(line=pos.line, character=pos.character + len(item.insert_text))
            await client.text_document_inline_completion_async(inline_params(end, uri))  # VS Code asks after Tab
            before = await status(client)
            change(client, uri, 3, text.replace("self.y = y\n", "self.y = y\n        \n"))  # Enter, auto-indent
            enter = types.Position(line=pos.line + 1, character=8)
            result = await client.text_document_inline_completion_async(inline_params(enter, uri))
            answers[speculate] = [i.insert_text for i in result.items]
            after = await status(client)
            served = [st["typedAheadHits"] + st["joinedAhead"] for st in (before, after)]
            assert served[1] - served[0] == (1 if speculate else 0), after
            assert after["workedAhead"] >= 1 if speculate else after["workedAhead"] == 0
    assert answers[True] == answers[False]


def change(client, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
