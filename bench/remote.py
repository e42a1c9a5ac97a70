"""Remote backend vs in-process (issue 8), on the HumanEval single-line sample of bench/humaneval.py.

The real server process over JSON-RPC completes every task with the same GGUF, greedy, same threads: once with
the model in process, then once per inference server with `backend` pointing at it (started here on loopback:
llama-cpp-python's OpenAI-compatible server, and llama-server built from the same llama.cpp by
scripts/build_llama_server.sh). Prints pass@1 of each, how many raw completions equal the in-process ones, and the
latency ratio (median and mean of the client-observed time per completion).

    .venv/bin/python bench/remote.py --n 3      # smoke run
    .venv/bin/python bench/remote.py --n 100 --servers llama_cpp.server,llama-server

BENCH_THREADS (default 1) sets the threads of both the in-process engine and the server.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from codegemma_lsp.postprocess import Edit  # noqa: E402
from codegemma_lsp.registry import load_registry, local_path  # noqa: E402
from humaneval import OUT, STAND_IN, THREADS, Runner, complete, init_options, load_tasks, program, sample, server_command  # noqa: E402
from lsp import session, status  # noqa: E402
from tests.servers import KINDS, serve  # noqa: E402


async def run(label: str, options: dict[str, Any], tasks: list[dict], root: Path) -> list[dict[str, Any]]:
    """Complete every task in one server session; the text shown and the client-observed time of each."""
    records = []
    async with session(server_command(), root, options) as client:
        st = await status(client)
        where = st.get("backend", {}).get("url") or st["model"]["path"]
        print(f"{label}: {where} (template {st['model']['template']})", flush=True)
        for k, task in enumerate(tasks):
            text = task["prompt"] + task["suffix"]
            uri = (root / f"{label}-{task['task_id'].replace('/', '_')}.py").as_uri()
            started = time.perf_counter()
            got = await complete(client, uri, text, len(task["prompt"]), version=1)
            ms = (time.perf_counter() - started) * 1000
            last = (await status(client)).get("last", {})
            records.append({"task": task, "text": got["text"], "replace": got["replace"], "ms": ms,
                            "raw": last.get("raw", ""), "generated": last.get("generatedTokens"),
                            "prompt": last.get("promptTokens")})
            print(f"  {k + 1}/{len(tasks)} {task['task_id']}: {ms:.0f} ms", flush=True)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="tasks in the seeded single-line sample")
    parser.add_argument("--seed", type=int, default=20240605)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--servers", default="llama_cpp.server", help=f"comma-separated, of {', '.join(KINDS)}")
    args = parser.parse_args()

    tasks = sample(load_tasks("single"), args.n, args.seed)
    model = local_path(load_registry().get(STAND_IN))
    OUT.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="remote-bench-"))
    options = init_options(STAND_IN, args.max_tokens, raw=False)
    runs = {"in-process": asyncio.run(run("in-process", options, tasks, root))}
    for kind in args.servers.split(","):
        with serve(kind, model, THREADS, OUT / f"{kind}.log") as url:
            runs[kind] = asyncio.run(run(kind, {**options, "backend": url}, tasks, root))

    runner = Runner(OUT / "runs-cache.json", workers=2)
    local = runs["in-process"]
    print(f"\nHumanEval single-line, n={len(tasks)} (seed {args.seed}), {STAND_IN}, {THREADS} thread(s), greedy")
    for name, records in runs.items():
        passed = runner.passes([program(r["task"], Edit(r["text"], r["replace"])) for r in records])
        ms = [r["ms"] for r in records]
        line = (f"  {name:<17} pass@1 {100 * sum(passed) / len(tasks):6.2f}%   median {statistics.median(ms):7.0f} ms"
                f"   mean {statistics.mean(ms):7.0f} ms")
        if records is not local:
            same = sum(a["raw"] == b["raw"] for a, b in zip(local, records))
            local_ms = [r["ms"] for r in local]
            line += (f"   latency / in-process: median x{statistics.median(ms) / statistics.median(local_ms):.2f},"
                     f" mean x{statistics.mean(ms) / statistics.mean(local_ms):.2f};"
                     f" raw text equal {same}/{len(tasks)}")
        print(line)


if __name__ == "__main__":
    main()
