"""Settings sweep (issue 4): what a latency lever costs in completion quality.

In prefix-suffix-middle prompts every keystroke changes the end of the prefix, so the whole suffix window after
it is evaluated again: a smaller `suffixTokens`, or the suffix-prefix-middle `fimLayout` (typing only appends),
saves work per keystroke, and may cost quality. This runs a HumanEval infilling sample of bench/humaneval.py
through the real server (in process, context off, the default post-processing) once per settings variant and
prints pass@1, prompt tokens and latency; pair it with `bench/typing_replay.py --settings '{...}'` for the
per-keystroke side.

    .venv/bin/python bench/settings_sweep.py --n 60 '{"suffixTokens": 256}' '{"suffixTokens": 64}'
    .venv/bin/python bench/settings_sweep.py --n 60 '{"fimLayout": "psm"}' '{"fimLayout": "spm"}'
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
    parser.add_argument("--set", choices=("single", "multi"), default="single", help="HumanEval infilling set")
    parser.add_argument("--n", type=int, default=60, help="tasks in the seeded sample")
    parser.add_argument("--seed", type=int, default=20240605)
    parser.add_argument("variants", nargs="+", type=json.loads, help="settings objects (JSON), one run each")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--model", default=STAND_IN, help="registry alias or .gguf path")
    args = parser.parse_args()

    tasks = sample(load_tasks(args.set), args.n, args.seed)
    OUT.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="settings-sweep-"))
    runner = Runner(OUT / "runs-cache.json", workers=2)
    print(f"HumanEval {args.set}-line, n={len(tasks)} (seed {args.seed}), {args.model}, {THREADS} thread(s), greedy")
    for n, variant in enumerate(args.variants):
        options = {**init_options(args.model, args.max_tokens, raw=False), **variant}
        records = asyncio.run(run(f"variant{n}", options, tasks, root))
        passed = runner.passes([program(r["task"], Edit(r["text"], r["replace"])) for r in records])
        prompt = statistics.mean(r["prompt"] or 0 for r in records)
        ms = statistics.median(r["ms"] for r in records)
        print(f"  {json.dumps(variant, sort_keys=True):<40} pass@1 {100 * sum(passed) / len(tasks):6.2f}%   "
              f"prompt tokens mean {prompt:6.0f}   median {ms:6.0f} ms", flush=True)


if __name__ == "__main__":
    main()
