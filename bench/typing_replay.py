"""Typing replay (issue 4): per-keystroke ghost-text latency through the real server over JSON-RPC.

Real files from ../shared/bench/crossfile/repos/ are opened with a span of one line removed; the span is typed
back one character at a time at a human rate (8 characters/s, a pause after each word), sending an inline
completion request after every keystroke the way an editor does (a newer request makes the server drop the
older one). For the request made right before each pause (what the user waits for) it reports:

- latency from that keystroke to the ghost text (p50/p95);
- that latency divided by the physical limit: the time llama.cpp needs to evaluate only the newly typed tokens
  plus generate the completion (per-token evaluation cost and generation time from the server's own figures);
- share of prompt tokens reused from the KV cache, typed-ahead hits, server RSS.

`--anchor` types the same keystrokes into llama-server's `/infill` directly, the way llama.vim drives it: 256
lines before the cursor line as `input_prefix`, the cursor line's head as `prompt`, the rest of the line and 64
lines after as `input_suffix`, `cache_prompt`, a server started with `--cache-reuse 256`, 16 tokens (greedy
here, for a like-for-like comparison), each keystroke abandoning the previous request's connection.
`--out F.json` keeps every pause's figures for bench/cdf.py.

    .venv/bin/python bench/typing_replay.py --model qwen2.5-coder-0.5b-q4 --files 6
    .venv/bin/python bench/typing_replay.py --settings '{"fimLayout": "spm"}' --out .bench-out/replay-spm.json
    .venv/bin/python bench/typing_replay.py --settings '{"kvReuse": false}'   # every prompt evaluated whole
    .venv/bin/python bench/typing_replay.py --serve llama-server     # the same, through a remote backend (issue 8)
    .venv/bin/python bench/typing_replay.py --anchor                 # llama-server /infill as llama.vim drives it
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from lsprotocol import types  # noqa: E402

from lsp import server_command, session, status  # noqa: E402
from tests.servers import KINDS, serve  # noqa: E402

REPOS = HERE.parent.parent / "shared" / "bench" / "crossfile" / "repos"
CHARS_PER_S = 8.0
PAUSE_S = 0.6
ANCHOR_PREFIX_LINES, ANCHOR_SUFFIX_LINES, ANCHOR_TOKENS = 256, 64, 16  # llama.vim's request, as the issue measured


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


@dataclass
class Sample:
    """One pause: what the user waited for, and the engine's own figures for that request."""

    latency: float  # ms from the keystroke to the answer
    ghost: bool
    cached: bool  # answered without the model (typed-ahead)
    prompt: int = 0
    reused: int = 0
    evaluated: int = 0
    eval_ms: float = 0.0
    gen_ms: float = 0.0


def keystrokes(text: str, offset: int, span: str) -> Iterator[tuple[int, str, str, bool]]:
    """(index, text before, text after the keystroke, pause?) for typing `span` at `offset`: a pause after each
    word and at the end, where the user waits for ghost text."""
    for i, ch in enumerate(span):
        after = text[: offset + i] + ch + text[offset + i:]
        yield i, text, after, ch == " " or i == len(span) - 1
        text = after


async def type_span(request, text: str, offset: int, span: str) -> list[Sample]:
    """Drive `request(i, before, after)` -> awaitable Sample at a human rate; keep the samples at pauses."""
    samples, pending = [], []
    for i, before, after, pause in keystrokes(text, offset, span):
        sent = time.perf_counter()
        task = asyncio.ensure_future(request(i, before, after))
        pending.append(task)
        if pause:
            sample = await task
            sample.latency = (time.perf_counter() - sent) * 1000
            samples.append(sample)
            await asyncio.sleep(PAUSE_S)
        else:
            await asyncio.sleep(1 / CHARS_PER_S)
    await asyncio.gather(*pending, return_exceptions=True)
    return samples


async def replay(client, root: Path, path: Path, text: str, offset: int, span: str, version0: int) -> list[Sample]:
    uri = (root / path.name).as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version0, text=text)))
    # Warm-up request at the start position, as an editor asks when the cursor lands there.
    await client.text_document_inline_completion_async(_params(uri, position(text, offset)))
    hits = (await status(client)).get("typedAheadHits", 0)

    async def request(i: int, before: str, after: str) -> Sample:
        nonlocal hits
        pos = position(before, offset + i)
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version0 + i + 1),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos),
                                                                    text=after[offset + i])]))
        result = await client.text_document_inline_completion_async(_params(uri, position(after, offset + i + 1)))
        st = await status(client)
        last, cached = st.get("last", {}), st.get("typedAheadHits", 0) > hits
        hits = st.get("typedAheadHits", 0)
        return Sample(0.0, bool(result.items), cached, last.get("promptTokens", 0), last.get("reusedTokens", 0),
                      last.get("evaluatedTokens", 0), last.get("evalMs", 0.0), last.get("generationMs", 0.0))

    samples = await type_span(request, text, offset, span)
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    return samples


def _params(uri: str, pos: types.Position) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=pos,
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))


class Infill:
    """One `/infill` request on its own connection, which a newer keystroke closes (llama.vim stops the job)."""

    def __init__(self, url: str, body: dict[str, Any]) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
        self.body = json.dumps(body)

    def send(self) -> dict[str, Any] | None:
        try:
            self.conn.request("POST", "/infill", self.body, {"Content-Type": "application/json"})
            return json.loads(self.conn.getresponse().read())
        except (OSError, http.client.HTTPException, ValueError):
            return None  # abandoned

    def abandon(self) -> None:
        with contextlib.suppress(OSError):
            if self.conn.sock is not None:
                self.conn.sock.shutdown(2)
        self.conn.close()


