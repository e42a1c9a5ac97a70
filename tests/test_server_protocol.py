"""Protocol logic of the real server process with a scripted engine (tests/fake_engine.py): result shapes,
latest-wins and $/cancelRequest, bad positions and settings. Inference itself is proven with real GGUFs in
test_server_tiny.py and test_stand_in.py."""

from __future__ import annotations

import asyncio
import sys
import time

from lsprotocol import types

from tests.conftest import lsp_session, open_document, position_of, status

URI = "file:///work/proj/app.py"
TEXT = "def total(values):\n    result = sum(val\n    return result\n"


def fake_server(text: str = "ues)", step_s: float = 0.0) -> list[str]:
    return [sys.executable, "-m", "tests.fake_engine", text, str(step_s)]


def inline_params(pos: types.Position, uri: str = URI) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=pos,
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
    )


def apply_edit(text: str, edit: types.TextEdit) -> str:
    lines = text.split("\n")
    r = edit.range
    assert r.start.line == r.end.line
    line = lines[r.start.line]
    lines[r.start.line] = line[: r.start.character] + edit.new_text + line[r.end.character :]
    return "\n".join(lines)


async def test_completion_fallback_replaces_from_word_start():
    async with lsp_session(fake_server("ues)")) as (client, _):
        open_document(client, URI, TEXT)
        pos = position_of(TEXT, "sum(val")
        result = await client.text_document_completion_async(
            types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=URI), position=pos))
        assert isinstance(result, types.CompletionList) and result.is_incomplete
        [item] = result.items
        assert item.text_edit.range.end == pos
        assert item.text_edit.range.start == types.Position(line=pos.line, character=pos.character - 3)
        assert item.filter_text.startswith("val")
        # The document already closes the parenthesis?  No: this line has no ')', so it is kept.
        assert apply_edit(TEXT, item.text_edit).split("\n")[1] == "    result = sum(values)"


async def test_inline_completion_inserts_at_cursor_and_trims_duplicated_closer():
    text = "print(len(ite))\n"
    async with lsp_session(fake_server("ms))")) as (client, _):
        open_document(client, URI, text)
        pos = position_of(text, "len(ite")
        result = await client.text_document_inline_completion_async(inline_params(pos))
        [item] = result.items
        assert item.insert_text == "ms" and item.range == types.Range(start=pos, end=pos)


async def test_latest_request_wins_and_stale_one_returns_empty():
    async with lsp_session(fake_server("x" * 60, 0.05)) as (client, _):
        open_document(client, URI, TEXT)
        pos = position_of(TEXT, "sum(val")
        first = asyncio.ensure_future(client.text_document_inline_completion_async(inline_params(pos)))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        second = await client.text_document_inline_completion_async(inline_params(pos))
        stale = await first
        assert list(stale.items) == []  # stopped within a token, not after 3 s of generation
        assert second.items and second.items[0].insert_text == "x" * 60
        assert time.monotonic() - started < 3.0 + 1.5


async def test_cancel_request_stops_generation_and_server_keeps_serving():
    # 20 tokens at 0.1 s: 2 s per request; an uncancelled stale request would delay the next one by ~1.8 s.
    async with lsp_session(fake_server("y" * 100, 0.1), init_options={"maxTokens": 20}) as (client, _):
        open_document(client, URI, TEXT)
        pos = position_of(TEXT, "sum(val")
        before = set(client.protocol._request_futures)
        task = asyncio.ensure_future(client.text_document_inline_completion_async(inline_params(pos)))
        await asyncio.sleep(0.2)
        [msg_id] = set(client.protocol._request_futures) - before
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
        started = time.monotonic()
        try:
            await task
            cancelled = False
        except Exception as exc:  # pygls raises the JSON-RPC RequestCancelled error
            cancelled = "cancel" in str(exc).lower()
        assert cancelled
        # The worker stops within a token, so the next request does not wait for 5 s of stale generation.
        result = await client.text_document_inline_completion_async(inline_params(pos))
        assert result.items and result.items[0].insert_text == "y" * 20
        assert time.monotonic() - started < 3.0
        assert (await status(client))["last"]["stopReason"] == "max_tokens"


async def test_bad_positions_unopened_documents_and_settings():
    async with lsp_session(fake_server(), init_options={"maxTokens": "many", "bogus": 1}) as (client, _):
        assert any("maxTokens" in m.message for m in client.messages)
        assert (await status(client))["config"]["maxTokens"] == 64  # default kept
        unopened = await client.text_document_inline_completion_async(
            inline_params(types.Position(line=0, character=0), uri="file:///nowhere.py"))
        assert list(unopened.items) == []
        open_document(client, URI, TEXT)
        try:
            await client.text_document_inline_completion_async(inline_params(types.Position(line=99, character=0)))
            raised = False
        except Exception as exc:
            raised = "past the end" in str(exc)
        assert raised
        # Past the end of a line clamps to the line end; the server is still healthy.
        result = await client.text_document_inline_completion_async(inline_params(types.Position(line=1, character=999)))
        assert isinstance(result, types.InlineCompletionList)


