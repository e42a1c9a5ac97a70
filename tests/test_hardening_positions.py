"""Positions: after any sequence of incremental edits the server's text equals the client's, and the prompt is cut
exactly at the cursor, under UTF-16, UTF-8 and UTF-32, with astral emoji, CJK, combining marks, CRLF, lone CR
and characters LSP does not treat as line breaks (form feed, U+2028, U+0085).

The server is the real one from `build_server`, in process: every message goes through the same parser and
dispatcher as on stdio (`rpc.dispatch`), and the engine is tests/hardening_engines.EchoEngine, whose answer is a
fingerprint of the prefix and suffix it found in the prompt token ids. The client side below is an independent,
naive model of LSP positions (one character at a time), not the server's code.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codegemma_lsp import positions
from codegemma_lsp.config import Config
from codegemma_lsp.rpc import dispatch
from codegemma_lsp.server import build_server
from tests import hardening_engines
from tests.hardening_engines import EchoEngine, fingerprint

ENCODINGS = ["utf-16", "utf-8", "utf-32"]
PIECES = ["a", "Z", "_", " ", "  ", "\t", "(", "x = 1", "é", "e\u0301", "n\u0303\u0327", "中", "文字", "한",
          "😀", "👩\u200d💻", "\U00010348", "\U0001F1EF\U0001F1F5", "\n", "\r\n", "\r", "\x0c", "\u2028", "\x85"]
CHECKED = {"positions": 0, "edits": 0, "requests": 0}


# --- the client's side: a naive, independent model of LSP positions -----------------------------------------

def unit_length(char: str, encoding: str) -> int:
    point = ord(char)
    if encoding == "utf-16":
        return 2 if point > 0xFFFF else 1
    if encoding == "utf-8":
        return len(char.encode("utf-8"))
    return 1


def client_position(text: str, offset: int, encoding: str) -> dict[str, int]:
    line, start = 0, 0
    for match in re.finditer(r"\r\n|\r|\n", text[:offset]):
        line, start = line + 1, match.end()
    return {"line": line, "character": sum(unit_length(c, encoding) for c in text[start:offset])}


def boundary(text: str, offset: int) -> int:
    """A position can never fall between the \\r and \\n of a line break."""
    offset = offset % (len(text) + 1)
    return offset - 1 if 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n" else offset


# --- the server, in process ------------------------------------------------------------------------------------

class Harness:
    """One initialized server with a negotiated encoding; messages in as JSON bytes, responses out as JSON."""

    def __init__(self, encoding: str, root: Path | None = None) -> None:
        config = Config(model=hardening_engines.__file__)
        self.server = build_server(config, lambda path, cfg: EchoEngine(path, cfg))
        self.sent: list[dict[str, Any]] = []
        self.server.protocol.set_writer(self, include_headers=False)
        self.loop = asyncio.new_event_loop()
        self.ids = itertools.count(1)
        self.docs = itertools.count(1)
        init = {"capabilities": {"general": {"positionEncodings": [encoding]}},
                "initializationOptions": {"postprocess": False, "prefixTokens": 32768, "suffixTokens": 32768,
                                          "context": {"crossFile": root is not None}}}
        if root is not None:  # a workspace folder turns cross-file context on
            init["rootUri"] = root.as_uri()
        result = self.run(self.request("initialize", init))
        assert result["capabilities"]["positionEncoding"] == encoding
        self.notify("initialized", {})
        self.run(self.wait_ready())

    # writer interface used by pygls
    def write(self, data: bytes) -> None:
        self.sent.append(json.loads(data))

    def close(self) -> None:
        pass

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def notify(self, method: str, params: Any) -> None:
        async def go() -> None:
            dispatch(json.dumps({"jsonrpc": "2.0", "method": method, "params": params}).encode(), self.server.protocol)
        self.run(go())

    async def request(self, method: str, params: Any) -> Any:
        msg_id = next(self.ids)
        dispatch(json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}).encode(),
                 self.server.protocol)
        for _ in range(2000):
            for message in self.sent:
                if message.get("id") == msg_id and "method" not in message:
                    self.sent.remove(message)
                    assert "error" not in message, message
                    return message["result"]
            await asyncio.sleep(0.001)
        raise AssertionError(f"no response to {method}")

    async def wait_ready(self) -> None:
        while self.server.state != "ready":
            assert self.server.state != "error", self.server.error
            await asyncio.sleep(0.005)

    def shutdown(self) -> None:
        self.server.release_workers()
        self.loop.close()


@pytest.fixture(scope="module", params=ENCODINGS)
def harness(request: pytest.FixtureRequest):
    h = Harness(request.param)
    yield h, request.param
    h.shutdown()


texts = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
edits = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 64), texts), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(initial=texts, edit_batches=st.lists(edits, min_size=1, max_size=3), cursor=st.integers(0, 10**6),
       inline=st.booleans())
def test_incremental_edits_keep_the_text_and_cut_the_prompt_at_the_cursor(harness, initial, edit_batches, cursor,
                                                                          inline):
    h, encoding = harness
    uri = f"file:///proj/src/doc{next(h.docs)}.py"
    text = initial
    h.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                       "text": text}})
    for version, batch in enumerate(edit_batches, start=2):
        changes = []
        for start, length, new in batch:  # each change applies to the text left by the one before (LSP)
            a = boundary(text, start)
            b = boundary(text, min(a + length, len(text)))
            changes.append({"range": {"start": client_position(text, a, encoding),
                                      "end": client_position(text, b, encoding)}, "text": new})
            text = text[:a] + new + text[b:]
            CHECKED["positions"] += 2
            CHECKED["edits"] += 1
        h.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                            "contentChanges": changes})
    document = h.server.document(uri)
    assert document is not None and document.source == text

    at = boundary(text, cursor)
    position = client_position(text, at, encoding)
    CHECKED["positions"] += 1
    CHECKED["requests"] += 1
    params = {"textDocument": {"uri": uri}, "position": position}
    if inline:
        params["context"] = {"triggerKind": 1}
        result = h.run(h.request("textDocument/inlineCompletion", params))
        [item] = result["items"]
        assert item["insertText"] == fingerprint(text[:at], text[at:])
        assert item["range"] == {"start": position, "end": position}
    else:
        result = h.run(h.request("textDocument/completion", params))
        [item] = result["items"]
        word = re.search(r"[A-Za-z0-9_]*\Z", text[:at]).group(0)
        assert item["textEdit"]["newText"] == word + fingerprint(text[:at], text[at:])
        start = dict(position, character=position["character"] - len(word))  # identifiers: 1 unit per char
        assert item["textEdit"]["range"] == {"start": start, "end": position}
    h.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert h.server.document(uri) is None


def test_columns_past_the_line_or_inside_a_character_and_lines_past_the_end(harness):
    h, encoding = harness
    uri = "file:///proj/src/edge.py"
    text = "a😀b\r\nxyz\r"
    h.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                       "text": text}})
    cases = {(0, 10_000): 3, (1, 99): 8, (2, 0): 10, (2, 5): 10}  # past the end of a line: its end
    if encoding != "utf-32":
        cases[(0, 2)] = 1  # inside the emoji (2 UTF-16 units, 4 UTF-8 bytes): rounds down to its start
    for (line, character), at in cases.items():
        result = h.run(h.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": character},
            "context": {"triggerKind": 1}}))
        assert result["items"][0]["insertText"] == fingerprint(text[:at], text[at:]), (line, character)
    h.run(h.request("codegemma/status", None))
    with pytest.raises(AssertionError, match="past the end"):
        h.run(h.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": 3, "character": 0}, "context": {"triggerKind": 1}}))
    h.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


def test_percent_encoded_uris_are_the_same_open_document(harness):
    h, _ = harness
    uri = "file:///proj/my%20src/caf%C3%A9.py"
    h.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                       "text": "x = 1\n"}})
    result = h.run(h.request("textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": {"line": 0, "character": 4}, "context": {"triggerKind": 1}}))
    assert result["items"][0]["insertText"] == fingerprint("x = ", "1\n")
    h.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_pure_position_helpers_agree_with_the_naive_model(encoding):
    text = "a😀中\r\ne\u0301\x0c\u2028z\rq\n\n"
    for offset in range(len(text) + 1):
        offset = boundary(text, offset)
        pos = client_position(text, offset, encoding)
        assert positions.offset_at(text, pos["line"], pos["character"], encoding) == offset
    assert positions.line_start(text, 4) == len(text) and positions.line_start(text, 5) is None
    assert positions.split_lines(text) == ["a😀中\r\n", "e\u0301\x0c\u2028z\r", "q\n", "\n"]


def teardown_module() -> None:
    print(f"\npositions property tests: {CHECKED}")