def anchor_body(text: str, offset: int) -> dict[str, Any]:
    """llama.vim's `/infill` request for the cursor at `offset`."""
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line_end = len(text) if line_end < 0 else line_end
    before = text[:line_start].split("\n")[:-1][-ANCHOR_PREFIX_LINES:]
    after = text[line_end + 1:].split("\n")[:ANCHOR_SUFFIX_LINES]
    return {"input_prefix": "".join(line + "\n" for line in before), "prompt": text[line_start:offset],
            "input_suffix": text[offset:line_end] + "\n" + "".join(line + "\n" for line in after),
            "input_extra": [], "n_predict": ANCHOR_TOKENS, "top_k": 1, "samplers": ["top_k"],
            "cache_prompt": True, "stream": False}


async def replay_anchor(url: str, text: str, offset: int, span: str) -> list[Sample]:
    await asyncio.to_thread(Infill(url, anchor_body(text, offset)).send)  # warm-up, as for the daemon
    current: list[Infill] = []

    async def request(i: int, before: str, after: str) -> Sample:
        if current:
            current.pop().abandon()
        infill = Infill(url, anchor_body(after, offset + i + 1))
        current.append(infill)
        answer = await asyncio.to_thread(infill.send) or {}
        t = answer.get("timings") or {}
        evaluated, reused = t.get("prompt_n", 0), t.get("cache_n", 0)
        return Sample(0.0, bool(answer.get("content", "").strip()), False, evaluated + reused, reused, evaluated,
                      t.get("prompt_ms", 0.0), t.get("predicted_ms", 0.0))

    return await type_span(request, text, offset, span)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def report(label: str, samples: list[Sample], extra: str) -> None:
    latencies = [s.latency for s in samples]
    ratios, reused, prompt = [], 0, 0
    for s in samples:
        if s.cached or not s.evaluated:
            continue  # answered from the typed-ahead cache: no model time to compare with
        new_tokens = 2  # a word typed since the previous pause is about two tokens
        ratios.append(s.latency / (s.eval_ms / s.evaluated * new_tokens + s.gen_ms))
        reused += s.reused
        prompt += s.prompt
    model = [s.latency for s in samples if not s.cached]
    print(f"{label}: {len(samples)} pauses")
    print(f"latency at pauses: p50 {pct(latencies, .5):.0f} ms, p95 {pct(latencies, .95):.0f} ms; the {len(model)} "
          f"answered by the model: p50 {pct(model, .5):.0f} ms, p95 {pct(model, .95):.0f} ms")
    print(f"latency / physical limit: p50 {pct(ratios, .5):.2f}, p95 {pct(ratios, .95):.2f}")
    print(f"prompt tokens reused from the KV cache at pauses: {100 * reused / max(prompt, 1):.1f}%")
    print(f"ghost text shown at {sum(s.ghost for s in samples)} pauses; {extra}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-q4")
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--settings", default="{}", help="initializationOptions as JSON")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--serve", choices=KINDS, help="run the model in this inference server (started here on "
                        "loopback, same threads) and point the daemon's `backend` at it")
    parser.add_argument("--anchor", action="store_true", help="llama-server /infill as llama.vim drives it, no daemon")
    parser.add_argument("--out", type=Path, help="write every pause's figures here (JSON) for bench/cdf.py")
    parser.add_argument("--label", help="name of this run in --out (default: from the options)")
    args = parser.parse_args()

    spans = pick_spans(args.files, args.seed)
    root = REPOS
    samples: list[Sample] = []
    settings = json.loads(args.settings)
    label = args.label or ("llama-server /infill (llama.vim)" if args.anchor else
                           f"codegemma-lsp{' via ' + args.serve if args.serve else ''} {args.settings}")
    from codegemma_lsp.registry import resolve_model

    with contextlib.ExitStack() as stack:
        log = Path(os.environ.get("TMPDIR", "/tmp")) / f"typing-replay-{args.serve or 'anchor'}.log"
        if args.anchor:
            url = stack.enter_context(serve("llama-server", resolve_model(args.model).path, args.threads, log,
                                            extra=("--cache-reuse", "256")))
            for path, text, offset, span in spans:
                samples += await replay_anchor(url, text, offset, span)
            extra = "no daemon"
        else:
            if args.serve:
                settings["backend"] = stack.enter_context(serve(args.serve, resolve_model(args.model).path,
                                                                args.threads, log))
            command = server_command("--model", args.model, "--threads", str(args.threads))
            async with session(command, root, settings) as client:
                pid = client._server.pid
                for n, (path, text, offset, span) in enumerate(spans):
                    samples += await replay(client, root, path, text, offset, span, 1 + 1000 * n)
                final = await status(client)
                extra = (f"typed-ahead hits {final.get('typedAheadHits')}, stale requests dropped before "
                         f"starting {final.get('staleRequests')}, server RSS {rss_mb(pid):.0f} MB")
    print(f"model {args.model}, {args.threads} threads; {len(spans)} files, {sum(len(s[3]) for s in spans)} "
          "characters typed")
    report(label, samples, extra)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"label": label, "model": args.model, "threads": args.threads,
                                        "samples": [asdict(s) for s in samples]}))


if __name__ == "__main__":
    asyncio.run(main())
