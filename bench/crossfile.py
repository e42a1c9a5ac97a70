"""Cross-file context benchmark (issue 3) on ../shared/bench/crossfile: quality through the real server over
JSON-RPC, and context-gathering time in-process.

Quality, per mode on the same seeded sample of cases and the same model:
  none    no cross-file context (`context.crossFile: false`)
  graph   the import-graph context (the default server)
  nearby  baseline: the nearest files of the same directory (bench/nearby.py)
  oracle  upper bound: just the definitions of the names the answer uses (bench/oracle.py; reads the answer)
Each case's target file is sent as the open document (prefix + suffix, so the answer on disk never leaks) and
completed at the hole. Scores: exact match (first line, stripped), edit similarity (1 - Levenshtein / longer
length) and context recall (the prompt carried a file from `imported_module_paths`). With --out and --resume a
run continues where it stopped; graph results whose context block has changed since (a packing change) run again.
Each mode is set against none on the same cases with a paired bootstrap 95% interval and a sign test.

Timing (--timing): cold index + first request and warm per-request gathering on the largest repository and on a
generated repository of --generated modules (1,000), with the stand-in's real tokenizer.

    .venv/bin/python bench/crossfile.py --cases 75 --modes none,graph,nearby
    .venv/bin/python bench/crossfile.py --timing
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from lsp import inline_completion, server_command, session, status  # noqa: E402

DATA = HERE.parent.parent / "shared" / "bench" / "crossfile"
STAND_IN = "qwen2.5-coder-0.5b-q4"
BASELINES = ("nearby", "oracle")  # context providers that bench/serve_baseline.py puts into the real server


def set_data(path: Path) -> None:
    global DATA
    DATA = path.resolve()


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def edit_similarity(got: str, want: str) -> float:
    longest = max(len(got), len(want))
    return 1.0 if longest == 0 else 1 - levenshtein(got, want) / longest


def sample(cases: list[dict], n: int, seed: int) -> list[dict]:
    """n cases spread evenly over the repositories, drawn with a fixed seed. Each repository's cases are
    shuffled on their own, so a smaller sample is contained in every larger one: a run can grow in steps
    with --resume and every step is a complete, balanced paired comparison."""
    by_repo: dict[str, list[dict]] = defaultdict(list)
    for case in cases:
        by_repo[case["repo"]].append(case)
    repos = sorted(by_repo)
    chosen = []
    for i, repo in enumerate(repos):
        k = n // len(repos) + (1 if i < n % len(repos) else 0)
        order = sorted(by_repo[repo], key=lambda case: case["id"])
        random.Random(f"{seed}:{repo}").shuffle(order)
        chosen += order[:k]
    return chosen


async def run_mode(mode: str, cases: list[dict], model: str, threads: int, budget: int, max_new: int,
                   sink=None, digests: dict[str, str] | None = None) -> list[dict]:
    """Complete every case in `mode`, one server per repository; each result is also written to `sink` (JSON
    lines) as soon as it is known, so an interrupted run can be resumed."""
    # kvShift off: an answer must not depend on what the case before it left in the KV cache.
    options = {"context": {"crossFile": mode != "none", "maxTokens": budget}, "maxTokens": max_new, "kvShift": False}
    baseline = ("--bench-context", mode, "--bench-cases", str(DATA / "cases.jsonl")) if mode in BASELINES else ()
    entry = str(HERE / "serve_baseline.py") if baseline else None
    results = []
    by_repo: dict[str, list[dict]] = defaultdict(list)
    for case in cases:
        by_repo[case["repo"]].append(case)
    for repo, repo_cases in sorted(by_repo.items()):
        root = (DATA / "repos" / repo).resolve()
        command = server_command("--model", model, "--threads", str(threads), "--no-download", *baseline,
                                 entry=entry)
        async with session(command, root, options) as client:
            for version, case in enumerate(repo_cases, 1):
                uri = (root / case["path"]).as_uri()
                t0 = time.perf_counter()
                text = await inline_completion(client, uri, case["prefix"] + case["suffix"], len(case["prefix"]), version)
                wall = time.perf_counter() - t0
                last = (await status(client)).get("last", {})
                got = text.split("\n", 1)[0].strip()
                want = case["middle"].strip()
                files = last.get("contextFiles", [])
                results.append({
                    "id": case["id"], "repo": repo, "mode": mode, "completion": text, "exact": got == want,
                    "es": edit_similarity(got, want), "recall": any(p in files for p in case["imported_module_paths"]),
                    "contextFiles": files, "contextTokens": last.get("contextTokens", 0),
                    "promptTokens": last.get("promptTokens", 0), "contextMs": last.get("timingsMs", {}).get("context"),
                    "wall_s": wall, "raw": last.get("raw"), "stopReason": last.get("stopReason"),
                })
                if mode == "graph" and digests:
                    results[-1]["contextDigest"] = digests[case["id"]]
                if sink is not None:
                    sink.write(json.dumps(results[-1]) + "\n")
                    sink.flush()
                print(f"  {mode:<6} {case['id']:<28} {'EM' if got == want else '  '} es={results[-1]['es']:.2f} "
                      f"ctx={results[-1]['contextTokens']:>4} files={len(files)} {wall:.1f}s", file=sys.stderr)
    return results


def report(results: list[dict], modes: list[str]) -> None:
    repos = sorted({r["repo"] for r in results})
    print(f"\n{'mode':<8}{'n':>5}{'EM %':>8}{'ES':>8}{'recall %':>10}{'ctx tok':>9}{'ctx ms':>8}  "
          + "  ".join(f"{r[:10]:>10}" for r in repos))
    for mode in modes:
        rows = [r for r in results if r["mode"] == mode]
        if not rows:
            continue
        em = 100 * sum(r["exact"] for r in rows) / len(rows)
        es = 100 * statistics.mean(r["es"] for r in rows)
        recall = 100 * sum(r["recall"] for r in rows) / len(rows)
        tokens = statistics.mean(r["contextTokens"] for r in rows)
        ms = [r["contextMs"] for r in rows if r["contextMs"] is not None]
        per_repo = "  ".join(f"{sum(r['exact'] for r in rows if r['repo'] == repo):>4}/{sum(1 for r in rows if r['repo'] == repo):<5}"
                             for repo in repos)
        print(f"{mode:<8}{len(rows):>5}{em:>8.1f}{es:>8.1f}{recall:>10.1f}{tokens:>9.0f}"
              f"{statistics.median(ms) if ms else 0:>8.1f}  {per_repo}")
    print("(per repository: exact matches / cases)")
    paired(results, modes)


def paired(results: list[dict], modes: list[str]) -> None:
    """Each context mode against `none` on the cases both ran: the issue's goals are differences on the same
    cases (exact match and edit similarity points, cases won and lost, the repository that loses most)."""
    by_case = {(r["id"], r["mode"]): r for r in results}
    for mode in (m for m in modes if m != "none"):
        pairs = [(by_case[(i, mode)], by_case[(i, "none")]) for i, m in by_case if m == mode and (i, "none") in by_case]
        if not pairs:
            continue
        won = sum(a["exact"] and not b["exact"] for a, b in pairs)
        lost = sum(b["exact"] and not a["exact"] for a, b in pairs)
        es = 100 * statistics.mean(a["es"] - b["es"] for a, b in pairs)
        per_repo: dict[str, int] = defaultdict(int)
        for a, b in pairs:
            per_repo[a["repo"]] += a["exact"] - b["exact"]
        worst = min(per_repo, key=per_repo.get)
        em_low, em_high = bootstrap_interval([100 * (a["exact"] - b["exact"]) for a, b in pairs])
        es_low, es_high = bootstrap_interval([100 * (a["es"] - b["es"]) for a, b in pairs])
        print(f"{mode} vs none on the same {len(pairs)} cases: exact match {100 * (won - lost) / len(pairs):+.1f} "
              f"points ({won} won, {lost} lost), edit similarity {es:+.1f}; per repository "
              + ", ".join(f"{repo} {d:+d}" for repo, d in sorted(per_repo.items()))
              + f" (lowest: {worst} {per_repo[worst]:+d})")
        print(f"  95% interval (paired bootstrap): exact match {em_low:+.1f} to {em_high:+.1f}, edit similarity "
              f"{es_low:+.1f} to {es_high:+.1f}; sign test on the {won + lost} cases that differ: "
              f"p = {sign_test(won, lost):.3f}")


def sign_test(won: int, lost: int) -> float:
    """Exact two-sided sign (McNemar) test: how often a fair coin splits the cases that differ this unevenly."""
    n = won + lost
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(won, lost) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def bootstrap_interval(differences: list[float], draws: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean per-case difference, resampling cases: how far the sample alone could move
    the figure, which a goal of a few points needs beside it."""
    rng = random.Random(seed)
    n = len(differences)
    means = sorted(sum(rng.choices(differences, k=n)) / n for _ in range(draws))
    return means[int(0.025 * draws)], means[int(0.975 * draws) - 1]


