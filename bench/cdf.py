"""Per-keystroke latency CDF (issue 4): one curve per typing replay, from bench/typing_replay.py --out files.

    .venv/bin/pip install matplotlib   # plotting only; nothing else in the project needs it
    .venv/bin/python bench/cdf.py .bench-out/replay-*.json --png docs/latency-cdf.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from typing_replay import pct  # noqa: E402  the replay's own percentile, so the legend matches its report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="JSON files written by typing_replay.py --out")
    parser.add_argument("--png", type=Path, required=True)
    parser.add_argument("--title", default="Ghost-text latency at typing pauses")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for path in args.runs:
        run = json.loads(path.read_text())
        seconds = sorted(s["latency"] / 1000 for s in run["samples"])
        share = [(i + 1) / len(seconds) for i in range(len(seconds))]
        median = pct(seconds, 0.5)
        ax.step(seconds, share, where="post", label=f"{run['label']} (p50 {median:.2f} s, n={len(seconds)})")
    ax.set_xscale("log")
    ax.set_xlabel("seconds from the last keystroke before a pause to the ghost text (log scale)")
    ax.set_ylabel("share of pauses")
    ax.set_ylim(0, 1)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"{args.title} ({run['model']}, {run['threads']} threads)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    args.png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.png)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
