"""Suffix budget (issue 4): what a smaller `suffixTokens` costs in quality and saves per keystroke.

In prefix-suffix-middle prompts every keystroke changes the end of the prefix, so the whole suffix window after
it is evaluated again: its token budget is the per-keystroke cost once the prefix is cached. This runs the
HumanEval single-line sample of bench/humaneval.py through the real server (in process, context off, the default
post-processing) once per budget and prints pass@1, prompt tokens and latency; pair it with
`bench/typing_replay.py --settings '{"suffixTokens": N}'` for the per-keystroke side.

    .venv/bin/python bench/suffix_budget.py --n 60 --budgets 256,64,16
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from codegemma_lsp.postprocess import Edit  # noqa: E402
from humaneval import OUT, STAND_IN, THREADS, Runner, init_options, load_tasks, program, sample  # noqa: E402
from remote import run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=60, help="tasks in the seeded single-line sample")
    parser.add_argument("--seed", type=int, default=20240605)
    parser.add_argument("--budgets", default="256,64,16", help="suffixTokens values, comma-separated")
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    tasks = sample(load_tasks("single"), args.n, args.seed)
    OUT.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="suffix-budget-"))
    runner = Runner(OUT / "runs-cache.json", workers=2)
    print(f"HumanEval single-line, n={len(tasks)} (seed {args.seed}), {STAND_IN}, {THREADS} thread(s), greedy")
    for budget in (int(b) for b in args.budgets.split(",")):
        options = {**init_options(STAND_IN, args.max_tokens, raw=False), "suffixTokens": budget}
        records = asyncio.run(run(f"suffix{budget}", options, tasks, root))
        passed = runner.passes([program(r["task"], Edit(r["text"], r["replace"])) for r in records])
        prompt = statistics.mean(r["prompt"] or 0 for r in records)
        ms = statistics.median(r["ms"] for r in records)
        print(f"  suffixTokens {budget:>4}: pass@1 {100 * sum(passed) / len(tasks):6.2f}%   prompt tokens mean "
              f"{prompt:6.0f}   median {ms:6.0f} ms", flush=True)


if __name__ == "__main__":
    main()
