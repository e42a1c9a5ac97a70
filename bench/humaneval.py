"""HumanEval infilling (issue 5): pass@1, greedy, through the real server over JSON-RPC, with floors and ablation.

Two passes per task set (single-line, multi-line), on the same fixed seeded sample, model and prompt:

  generate --steps raw      the server with `postprocess: false`: the model's raw text, no early stop (max tokens
                            or end of generation). Every offline variant below is computed from this one text.
  generate --steps default  the server as shipped (its early stop included): the headline figure, and a check that
                            the offline replay of the post-processing agrees with the real process.
  score                     runs every variant's programs (prompt + completion + suffix + test, one `python3`
                            process each, 3 s timeout) and prints pass@1:
                              floor: raw        the raw text
                              floor: newline    the raw text cut after its first line break
                              server (offline)  postprocess.process(raw) with the default steps
                              -<step>           the same without one step (ablation)
                              only <step>       (with --only) the same with one step alone
                              server (live)     the texts the default server returned

    .venv/bin/python bench/humaneval.py generate --set single --n 300 --steps raw
    .venv/bin/python bench/humaneval.py generate --set single --n 300 --steps default
    .venv/bin/python bench/humaneval.py score --set single --n 300
    .venv/bin/python bench/humaneval.py time --set multi   # seconds per task, to size a run

Outputs go to .bench-out/humaneval/ (ignored by git). Data: ../shared/bench/humaneval-infilling/.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from lsprotocol import types  # noqa: E402

from codegemma_lsp.postprocess import DEFAULT_STEPS, STEPS, Edit, Mode, Surroundings, decide_mode, process  # noqa: E402
from codegemma_lsp.templates import load_templates  # noqa: E402
from lsp import session, status  # noqa: E402

DATA = HERE.parent.parent / "shared" / "bench" / "humaneval-infilling"
FILES = {"single": "HumanEval-SingleLineInfilling.jsonl", "multi": "HumanEval-MultiLineInfilling.jsonl"}
OUT = HERE.parent / ".bench-out" / "humaneval"
STAND_IN = "qwen2.5-coder-0.5b-q4"
TIMEOUT_S = 3.0
THREADS = int(os.environ.get("BENCH_THREADS", "1"))


def server_command() -> list[str]:
    """The real server process. BENCH_PACKAGE_DIR: import codegemma_lsp from that directory instead (a frozen copy
    of the package, so a long run is not affected by edits to the working tree)."""
    package_dir = os.environ.get("BENCH_PACKAGE_DIR", "")
    boot = (f"import sys; sys.path.insert(0, {package_dir!r}); " if package_dir else "") + (
        "from codegemma_lsp.cli import main; sys.exit(main())" if package_dir else
        "import sys; from codegemma_lsp.cli import main; sys.exit(main())")
    return [sys.executable, "-c", boot, "--log-level", "WARNING"]


def load_tasks(which: str) -> list[dict]:
    with open(DATA / FILES[which]) as fh:
        return [json.loads(line) for line in fh]


def sample(tasks: list[dict], n: int, seed: int) -> list[dict]:
    """A fixed seeded sample, in dataset order (neighbouring tasks share a prompt prefix: KV-cache reuse)."""
    if n >= len(tasks):
        return tasks
    picked = sorted(random.Random(seed).sample(range(len(tasks)), n))
    return [tasks[i] for i in picked]


def out_path(kind: str, which: str, n: int, seed: int, max_tokens: int, model: str) -> Path:
    return OUT / f"{kind}-{which}-n{n}-s{seed}-t{max_tokens}-{Path(model).name}.jsonl"


def init_options(model: str, max_tokens: int, raw: bool) -> dict[str, Any]:
    return {"model": model, "threads": THREADS, "maxTokens": max_tokens, "prefixTokens": 1024, "suffixTokens": 256,
            "context": {"crossFile": False}, "postprocess": not raw}


async def complete(client, uri: str, text: str, offset: int, version: int) -> dict[str, Any]:
    """didOpen `text`, inline completion at `offset` (the hole), didClose; the item's text and replaced span."""
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)))
    line = text.count("\n", 0, offset)
    column = offset - (text.rfind("\n", 0, offset) + 1)
    position = types.Position(line=line, character=len(text[offset - column : offset].encode("utf-16-le")) // 2)
    result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position,
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    item = result.items[0] if result and result.items else None
    if item is None:
        return {"text": "", "replace": 0}
    rng = item.range
    replaced = 0
    if rng is not None and rng.end != rng.start:
        assert rng.end.line == rng.start.line, "edits only ever replace the rest of the cursor line"
        line_text = text.split("\n")[line]
        end16 = rng.end.character
        rest = line_text[column:]
        units = 0
        for ch in rest:  # UTF-16 units -> code points
            if units >= end16 - position.character:
                break
            units += len(ch.encode("utf-16-le")) // 2
            replaced += 1
    return {"text": item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value,
            "replace": replaced}


async def generate(args: argparse.Namespace) -> None:
    tasks = sample(load_tasks(args.set), args.n, args.seed)
    raw = args.steps == "raw"
    path = out_path("raw" if raw else "server", args.set, args.n, args.seed, args.max_tokens, args.model)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if path.exists():
        with open(path) as fh:
            done = {json.loads(line)["task_id"] for line in fh if line.strip()}
    todo = [t for t in tasks if t["task_id"] not in done]
    print(f"{args.set}: {len(tasks)} tasks, {len(done)} already in {path}, {len(todo)} to go", flush=True)
    root = Path(tempfile.mkdtemp(prefix="humaneval-"))
    async with session(server_command(), root, init_options(args.model, args.max_tokens, raw)) as client:
        st = await status(client)
        print(f"model {st['model']['path']} template {st['model']['template']} device {st['device']}", flush=True)
        started = time.perf_counter()
        with open(path, "a") as fh:
            for k, task in enumerate(todo):
                text = task["prompt"] + task["suffix"]
                uri = (root / f"{task['task_id'].replace('/', '_')}.py").as_uri()
                got = await complete(client, uri, text, len(task["prompt"]), version=1)
                last = (await status(client)).get("last", {})
                record = {
                    "task_id": task["task_id"], "text": got["text"], "replace": got["replace"],
                    "raw": last.get("raw", ""), "template": st["model"]["template"],
                    "stop": last.get("stopReason"), "generated": last.get("generatedTokens"),
                    "prompt_tokens": last.get("promptTokens"), "latency_ms": last.get("latencyMs"),
                    "multiline": last.get("multiline"),
                }
                fh.write(json.dumps(record) + "\n")
                fh.flush()
                if (k + 1) % 10 == 0 or k + 1 == len(todo):
                    rate = (time.perf_counter() - started) / (k + 1)
                    print(f"  {k + 1}/{len(todo)}  {rate:.2f} s/task  eta {rate * (len(todo) - k - 1) / 60:.1f} min",
                          flush=True)


# --- scoring -------------------------------------------------------------------------------------------------


def program(task: dict, edit: Edit) -> str:
    """The hole filled as the editor would apply the edit, then the task's tests."""
    return (task["prompt"] + edit.text + task["suffix"][edit.replace :] + "\n" + task["test"] + "\n"
            + f"check({task['entry_point']})\n")


class Runner:
    """Runs programs in their own python3 process with a timeout; results cached by the program's hash."""

    def __init__(self, cache: Path, workers: int) -> None:
        self.cache_path = cache
        self.cache: dict[str, bool] = json.loads(cache.read_text()) if cache.exists() else {}
        self.workers = workers

    def _run(self, source: str) -> bool:
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
            fh.write(source)
        try:
            done = subprocess.run(["python3", fh.name], capture_output=True, timeout=TIMEOUT_S,
                                  cwd=tempfile.gettempdir(), env={"PATH": os.environ.get("PATH", "")})
            return done.returncode == 0
        except subprocess.TimeoutExpired:
            return False
        finally:
            os.unlink(fh.name)

    def passes(self, sources: list[str]) -> list[bool]:
        keys = [hashlib.sha256(s.encode()).hexdigest() for s in sources]
        todo = {k: s for k, s in zip(keys, sources) if k not in self.cache}
        if todo:
            with ThreadPoolExecutor(self.workers) as pool:
                for key, ok in zip(todo, pool.map(self._run, todo.values())):
                    self.cache[key] = ok
            self.cache_path.write_text(json.dumps(self.cache))
        return [self.cache[k] for k in keys]


def surroundings(task: dict, template: str) -> Surroundings:
    """What the server's post-processing sees (the whole task fits the 1,024/256-token window)."""
    markers = next((tuple(s.controls.values()) for s in load_templates() if s.name == template), ())
    return Surroundings(prefix=task["prompt"], suffix=task["suffix"], language="python", markers=markers)


def first_line(raw: str) -> Edit:
    nl = raw.find("\n")
    return Edit(raw if nl < 0 else raw[: nl + 1])


Variant = Callable[[str, Surroundings, bool], Edit]  # (raw text, surroundings, the model ended it) -> edit


def variants(only: bool) -> dict[str, Variant]:
    out: dict[str, Variant] = {
        "floor: raw": lambda raw, w, end: Edit(raw),
        "floor: newline": lambda raw, w, end: first_line(raw),
        "server (offline)": lambda raw, w, end: process(raw, w, decide_mode(w), DEFAULT_STEPS, end),
    }
    for step in DEFAULT_STEPS:
        rest = tuple(s for s in DEFAULT_STEPS if s != step)
        out[f"  -{step}"] = lambda raw, w, end, rest=rest: process(raw, w, decide_mode(w), rest, end)
    for step in STEPS:
        if step not in DEFAULT_STEPS:
            more = tuple(s for s in STEPS if s in DEFAULT_STEPS or s == step)
            out[f"  +{step}"] = lambda raw, w, end, more=more: process(raw, w, decide_mode(w), more, end)
    out["  single-line above code"] = lambda raw, w, end: process(
        raw, w, Mode(False) if w.inserts_lines else decide_mode(w), DEFAULT_STEPS, end)
    if only:
        for step in STEPS:
            out[f"  only {step}"] = lambda raw, w, end, step=step: process(raw, w, decide_mode(w), (step,), end)
    return out


def read(path: Path) -> dict[str, dict]:
    with open(path) as fh:
        return {r["task_id"]: r for r in map(json.loads, fh) if r}


def score(args: argparse.Namespace) -> None:
    tasks = sample(load_tasks(args.set), args.n, args.seed)
    raw_path = out_path("raw", args.set, args.n, args.seed, args.max_tokens, args.model)
    server_path = out_path("server", args.set, args.n, args.seed, args.max_tokens, args.model)
    raws = read(raw_path)
    tasks = [t for t in tasks if t["task_id"] in raws]
    runner = Runner(OUT / "results-cache.json", args.workers)
    print(f"HumanEval {args.set}-line infilling: {len(tasks)} tasks (seed {args.seed}), model {Path(args.model).name},"
          f" maxTokens {args.max_tokens}, greedy, {raws[tasks[0]['task_id']]['template']} prompt 1024/256 tokens")
    timings: list[float] = []
    table: dict[str, list[bool]] = {}
    edits_by_variant: dict[str, list[Edit]] = {}
    for name, fn in variants(args.only).items():
        edits = []
        for task in tasks:
            where = surroundings(task, raws[task["task_id"]]["template"])
            t0 = time.perf_counter()
            record = raws[task["task_id"]]
            edits.append(fn(record["raw"], where, record["stop"] in ("eos", "stop_token")))
            timings.append(time.perf_counter() - t0) if name == "server (offline)" else None
        edits_by_variant[name] = edits
        table[name] = runner.passes([program(t, e) for t, e in zip(tasks, edits)])
    if server_path.exists():
        live = read(server_path)
        both = [t for t in tasks if t["task_id"] in live]
        offline = dict(zip([t["task_id"] for t in tasks], edits_by_variant["server (offline)"]))
        same = sum(Edit(live[t["task_id"]]["text"], live[t["task_id"]]["replace"]) == offline[t["task_id"]]
                   for t in both)
        table["server (live)"] = runner.passes(
            [program(t, Edit(live[t["task_id"]]["text"], live[t["task_id"]]["replace"])) for t in both])
        print(f"live server run: {len(both)} tasks; its text equals the offline replay on {same}/{len(both)}")
        gen = [live[t["task_id"]]["generated"] for t in both]
        lat = sorted(live[t["task_id"]]["latency_ms"] for t in both)
        rgen = [raws[t["task_id"]]["generated"] for t in both]
        print(f"  tokens generated: {sum(gen) / len(gen):.1f}/task with early stop vs {sum(rgen) / len(rgen):.1f} raw;"
              f" latency median {lat[len(lat) // 2]:.0f} ms, p90 {lat[int(len(lat) * 0.9)]:.0f} ms")
    base = max(sum(table["floor: raw"]), sum(table["floor: newline"]))
    print(f"{'variant':<28} {'pass@1':>7}  {'vs better floor':>15}")
    for name, results in table.items():
        rate = 100 * sum(results) / len(results)
        delta = 100 * (sum(results) - base) / len(results) if len(results) == len(tasks) else float("nan")
        print(f"{name:<28} {rate:6.2f}%  {delta:+14.2f}")
    timings.sort()
    print(f"post-processing time per task: median {1000 * timings[len(timings) // 2]:.2f} ms, "
          f"max {1000 * timings[-1]:.2f} ms")
    if args.dump:
        dump = OUT / f"dump-{args.set}.jsonl"
        with open(dump, "w") as fh:
            for i, task in enumerate(tasks):
                fh.write(json.dumps({"task_id": task["task_id"], "raw": raws[task["task_id"]]["raw"],
                                     "want": task["canonical_solution"],
                                     **{name: [edits_by_variant[name][i].text, table[name][i]]
                                        for name in edits_by_variant}}) + "\n")
        print(f"per-task texts: {dump}")


async def time_one(args: argparse.Namespace) -> None:
    tasks = sample(load_tasks(args.set), args.n, args.seed)[:5]
    root = Path(tempfile.mkdtemp(prefix="humaneval-"))
    for raw in (True, False):
        async with session(server_command(), root, init_options(args.model, args.max_tokens, raw)) as client:
            for k, task in enumerate(tasks):
                t0 = time.perf_counter()
                await complete(client, (root / f"t{k}.py").as_uri(), task["prompt"] + task["suffix"],
                               len(task["prompt"]), 1)
                last = (await status(client))["last"]
                print(f"{'raw' if raw else 'default'} {task['task_id']}: {time.perf_counter() - t0:.2f} s, "
                      f"prompt {last['promptTokens']} eval {last['evalMs']:.0f} ms, "
                      f"gen {last['generatedTokens']} tok {last['generationMs']:.0f} ms ({last['stopReason']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["generate", "score", "time"])
    parser.add_argument("--set", choices=list(FILES), default="single")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20240605)
    parser.add_argument("--steps", choices=["raw", "default"], default="raw")
    parser.add_argument("--model", default=STAND_IN)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", action="store_true", help="also score each step alone")
    parser.add_argument("--dump", action="store_true", help="write every variant's text per task")
    args = parser.parse_args()
    if args.command == "generate":
        asyncio.run(generate(args))
    elif args.command == "time":
        asyncio.run(time_one(args))
    else:
        score(args)


if __name__ == "__main__":
    main()