# --- context blocks in-process (no model: tokenizer only) ------------------------------------------------------

def shown(request, tokenize) -> range:
    """The lines of the current file that the server's prompt windows carry (default window sizes)."""
    from codegemma_lsp.config import Config
    from codegemma_lsp.window import cursor_window

    config = Config()
    return cursor_window(request.text, request.offset, tokenize, prefix_tokens=config.prefix_tokens,
                         suffix_tokens=config.suffix_tokens, heal=True).lines


def blocks(cases: list[dict], provider, budget: int, tokenize):
    """(case, index, context block) for each case, gathered in-process the way the server gathers it: the case's
    file is the open document (prefix + suffix), the other files are read from disk."""
    from codegemma_lsp.completion import CompletionRequest
    from codegemma_lsp.context import WorkspaceIndex

    indexes = {repo: WorkspaceIndex([(DATA / "repos" / repo).resolve()]) for repo in sorted({c["repo"] for c in cases})}
    for case in cases:
        index = indexes[case["repo"]]
        root = index.roots[0]
        request = CompletionRequest(uri=(root / case["path"]).as_uri(), path=case["path"],
                                    text=case["prefix"] + case["suffix"], offset=len(case["prefix"]), repo=case["repo"])
        yield case, index, provider(index).gather(request, budget, tokenize, shown=shown(request, tokenize))


