"""Soak: thousands of keystrokes and completions against one real server process, printing its memory as it goes.

The default is 10,000 inline-completion requests on real llama.cpp with the generated tiny GGUF (tests/
gguf_factory.py), in a workspace with cross-file context, while the user types, deletes, adds lines, switches
between documents and opens/closes files. Every 1,000 requests it prints the server's RSS; at the end the growth
from the first sample (after warm-up) to the last. Flat means no per-request leak: caches are bounded by count and
by size, superseded requests hold no text.

    .venv/bin/python bench/soak.py                     # 10,000 requests, tiny GGUF
    .venv/bin/python bench/soak.py --requests 2000 --model qwen2.5-coder-0.5b-q4
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gguf_factory import write_tiny_gemma  # noqa: E402
from tests.hardening_engines import Wire  # noqa: E402

MODULE = '''"""Inventory helpers."""

from dataclasses import dataclass


@dataclass
class Item:
    name: str
    price: float
    quantity: int = 0


def total(items: list[Item]) -> float:
    return sum(i.price * i.quantity for i in items)
'''
MAIN = '''from inventory import Item, total


def report(items):
    lines = []
    for item in items:
        lines.append(f"{item.name}: {item.quantity}")
    return "\\n".join(lines)

'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--model", help="registry alias or .gguf path (default: a generated tiny GGUF)")
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--every", type=int, default=1000, help="print a memory sample every N requests")
    args = parser.parse_args()

    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        (root / "inventory.py").write_text(MODULE)
        (root / "main.py").write_text(MAIN)
        model = args.model or str(write_tiny_gemma(Path(tmp) / "tiny.gguf"))
        wire = Wire(["-m", "codegemma_lsp", "--log-level", "WARNING", "--model", model, "--no-download",
                     "--threads", "1"], Path(tmp) / "server.log")
        try:
            return soak(wire, root, args, rng)
        finally:
            wire.close()


def soak(wire: Wire, root: Path, args: argparse.Namespace, rng: random.Random) -> int:
    wire.request("initialize", {"capabilities": {}, "rootUri": root.as_uri(),
                                "initializationOptions": {"maxTokens": args.max_tokens}})
    wire.notify("initialized", {})
    deadline = time.monotonic() + 300
    while (state := wire.request("codegemma/status", None)["result"]["state"]) != "ready":
        if state == "error" or time.monotonic() > deadline:
            print(wire.request("codegemma/status", None)["result"], file=sys.stderr)
            return 1
        time.sleep(0.1)

    docs = {name: (root / name).read_text() for name in ("main.py", "inventory.py")}
    versions = {name: 1 for name in docs}
    for name, text in docs.items():
        wire.notify("textDocument/didOpen", {"textDocument": {"uri": (root / name).as_uri(), "languageId": "python",
                                                              "version": 1, "text": text}})
    samples: list[tuple[int, float]] = []
    latencies: list[float] = []
    errors = 0
    started = time.monotonic()
    print(f"{'requests':>9} {'RSS MB':>8} {'p50 ms':>7} {'req/s':>6}")
    for n in range(1, args.requests + 1):
        name = "main.py" if rng.random() < 0.8 else "inventory.py"
        uri = (root / name).as_uri()
        text = docs[name]
        lines = text.split("\n")
        line = len(lines) - 2 if name == "main.py" else rng.randrange(len(lines))
        column = len(lines[line])
        action = rng.random()
        if action < 0.7:  # type a character
            edit = {"start": {"line": line, "character": column}, "end": {"line": line, "character": column}}
            new = rng.choice("abcdefghijklmnopqrstuvwxyz_.( ")
            lines[line] += new
        elif action < 0.9 and column:  # delete one
            edit = {"start": {"line": line, "character": column - 1}, "end": {"line": line, "character": column}}
            new = ""
            lines[line] = lines[line][:-1]
        else:  # a new line (an indented one inside the function, or a blank one)
            edit = {"start": {"line": line, "character": column}, "end": {"line": line, "character": column}}
            new = "\n    "
            lines[line] += "\n    "
        if len(lines) > 400:  # keep the document from growing forever: start the function body again
            lines = MAIN.split("\n") if name == "main.py" else MODULE.split("\n")
            edit, new = None, "\n".join(lines)
        docs[name] = text = "\n".join(lines)
        versions[name] += 1
        change = {"range": edit, "text": new} if edit else {"text": new}
        wire.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": versions[name]},
                                               "contentChanges": [change]})
        cursor = text.split("\n")
        cur_line = min(line + new.count("\n"), len(cursor) - 1)
        t0 = time.perf_counter()
        method = "textDocument/completion" if n % 10 == 0 else "textDocument/inlineCompletion"
        params = {"textDocument": {"uri": uri}, "position": {"line": cur_line, "character": len(cursor[cur_line])}}
        if method == "textDocument/inlineCompletion":
            params["context"] = {"triggerKind": 2}
        answer = wire.request(method, params, timeout=120)
        latencies.append((time.perf_counter() - t0) * 1000)
        errors += "error" in answer
        if n % 97 == 0:  # open and close a scratch document now and then
            scratch = (root / f"scratch{n % 5}.py").as_uri()
            wire.notify("textDocument/didOpen", {"textDocument": {"uri": scratch, "languageId": "python",
                                                                  "version": 1, "text": MAIN * 3}})
            wire.notify("textDocument/didClose", {"textDocument": {"uri": scratch}})
        if n % args.every == 0 or n == args.requests:
            rss = wire.memory_kb("VmRSS") / 1024
            samples.append((n, rss))
            rate = n / (time.monotonic() - started)
            print(f"{n:>9} {rss:>8.1f} {statistics.median(latencies[-args.every:]):>7.1f} {rate:>6.0f}", flush=True)
    status = wire.request("codegemma/status", None)["result"]
    first, last = samples[0], samples[-1]
    growth = last[1] - first[1]
    per_k = growth / max(1, (last[0] - first[0]) / 1000)
    print(f"\n{args.requests} requests ({errors} errors, {status['staleRequests']} stale, "
          f"{status.get('typedAheadHits', 0)} typed-ahead): RSS {first[1]:.1f} MB after {first[0]} -> "
          f"{last[1]:.1f} MB after {last[0]} ({growth:+.1f} MB, {per_k:+.2f} MB per 1,000 requests); "
          f"peak {wire.memory_kb('VmHWM') / 1024:.1f} MB")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
