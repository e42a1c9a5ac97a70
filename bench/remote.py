"""Remote backend vs in-process (issue 8), on the HumanEval single-line sample of bench/humaneval.py.

The real server process over JSON-RPC completes every task twice with the same GGUF, greedy, same threads:
once with the model in process, once with `backend` pointing at llama-cpp-python's OpenAI-compatible server
(`python -m llama_cpp.server`, started here on loopback). Prints pass@1 of each, how many completions are
identical, and the latency ratio (median and mean of the client-observed time per completion).

    .venv/bin/python bench/remote.py --n 3      # smoke run
    .venv/bin/python bench/remote.py --n 100

BENCH_THREADS (default 1) sets the threads of both the in-process engine and the server.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
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


def start_openai_server(model: Path, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port",
             str(port), "--n_threads", str(THREADS), "--n_threads_batch", str(THREADS), "--n_ctx", "4096"],
            stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"llama_cpp.server exited: see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline:
                proc.terminate()
                raise SystemExit(f"llama_cpp.server did not start: see {log}") from None
            time.sleep(0.2)


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
                            "raw": last.get("raw", ""), "generated": last.get("generatedTokens")})
            print(f"  {k + 1}/{len(tasks)} {task['task_id']}: {ms:.0f} ms", flush=True)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="tasks in the seeded single-line sample")
    parser.add_argument("--seed", type=int, default=20240605)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    tasks = sample(load_tasks("single"), args.n, args.seed)
    model = local_path(load_registry().get(STAND_IN))
    OUT.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="remote-bench-"))
    local = asyncio.run(run("in-process", init_options(STAND_IN, args.max_tokens, raw=False), tasks, root))
    proc, url = start_openai_server(model, OUT / "llama-cpp-server.log")
    try:
        options = {**init_options(STAND_IN, args.max_tokens, raw=False), "backend": url}
        remote = asyncio.run(run("remote", options, tasks, root))
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    runner = Runner(OUT / "runs-cache.json", workers=2)
    passed = {name: runner.passes([program(r["task"], Edit(r["text"], r["replace"])) for r in records])
              for name, records in (("in-process", local), ("remote", remote))}
    same = sum(a["raw"] == b["raw"] for a, b in zip(local, remote))
    print(f"\nHumanEval single-line, n={len(tasks)} (seed {args.seed}), {STAND_IN}, {THREADS} thread(s), greedy")
    for name, records in (("in-process", local), ("remote", remote)):
        ms = [r["ms"] for r in records]
        print(f"  {name:<11} pass@1 {100 * sum(passed[name]) / len(tasks):6.2f}%   median {statistics.median(ms):7.0f} ms"
              f"   mean {statistics.mean(ms):7.0f} ms")
    ratio_median = statistics.median(r["ms"] for r in remote) / statistics.median(r["ms"] for r in local)
    ratio_mean = statistics.mean(r["ms"] for r in remote) / statistics.mean(r["ms"] for r in local)
    print(f"  latency remote / in-process: median x{ratio_median:.2f}, mean x{ratio_mean:.2f}")
    print(f"  identical raw completions: {same}/{len(tasks)}")


if __name__ == "__main__":
    main()