def block_digests(cases: list[dict], model: str, budget: int) -> dict[str, str]:
    """A digest of each case's import-graph context block (paths and token ids). A graph result is reused by
    --resume only while its case's digest is unchanged: a packing change re-runs just the cases it changes."""
    from codegemma_lsp.context import ImportGraphContext

    tokenize = _tokenizer(_vocab(model))
    return {case["id"]: hashlib.sha1(repr([(f.path, f.ids) for f in block]).encode()).hexdigest()[:16]
            for case, _, block in blocks(cases, ImportGraphContext, budget, tokenize)}


# --- recall (no model: tokenizer only) ---------------------------------------------------------------------------

def recall(model: str, budget: int) -> None:
    """Context recall on every case, in-process: did the block carry a file defining the hidden names
    (`imported_module_paths`), and did it carry the definition itself (its first line)?"""
    from codegemma_lsp.context import ImportGraphContext
    from codegemma_lsp.context.imports import identifiers
    from nearby import NearbyFiles

    vocab = _vocab(model)
    cases = [json.loads(line) for line in open(DATA / "cases.jsonl")]
    providers = {"graph": ImportGraphContext, "nearby": NearbyFiles}
    tokenize = _tokenizer(vocab)
    print(f"\ncontext recall on all {len(cases)} cases, budget {budget} tokens, tokenizer of {model}")
    print(f"{'mode':<8}{'file recall %':>15}{'definition recall %':>21}{'ctx tok':>9}{'files':>7}  per repository (file recall)")
    for mode, make in providers.items():
        file_hits, def_hits, def_cases, tokens, files = 0, 0, 0, [], []
        per_repo: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for case, index, block in blocks(cases, make, budget, tokenize):
            root = index.roots[0]
            paths = [f.path for f in block]
            hit = any(p in paths for p in case["imported_module_paths"])
            file_hits += hit
            per_repo[case["repo"]][0] += hit
            per_repo[case["repo"]][1] += 1
            tokens.append(sum(len(f.ids) for f in block))
            files.append(len(block))
            shown = vocab.detokenize([i for f in block for i in f.ids]).decode("utf-8", "replace")
            hidden = set(identifiers(case["middle"]))
            wanted = []
            for rel in case["imported_module_paths"]:
                facts = index.facts(root / rel)
                if facts is not None:
                    wanted += [facts.lines[d.start].strip() for d in facts.definitions
                               if d.parent is None and d.name in hidden]
            if wanted:
                def_cases += 1
                def_hits += any(line in shown for line in wanted)
        repos = "  ".join(f"{r} {100 * h / n:.0f}%" for r, (h, n) in sorted(per_repo.items()))
        print(f"{mode:<8}{100 * file_hits / len(cases):>15.1f}{100 * def_hits / max(1, def_cases):>21.1f}"
              f"{statistics.mean(tokens):>9.0f}{statistics.mean(files):>7.1f}  {repos}")
    print(f"(definition recall over the {def_cases} cases whose hidden names are top-level definitions)")


