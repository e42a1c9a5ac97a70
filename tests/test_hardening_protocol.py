"""Protocol fuzz: at least 10,000 generated malformed or hostile JSON-RPC messages, written as raw bytes to ONE real
server process (tests/hardening_engines, a scripted engine: this is about the protocol, not inference).

Messages: broken framing (garbage lines, odd header spellings, lengths too short, too long or absurd, bodies that
are not JSON, not UTF-8, nested 100,000 deep), wrong types, unknown methods, missing fields, huge ids, requests
for unopened documents, positions out of range or negative, hostile settings and workspace folders. Promise: every
request that can be identified (a method and an integer or string id, correctly framed) gets a result or a
JSON-RPC error with its id, the process never exits, and a valid request afterwards still gets a completion.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests import hardening_engines
from tests.hardening_engines import IDS, Wire, fingerprint, frame

BATCHES = 200
BATCH = (50, 60)  # messages per generated batch: 200 batches >= 10,000 messages
SENT = {"messages": 0, "framing": 0, "requests": 0, "errors": 0, "results": 0}
CODES: dict[int, int] = {}
INTERNAL: list[str] = []


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("fuzz-workspace")
    (root / "pkg").mkdir()
    (root / "pkg" / "util.py").write_text("def helper(x):\n    return x + 1\n")
    (root / "main.py").write_text("from pkg.util import helper\n\nhelper(\n")
    w = Wire(["-m", "tests.hardening_engines"], tmp_path_factory.mktemp("fuzz-log") / "server.log")
    init = w.request("initialize", {"processId": None, "rootUri": root.as_uri(),
                                    "workspaceFolders": [{"uri": root.as_uri(), "name": "ws"}],
                                    "capabilities": {}})
    assert "result" in init, init
    w.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    w.root = root  # type: ignore[attr-defined]
    yield w
    w.close()


# --- strategies ---------------------------------------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False,
                    allow_infinity=False), st.text(max_size=6))
SHAPES = [[], {}, [[[[]]]], {"a": {"b": [1, None, {}]}}, "x" * 5000, {"textDocument": 5}, {"uri": None},
          [1, "2", 3.5, None], {"line": -1, "character": "0"}, {"textDocument": {"uri": []}}, [{"id": 1}],
          {"jsonrpc": "2.0", "id": 7, "method": "codegemma/status"}, {"jsonrpc": "2.0", "id": 7},
          {"jsonrpc": "2.0", "id": 8, "result": None}, {"settings": {"codegemma": {"model": []}}},
          {"__proto__": {}, "constructor": None}, "\u0000\ud800\uffff", -0.0, 1e308, 2**64, -(2**63) - 1]
values = st.one_of(scalars, st.sampled_from(SHAPES), st.lists(scalars, max_size=3),
                   st.dictionaries(st.text(max_size=4), scalars, max_size=3))
hostile_text = st.text(st.characters(codec=None, categories=None), max_size=12) | st.sampled_from(
    ["\x00\x01\x02\xff", "\ud800", "a\udfffb", "<|fim_middle|><|file_separator|><|im_start|>", "\u202e\ufeff",
     "x" * 3000, "\r\n" * 50])
uris = st.sampled_from(["file:///proj/a.py", "file:///proj/b.rs", "file:///nowhere/never-opened.py", "",
                        "untitled:Untitled-1", "file:///../../etc/passwd", "http://example.com/x.py", "not a uri",
                        "file:///tmp/%zz%", "file:///proj/caf%C3%A9%20x.py", "file://host/share/c.py"]) | st.text(
    max_size=20)
BAD_NUMBERS = [-1, -5, 2**31, 2**31 - 1, 2**32, 2**53 + 1, 2**64, 10**30, -(2**63), 0.5, 1e308, -0.0, "3", "",
               None, [], {}, True]
numbers = st.one_of(st.integers(0, 40), st.sampled_from(BAD_NUMBERS))
position = st.one_of(st.tuples(st.integers(0, 6), st.integers(0, 60)).map(lambda p: {"line": p[0], "character": p[1]}),
                     st.builds(lambda line, character: {"line": line, "character": character}, numbers, numbers),
                     st.sampled_from([{"line": 0}, {"character": 0}, [0, 0], "0:0", None, {"line": {"x": 1}}]))
request_ids = st.one_of(
    st.builds(lambda: next(IDS)),
    st.builds(lambda big: big + next(IDS), st.sampled_from([2**31, 2**53, 2**63, 10**30, -(2**63)])),
    st.builds(lambda s: f"{s}#{next(IDS)}", st.sampled_from(["", "x", "\ud800", "é😀", "\x00", "id" * 200])),
)
bad_ids = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False), st.lists(
    st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def text_document(uri: Any) -> dict[str, Any]:
    return {"uri": uri}


def mutate(draw: st.DrawFn, params: Any) -> Any:
    """Sometimes drop or replace one field, or replace the params wholesale."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(values)
    if choice in (1, 2) and isinstance(params, dict) and params:
        key = draw(st.sampled_from(sorted(params)))
        mutated = dict(params)
        if choice == 1:
            del mutated[key]
        else:
            mutated[key] = draw(values)
        return mutated
    return params