async def test_typing_the_ghost_text_is_answered_from_the_cache():
    async with lsp_session(fake_server("ues) * 2", 0.05)) as (client, _):
        open_document(client, URI, TEXT)
        pos = position_of(TEXT, "sum(val")
        first = await client.text_document_inline_completion_async(inline_params(pos))
        assert first.items[0].insert_text == "ues) * 2"
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos), text="ue")],
        ))
        typed = types.Position(line=pos.line, character=pos.character + 2)
        started = time.perf_counter()
        second = await client.text_document_inline_completion_async(inline_params(typed))
        elapsed = time.perf_counter() - started
        assert second.items[0].insert_text == "s) * 2"
        assert second.items[0].range.start == typed
        assert elapsed < 0.2  # a model call would take >= 8 tokens x 50 ms
        assert (await status(client))["typedAheadHits"] == 1


def edit(client, version: int, at: types.Position, text: str, end: types.Position | None = None) -> types.Position:
    """Type (or accept) `text` at `at` as an editor does; the cursor after it."""
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
        content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=at, end=end or at), text=text)],
    ))
    lines = text.split("\n")
    return types.Position(line=at.line + len(lines) - 1,
                          character=(at.character if len(lines) == 1 else 0) + len(lines[-1]))


async def ask(client, at: types.Position) -> tuple[list[str], float]:
    started = time.perf_counter()
    result = await client.text_document_inline_completion_async(inline_params(at))
    return [item.insert_text for item in result.items], time.perf_counter() - started


async def until_worked_ahead(client, count: int, timeout_s: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while (st := await status(client))["workedAhead"] < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return st


async def test_accept_then_enter_shows_the_next_line_computed_ahead():
    """While the user reads ghost text that ends its line, the server completes the next line as it will be
    after accepting and pressing Enter (auto-indented): that request then takes the answer without a model call,
    the same text a server without speculation computes. The request an editor sends right after accepting
    (at the line end) does not lose the work: the speculation runs again after it."""
    text = "values = [\n    \n]\n"
    answers = {}
    for speculate in (True, False):
        async with lsp_session(fake_server("1, ", 0.2), init_options={"speculate": speculate}) as (client, _):
            open_document(client, URI, text)
            pos = position_of(text, "[\n    ")
            first, _ = await ask(client, pos)
            assert first == ["1,"]
            end = edit(client, 2, pos, "1,")  # accepted
            await ask(client, end)  # what VS Code asks right after an accept
            if speculate:  # two states: the new suggestion accepted then Enter, and Enter alone
                assert (await until_worked_ahead(client, 2))["workedAhead"] == 2
            else:
                await asyncio.sleep(1.0)  # time enough for 3 tokens at 0.2 s, had it worked ahead
                assert (await status(client))["workedAhead"] == 0
            answers[speculate], elapsed = await ask(client, edit(client, 3, end, "\n    "))  # Enter, auto-indent
            st = await status(client)
            assert (st["typedAheadHits"] + st["joinedAhead"] >= 1) == speculate
            if speculate:
                assert elapsed < 0.3  # a model call takes at least 2 tokens x 0.2 s
    assert answers[True] == answers[False] == ["1,"]


async def test_a_request_for_the_state_being_worked_on_waits_for_it_instead_of_starting_over():
    async with lsp_session(fake_server("1, ", 0.3)) as (client, _):
        text = "values = [\n    \n]\n"
        open_document(client, URI, text)
        pos = position_of(text, "[\n    ")
        await ask(client, pos)  # then work ahead: the line accepted, and the next line after Enter (~1 s each)
        await asyncio.sleep(0.3)
        items, _ = await ask(client, edit(client, 3, edit(client, 2, pos, "1,"), "\n    "))  # Tab, Enter
        st = await status(client)
        assert items == ["1,"] and st["joinedAhead"] == 1 and st["typedAheadHits"] == 0


async def test_work_ahead_yields_to_the_next_request():
    # 20 tokens at 0.1 s: each model call takes 2 s; a speculation not stopped would delay the next request by 2 s.
    async with lsp_session(fake_server("y" * 100, 0.1), init_options={"maxTokens": 20}) as (client, _):
        open_document(client, URI, TEXT)
        pos = position_of(TEXT, "sum(val")
        await client.text_document_inline_completion_async(inline_params(pos))  # speculation starts after it
        await asyncio.sleep(0.3)
        elsewhere = position_of(TEXT, "return ")
        started = time.monotonic()
        result = await client.text_document_inline_completion_async(inline_params(elsewhere))
        assert result.items and time.monotonic() - started < 2.0 + 0.8
        assert (await status(client))["workedAhead"] == 0  # the first speculation was stopped, not finished


async def test_a_request_that_takes_a_queued_speculation_stops_the_one_before_it():
    async with lsp_session(fake_server("1, ", 0.3)) as (client, _):
        text = "values = [\n    \n]\n"
        open_document(client, URI, text)
        pos = position_of(text, "[\n    ")
        await ask(client, pos)
        end = edit(client, 2, pos, "1,")
        await ask(client, end)  # taken from work ahead: "1," again; then [Enter alone, it taken, it taken + Enter]
        taken = edit(client, 3, end, "1,")  # the user takes it after all, and presses Enter at once
        items, elapsed = await ask(client, edit(client, 4, taken, "\n    "))
        st = await status(client)
        assert items == ["1,"] and st["joinedAhead"] == 2
        assert elapsed < 1.5  # its own speculation only, not the two queued before it (~0.8 s each)
