"""Which of the KV cache's cells a new prompt can keep: pure planning over token ids, no model.

The common prefix is exact reuse. When the cross-file context block changes (a new line names another
definition, or other code resembles the cursor's), everything after the change has moved: the current file's
suffix and prefix (over a thousand tokens) are the same ids at other positions. Their cells can be shifted to
the new positions (RoPE keys are rotated by the offset) instead of evaluated again: llama-server's cache reuse
does this to close gaps; here the new block's tokens are evaluated in front of the moved run. That is
approximate: the moved cells were computed attending to the old block, so it is a setting (`kvShift`),
measured against exact evaluation in bench/accept_replay.py. A change inside the block qualifies when the run
covers the current file from its start; so does a change inside the prefix when the prefix ends the prompt
(suffix-prefix-middle) and everything before it is unchanged: the prefix window's start moved down, and the
rest of the prefix, computed after the same suffix, moves up. Otherwise (the cursor moved, so cells of a
prefix were computed after another suffix and carry a stale picture of the code after the cursor) the
prompt is evaluated exactly from the change on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

MIN_MOVE = 64  # a shorter run saves too little to be worth an approximation
GRAM = 16  # ids per lookup key when searching the cache for a run


@dataclass(frozen=True)
class Move:
    """`length` cached ids at `cache_at` that the new prompt has at `prompt_at`."""

    cache_at: int
    prompt_at: int
    length: int


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two id sequences."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def find_move(cached: Sequence[int], prompt: Sequence[int], start: int, before: int,
              min_len: int = MIN_MOVE) -> Move | None:
    """The longest run of `prompt[start:]` that `cached[start:]` also holds, at least `min_len` ids long and
    starting at or before `before` (where the current file's part of the prompt begins); None when the prompts
    already differ at or after `before`.

    The prompt's last id is never part of it: it is evaluated whatever happens, for the logits that start
    generation. The search keys runs by their first GRAM ids, so its cost is linear in the two lengths."""
    end = len(prompt) - 1
    if start >= before or end - start < min_len or len(cached) - start < min_len:
        return None
    first: dict[tuple[int, ...], int] = {}
    for i in range(start, len(cached) - GRAM + 1):
        first.setdefault(tuple(cached[i : i + GRAM]), i)
    best: Move | None = None
    p = start
    while p <= before and p + GRAM <= end:
        c = first.get(tuple(prompt[p : p + GRAM]))
        if c is None:
            p += 1
            continue
        n = GRAM
        while p + n < end and c + n < len(cached) and cached[c + n] == prompt[p + n]:
            n += 1
        if n >= min_len and (best is None or n > best.length):
            best = Move(c, p, n)
        p += n
    return best