@st.composite
def params_for(draw: st.DrawFn, method: str) -> Any:
    uri = draw(uris)
    if method in ("textDocument/inlineCompletion", "textDocument/completion", "textDocument/hover"):
        params = {"textDocument": text_document(uri), "position": draw(position)}
        if method == "textDocument/inlineCompletion":
            params["context"] = {"triggerKind": draw(st.sampled_from([1, 2, 0, 99, "x"]))}
    elif method == "textDocument/didOpen":
        params = {"textDocument": {"uri": uri, "languageId": draw(st.sampled_from(["python", "rust", "", "??"])),
                                   "version": draw(numbers), "text": draw(hostile_text)}}
    elif method == "textDocument/didChange":
        change = draw(st.one_of(st.fixed_dictionaries({"range": st.fixed_dictionaries(
            {"start": position, "end": position}), "text": hostile_text}), st.fixed_dictionaries(
            {"text": hostile_text}), values))
        params = {"textDocument": {"uri": uri, "version": draw(numbers)}, "contentChanges": [change]}
    elif method in ("textDocument/didClose", "textDocument/didSave"):
        params = {"textDocument": text_document(uri)}
    elif method == "workspace/didChangeConfiguration":
        keys = st.sampled_from(["model", "maxTokens", "prefixTokens", "suffixTokens", "ctxSize", "nGpuLayers",
                                "threads", "context.crossFile", "context.maxTokens", "postprocess", "bogus"])
        params = {"settings": draw(st.one_of(st.dictionaries(keys, values, max_size=3), values))}
    elif method == "workspace/didChangeWorkspaceFolders":
        folder = st.fixed_dictionaries({"uri": st.sampled_from(["file:///nonexistent/dir", "http://x/y", "",
                                                                "file:///proj"]) | st.text(max_size=10),
                                        "name": st.text(max_size=5)})
        params = {"event": {"added": draw(st.lists(folder, max_size=2)), "removed": draw(st.lists(folder, max_size=2))}}
    elif method == "workspace/didChangeWatchedFiles":
        params = {"changes": draw(st.lists(st.fixed_dictionaries({"uri": uris, "type": numbers}), max_size=3))}
    elif method == "$/cancelRequest":
        params = {"id": draw(st.one_of(st.integers(0, 10**6), values))}
    else:
        params = draw(values)
    return mutate(draw, params)


