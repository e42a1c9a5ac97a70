"""Post-processing as the editor sees it, through the real server process (scripted engine): a block that
re-types the rest of the cursor line arrives as a replace edit, in inline completion and in the fallback."""

from __future__ import annotations

import sys

from lsprotocol import types

from tests.conftest import lsp_session, open_document, position_of, status
from tests.test_server_protocol import inline_params

URI = "file:///work/proj/ops.py"
TEXT = "def add():\n    pass\n"


def fake_server(text: str) -> list[str]:
    return [sys.executable, "-m", "tests.fake_engine", text]


def apply(text: str, rng: types.Range, new_text: str) -> str:
    lines = text.split("\n")
    line = lines[rng.start.line]
    lines[rng.start.line] = line[: rng.start.character] + new_text + line[rng.end.character :]
    return "\n".join(lines)


async def test_block_that_retypes_the_rest_of_the_line_is_a_replace_edit():
    async with lsp_session(fake_server("a, b):\n    return a + b\n\n\ndef sub(a, b):\n")) as (client, _):
        open_document(client, URI, TEXT)
        pos = position_of(TEXT, "def add(")
        result = await client.text_document_inline_completion_async(inline_params(pos, URI))
        [item] = result.items
        assert item.range.start == pos and item.range.end == types.Position(line=pos.line, character=pos.character + 2)
        assert apply(TEXT, item.range, item.insert_text) == "def add(a, b):\n    return a + b\n    pass\n"
        last = (await status(client))["last"]
        assert last["replace"] == 2 and last["raw"].startswith("a, b):") and last["multiline"]

        listed = await client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI), position=pos))
        [entry] = listed.items
        assert apply(TEXT, entry.text_edit.range, entry.text_edit.new_text).startswith("def add(a, b):\n    return")


async def test_postprocess_false_returns_the_raw_text():
    raw = "a, b):\n    return a + b\n"
    async with lsp_session(fake_server(raw), init_options={"postprocess": False}) as (client, _):
        open_document(client, URI, TEXT)
        pos = position_of(TEXT, "def add(")
        result = await client.text_document_inline_completion_async(inline_params(pos, URI))
        [item] = result.items
        assert item.insert_text == raw and item.range == types.Range(start=pos, end=pos)
        assert (await status(client))["config"]["postprocess"] == []