def _vocab(model: str):
    import llama_cpp

    from codegemma_lsp.registry import load_registry, local_path, resolve_model

    try:
        path = local_path(load_registry().get(model))
    except Exception:
        path = resolve_model(model).path
    return llama_cpp.Llama(str(path), vocab_only=True, verbose=False)


def _tokenizer(vocab):
    from codegemma_lsp.window import LineTokenizer

    return LineTokenizer(lambda s: vocab.tokenize(s.encode(), add_bos=False, special=False))


# --- timing ---------------------------------------------------------------------------------------------------

def generated_repo(root: Path, files: int = 1000) -> Path:
    """A synthetic Python package tree: `files` modules in 20 packages, each importing a few others."""
    rng = random.Random(7)
    for i in range(files):
        package = root / "src" / "gen" / f"pkg{i % 20}"
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").touch()
        imports = "\n".join(f"from gen.pkg{j % 20}.mod{j} import func{j}, Class{j}"
                            for j in rng.sample(range(files), 6) if j != i)
        body = "\n\n".join(
            f'def func{i}_{k}(value: int, *, scale: float = 1.0) -> float:\n    """Scale value {k}."""\n'
            f"    total = value * scale\n    return total + {k}\n" for k in range(8))
        (package / f"mod{i}.py").write_text(
            f'"""Module {i}."""\n{imports}\n\n\ndef func{i}(x: int) -> int:\n    """Double x."""\n    return 2 * x\n\n\n'
            f'class Class{i}:\n    """A class."""\n\n    def __init__(self, size: int) -> None:\n        self.size = size\n\n'
            f"    def grow(self, by: int) -> int:\n        return self.size + by\n\n\n{body}\n")
    return root