METHODS = ["textDocument/inlineCompletion"] * 4 + ["textDocument/completion"] * 2 + [
    "codegemma/status", "textDocument/hover", "textDocument/didOpen", "textDocument/didChange",
    "textDocument/didClose", "textDocument/didSave", "workspace/didChangeConfiguration",
    "workspace/didChangeWorkspaceFolders", "workspace/didChangeWatchedFiles", "$/cancelRequest", "$/setTrace",
    "initialize", "initialized", "window/workDoneProgress/cancel", "codegemma/unknown", "", "textDocument/",
    "x" * 300, "\u00e9t\u00e9/\U0001F600", "textDocument/inlineCompletion\x00", "TEXTDOCUMENT/COMPLETION",
    "rpc.discover", "$/progress", "\ud800", "exit/", " shutdown"]


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, list[Any]]:
    """(bytes to write, ids of the requests in them that must be answered)."""
    method = draw(st.sampled_from(METHODS))
    kind = draw(st.sampled_from(["request"] * 6 + ["notification"] * 3 + ["bad-id", "response", "no-jsonrpc",
                                                                          "old-jsonrpc", "non-string-method"]))
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": draw(params_for(method))}
    if draw(st.booleans()) and kind == "notification":
        del message["params"]
    expect: list[Any] = []
    if kind == "request":
        message["id"] = draw(request_ids)
        expect.append(message["id"])
    elif kind == "bad-id":
        message["id"] = draw(bad_ids)
    elif kind == "response":
        message = {"jsonrpc": "2.0", "id": draw(request_ids), draw(st.sampled_from(["result", "error"])): draw(values)}
    elif kind in ("no-jsonrpc", "old-jsonrpc", "non-string-method"):
        message["id"] = draw(request_ids)
        expect.append(message["id"])
        if kind == "no-jsonrpc":
            del message["jsonrpc"]
        elif kind == "old-jsonrpc":
            message["jsonrpc"] = "1.0"
        else:
            message["method"] = draw(st.one_of(st.integers(), st.lists(st.integers(), max_size=2), st.none()))
    return frame(json.dumps(message).encode()), expect


