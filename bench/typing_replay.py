"""Typing replay (issue 4): per-keystroke ghost-text latency through the real server over JSON-RPC.

Real files from ../shared/bench/crossfile/repos/ are opened with a span of one line removed; the span is typed
back one character at a time at a human rate (8 characters/s, a pause after each word), sending an inline
completion request after every keystroke the way an editor does (a newer request makes the server drop the
older one). For the request made right before each pause (what the user waits for) it reports:

- latency from that keystroke to the ghost text (p50/p95);
- that latency divided by the physical limit: the time llama.cpp needs to evaluate only the newly typed tokens
  plus generate the completion (per-token evaluation cost and generation time from the server's own figures);
- share of prompt tokens reused from the KV cache, typed-ahead hits, server RSS.

    .venv/bin/python bench/typing_replay.py --model qwen2.5-coder-0.5b-q4 --files 6
    .venv/bin/python bench/typing_replay.py --serve llama-server     # the same, through a remote backend (issue 8)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from lsprotocol import types  # noqa: E402

from lsp import server_command, session, status  # noqa: E402
from tests.servers import KINDS, serve  # noqa: E402

REPOS = HERE.parent.parent / "shared" / "bench" / "crossfile" / "repos"
CHARS_PER_S = 8.0
PAUSE_S = 0.6


def pick_spans(count: int, seed: int) -> list[tuple[Path, str, int, str]]:
    """(file, text with the span removed, offset of the span, span): code lines of 30-70 characters."""
    rng = random.Random(seed)
    files = sorted(p for p in REPOS.rglob("*.py") if 2_000 < p.stat().st_size < 60_000)
    spans = []
    for path in rng.sample(files, min(len(files), count * 3)):
        text = path.read_text(encoding="utf-8")
        lines = text.split("\n")
        candidates = [i for i, line in enumerate(lines[40:], 40) if 30 <= len(line.strip()) <= 70
                      and not line.strip().startswith(("#", '"', "'"))]
        if not candidates:
            continue
        i = rng.choice(candidates)
        indent = len(lines[i]) - len(lines[i].lstrip())
        offset = sum(len(line) + 1 for line in lines[:i]) + indent
        span = lines[i][indent:]
        spans.append((path, text[:offset] + text[offset + len(span):], offset, span))
        if len(spans) == count:
            break
    return spans


def position(text: str, offset: int) -> types.Position:
    line_start = text.rfind("\n", 0, offset) + 1
    return types.Position(line=text.count("\n", 0, offset),
                          character=len(text[line_start:offset].encode("utf-16-le")) // 2)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def replay(client, root: Path, path: Path, text: str, offset: int, span: str, version0: int) -> list[dict]:
    uri = (root / path.name).as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version0, text=text)))
    # Warm-up request at the start position, as an editor asks when the cursor lands there.
    await client.text_document_inline_completion_async(_params(uri, position(text, offset)))
    samples = []
    pending: list[tuple[asyncio.Future, float, bool]] = []
    version = version0
    for i, ch in enumerate(span):
        pos = position(text, offset + i)
        text = text[: offset + i] + ch + text[offset + i:]
        version += 1
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos), text=ch)]))
        pause = ch == " " or i == len(span) - 1
        sent = time.perf_counter()
        future = asyncio.ensure_future(client.text_document_inline_completion_async(
            _params(uri, position(text, offset + i + 1))))
        pending.append((future, sent, pause))
        if pause:
            result = await future
            latency = (time.perf_counter() - sent) * 1000
            st = await status(client)
            last = st.get("last", {})
            samples.append({"latency": latency, "ghost": bool(result.items), "status": st, "last": last})
            await asyncio.sleep(PAUSE_S)
        else:
            await asyncio.sleep(1 / CHARS_PER_S)
    for future, _, _ in pending:
        try:
            await future
        except Exception:
            pass
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    return samples


def _params(uri: str, pos: types.Position) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=pos,
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-q4")
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--settings", default="{}", help="initializationOptions as JSON")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--serve", choices=KINDS, help="run the model in this inference server (started here on "
                        "loopback, same threads) and point the daemon's `backend` at it")
    args = parser.parse_args()
    import json

    spans = pick_spans(args.files, args.seed)
    root = REPOS
    all_samples: list[dict] = []
    settings = json.loads(args.settings)
    with contextlib.ExitStack() as stack:
        if args.serve:
            from codegemma_lsp.registry import resolve_model

            model = resolve_model(args.model).path
            log = Path(os.environ.get("TMPDIR", "/tmp")) / f"typing-replay-{args.serve}.log"
            settings["backend"] = stack.enter_context(serve(args.serve, model, args.threads, log))
        command = server_command("--model", args.model, "--threads", str(args.threads))
        async with session(command, root, settings) as client:
            pid = client._server.pid
            for n, (path, text, offset, span) in enumerate(spans):
                all_samples += await replay(client, root, path, text, offset, span, 1 + 1000 * n)
            final = await status(client)
            rss = rss_mb(pid)
    latencies = [s["latency"] for s in all_samples]
    ratios, reused, prompt, hits = [], 0, 0, 0
    for s in all_samples:
        last = s["last"]
        cache_hit = s["status"].get("typedAheadHits", 0) > hits
        hits = s["status"].get("typedAheadHits", 0)
        if cache_hit or not last or not last.get("evaluatedTokens"):
            continue  # answered from the typed-ahead cache: no model time to compare with
        per_token = last["evalMs"] / last["evaluatedTokens"]
        new_tokens = 2  # a word typed since the previous pause is about two tokens
        physical = per_token * new_tokens + last["generationMs"]
        ratios.append(s["latency"] / physical)
        reused += last["reusedTokens"]
        prompt += last["promptTokens"]
    print(f"model {args.model} ({args.serve or 'in process'}, {args.threads} threads); {len(spans)} files, "
          f"{sum(len(s[3]) for s in spans)} characters typed, {len(all_samples)} pauses")
    print(f"latency at pauses: p50 {pct(latencies, .5):.0f} ms, p95 {pct(latencies, .95):.0f} ms")
    print(f"latency / physical limit: p50 {pct(ratios, .5):.2f}, p95 {pct(ratios, .95):.2f}")
    print(f"prompt tokens reused from the KV cache at pauses: {100 * reused / max(prompt, 1):.1f}%")
    print(f"typed-ahead hits: {final.get('typedAheadHits')}, stale requests dropped before starting: "
          f"{final.get('staleRequests')}, ghost text shown at {sum(s['ghost'] for s in all_samples)} pauses")
    print(f"server RSS after the replay: {rss:.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