def timing(model: str, budget: int, generated: int = 1000) -> None:
    import tempfile

    from codegemma_lsp.completion import CompletionRequest
    from codegemma_lsp.context import ImportGraphContext, WorkspaceIndex

    vocab = _vocab(model)
    cases = [json.loads(line) for line in open(DATA / "cases.jsonl")]
    sizes = {repo: sum(1 for _ in (DATA / "repos" / repo).rglob("*.py")) for repo in {c["repo"] for c in cases}}
    largest = max(sizes, key=sizes.get)
    targets = [(DATA / "repos" / largest, [(c["path"], c["prefix"] + c["suffix"], len(c["prefix"]))
                                            for c in cases if c["repo"] == largest][:20], f"{largest} ({sizes[largest]} .py files)")]
    tmp = Path(tempfile.mkdtemp(prefix="codegemma-gen-"))
    gen = generated_repo(tmp, generated)
    gen_cases = []
    for i in (3, generated // 4, generated // 2 + 17, generated - 1):
        rel = f"src/gen/pkg{i % 20}/mod{i}.py"
        text = (gen / rel).read_text()
        offset = text.index("    return 2 * x") + 4
        gen_cases.append((rel, text, offset))
    targets.append((gen, gen_cases, f"generated ({generated:,} modules)"))
    print(f"\ncontext gathering, budget {budget} tokens, tokenizer of {model}, in-process")
    for root, items, label in targets:
        root = root.resolve()
        tokenize = _tokenizer(vocab)
        index = WorkspaceIndex([root])
        provider = ImportGraphContext(index)
        colds, warms, typing_ms = [], [], []
        for k, (rel, text, offset) in enumerate(items):
            request = CompletionRequest(uri=(root / rel).as_uri(), path=rel, text=text, offset=offset, repo=root.name)
            index.set_open(root / rel, text)  # as the server does on didOpen
            lines = shown(request, tokenize)
            t0 = time.perf_counter()
            first = provider.gather(request, budget, tokenize, shown=lines)
            colds.append((time.perf_counter() - t0) * 1000)
            for _ in range(5):
                t0 = time.perf_counter()
                again = provider.gather(request, budget, tokenize, shown=lines)
                warms.append((time.perf_counter() - t0) * 1000)
            assert [(f.path, f.ids) for f in first] == [(f.path, f.ids) for f in again]
            typed = text[:offset] + "x" + text[offset:]  # one keystroke: the block must not change
            index.set_open(root / rel, typed)  # didChange
            t0 = time.perf_counter()
            after = provider.gather(CompletionRequest(uri=request.uri, path=rel, text=typed, offset=offset + 1,
                                                      repo=root.name), budget, tokenize, shown=lines)
            typing_ms.append((time.perf_counter() - t0) * 1000)
            if [(f.path, f.ids) for f in after] != [(f.path, f.ids) for f in first]:
                print(f"  note: context changed after a keystroke in {rel}")
        walk = WorkspaceIndex([root])
        t0 = time.perf_counter()
        walked = len(walk.files())  # the full file list, built only when longest-suffix matching needs it
        walk_ms = (time.perf_counter() - t0) * 1000
        print(f"  {label}: file list ({walked} source files) {walk_ms:.0f} ms; first request (cold index) {colds[0]:.0f} ms; later files' first request median "
              f"{statistics.median(colds[1:]):.1f} ms; warm per request median {statistics.median(warms):.1f} ms, "
              f"p95 {sorted(warms)[int(0.95 * len(warms))]:.1f} ms; after a keystroke median "
              f"{statistics.median(typing_ms):.1f} ms ({len(items)} files)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=75, help="seeded sample size, spread over the 5 repositories")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--modes", default="none,graph,nearby")
    parser.add_argument("--model", default=STAND_IN)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget", type=int, default=1024, help="context.maxTokens")
    parser.add_argument("--max-tokens", type=int, default=32, help="longest completion (the holes are single lines)")
    parser.add_argument("--out", type=Path, help="write per-case results as JSON lines")
    parser.add_argument("--resume", action="store_true",
                        help="keep the results already in --out and run only the (case, mode) pairs missing there")
    parser.add_argument("--timing", action="store_true", help="only time context gathering")
    parser.add_argument("--generated", type=int, default=1000, help="modules in the generated repository timed")
    parser.add_argument("--recall", action="store_true", help="only context recall on all cases (no model run)")
    parser.add_argument("--data", type=Path, default=DATA, help=f"benchmark data (default {DATA})")
    args = parser.parse_args()
    set_data(args.data)
    if args.timing or args.recall:
        if args.recall:
            recall(args.model, args.budget)
        if args.timing:
            timing(args.model, args.budget, args.generated)
        return 0
    cases = sample([json.loads(line) for line in open(DATA / "cases.jsonl")], args.cases, args.seed)
    modes = args.modes.split(",")
    done: dict[tuple[str, str], dict] = {}
    if args.resume and args.out and args.out.exists():
        for line in args.out.read_text().splitlines():
            row = json.loads(line)
            done[(row["id"], row["mode"])] = row
    digests = block_digests(cases, args.model, args.budget) if "graph" in modes else {}
    stale = {key for key, row in done.items()
             if key[1] == "graph" and key[0] in digests and row.get("contextDigest") != digests[key[0]]}
    if stale:  # re-run below; the new rows are appended and, being last, win at the next --resume
        print(f"graph: {len(stale)} results to re-run, their context block changed (or was not recorded)",
              file=sys.stderr)
        done = {key: row for key, row in done.items() if key not in stale}
    results = [done[(c["id"], m)] for m in modes for c in cases if (c["id"], m) in done]
    sink = args.out.open("a" if args.resume else "w") if args.out else None
    for mode in modes:
        todo = [c for c in cases if (c["id"], mode) not in done]
        print(f"{mode}: {len(cases) - len(todo)} cases from {args.out}, {len(todo)} to run", file=sys.stderr)
        results += asyncio.run(run_mode(mode, todo, args.model, args.threads, args.budget, args.max_tokens, sink,
                                        digests))
    print(f"\n{len(cases)} cases (seed {args.seed}), model {args.model}, context.maxTokens {args.budget}, "
          f"{args.threads} threads, maxTokens {args.max_tokens}")
    report(results, modes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