def _valid_request_ids(body: bytes) -> list[Any]:
    """Ids the server must answer for a correctly framed body: a JSON object with a method and a valid id."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return []
    if not isinstance(data, dict) or "method" not in data or "id" not in data:
        return []
    msg_id = data["id"]
    return [msg_id] if isinstance(msg_id, str) or (isinstance(msg_id, int) and not isinstance(msg_id, bool)) else []


@st.composite
def framing(draw: st.DrawFn) -> tuple[bytes, list[Any]]:
    """Broken or unusual framing. Content-Length framing cannot tell a lying length from data, so each case is
    self-contained (a frame claiming more bytes than it has is padded to its claim) and followed by one line
    that is not a header: from there the stream must be back in sync."""
    data, ids = draw(_framing())
    return data + b"#\n", ids


@st.composite
def _framing(draw: st.DrawFn) -> tuple[bytes, list[Any]]:
    # An id of constant width: the body's length bounds a later draw, which must not depend on the counter
    # (hypothesis replays a case and fails as flaky when 99 became 100).
    request = json.dumps({"jsonrpc": "2.0", "id": 10**9 + next(IDS), "method": "codegemma/status"}).encode()
    garbage = draw(st.binary(max_size=60)).replace(b"ength", b"").replace(b"ENGTH", b"")
    body = draw(st.sampled_from([request, b"", b"null", b"[]", b"[1, 2]", b"42", b'"str"', b"{}", b"\xff\xfe\x00",
                                 b'{"jsonrpc": "2.0"', b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" +
                                 b"}" * 50_000, b'{"jsonrpc":"2.0","id":1e400,"method":"x"}', b"9" * 5000,
                                 b'{"jsonrpc":"2.0","id":' + b"9" * 5000 + b',"method":"x"}',
                                 b'\xef\xbb\xbf{"jsonrpc":"2.0","method":"x"}']) | st.just(garbage))
    case = draw(st.sampled_from(["garbage-line", "garbage-no-newline", "odd-header", "extra-headers", "too-long",
                                 "too-short", "absurd-length", "no-number", "no-blank-line"]))
    n = len(body)
    if case == "garbage-line":
        return garbage + b"\r\n", []
    if case == "garbage-no-newline":
        return garbage.replace(b"\n", b""), []  # it runs into the next header line
    if case == "odd-header":
        header = draw(st.sampled_from([b"content-length: %d\n\n", b"CONTENT-LENGTH:%d\r\n\r\n",
                                       b"Content-Length:   %d   \r\n\r\n", b"Content-Length: 000%d\r\n\n"])) % n
        return header + body, _valid_request_ids(body)
    if case == "extra-headers":
        header = b"X-Junk: \xff\xfe\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: %d\r\n\r\n"
        return header % n + body, _valid_request_ids(body)
    if case == "too-long":  # the missing bytes arrive as filler, so the frame still ends where it claims
        pad = draw(st.integers(1, 50))
        filler = draw(st.sampled_from([b" ", b"x", b"\x00", b"\n"])) * pad
        return b"Content-Length: %d\r\n\r\n" % (n + pad) + body + filler, _valid_request_ids(body + filler)
    if case == "too-short":  # the rest of the body becomes garbage before the next header
        cut = draw(st.integers(0, max(0, n - 1)))
        return b"Content-Length: %d\r\n\r\n" % cut + body.replace(b"\n", b""), _valid_request_ids(body[:cut])
    if case == "absurd-length":
        length = draw(st.sampled_from([b"%d" % (1 << 40), b"9" * 40, b"18446744073709551616"]))
        return b"Content-Length: " + length + b"\r\n\r\n" + body.replace(b"\n", b""), []
    if case == "no-number":
        value = draw(st.sampled_from([b"abc", b"-5", b"", b"  ", b"NaN", b"five"]))
        return b"Content-Length: " + value + b"\r\n\r\n" + body.replace(b"\n", b""), []
    return b"Content-Length: %d\r\n" % n + body.replace(b"\n", b""), []  # no blank line: the body is lost


@settings(max_examples=BATCHES, deadline=None, database=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(batch=st.lists(st.one_of(messages(), messages(), messages(), framing()), min_size=BATCH[0], max_size=BATCH[1]))
def test_every_identifiable_request_is_answered_and_the_server_stays_up(wire, batch):
    expected: list[Any] = []
    for data, ids in batch:
        wire.write(data)
        expected += ids
        SENT["messages"] += 1
        SENT["framing"] += not data.startswith(b"Content-Length: ") or b"\r\n\r\n{" not in data[:30]
    sentinel = next(IDS)
    wire.send({"jsonrpc": "2.0", "id": sentinel, "method": "codegemma/status"})
    wire.wait_for(expected + [sentinel])
    for msg_id in expected:
        answer = wire.responses[json.dumps(msg_id)]
        assert ("result" in answer) != ("error" in answer), answer
        SENT["requests"] += 1
        SENT["errors" if "error" in answer else "results"] += 1
        if "error" in answer:
            CODES[answer["error"]["code"]] = CODES.get(answer["error"]["code"], 0) + 1
            INTERNAL.extend([answer["error"]["message"][:300]] if answer["error"]["code"] == -32603 else [])
    assert not INTERNAL, f"internal errors (a handler raised): {sorted(set(INTERNAL))[:5]}"
    assert wire.proc.poll() is None


def test_after_the_fuzz_a_valid_request_still_gets_its_completion(wire):
    assert SENT["messages"] >= 10_000, SENT
    assert wire.proc.poll() is None
    # The fuzz may have configured a model that does not exist: configure the real one again.
    wire.send({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {"settings": {
        "model": hardening_engines.__file__, "postprocess": False, "maxTokens": 64, "prefixTokens": 1024,
        "suffixTokens": 256, "ctxSize": 4096, "nGpuLayers": -1, "context": {"crossFile": True, "maxTokens": 1024}}}})
    deadline = time.monotonic() + 20
    while (state := wire.request("codegemma/status", None)["result"]["state"]) != "ready":
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    uri = (wire.root / "main.py").as_uri()  # type: ignore[attr-defined]
    text = (wire.root / "main.py").read_text()  # type: ignore[attr-defined]
    wire.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": text}}})
    answer = wire.request("textDocument/inlineCompletion", {"textDocument": {"uri": uri},
                          "position": {"line": 2, "character": 7}, "context": {"triggerKind": 1}})
    assert answer["result"]["items"][0]["insertText"] == fingerprint(text[: text.index("(\n") + 1],
                                                                     text[text.index("(\n") + 1:])
    assert wire.request("shutdown", None)["result"] is None
    wire.send({"jsonrpc": "2.0", "method": "exit"})
    assert wire.proc.wait(timeout=10) == 0
    print(f"\nprotocol fuzz: {SENT}, error codes {CODES}")
