"""Planning which cached KV cells a new prompt keeps: the common prefix and one moved run."""

from __future__ import annotations

import random

from codegemma_lsp.kvplan import GRAM, Move, common_prefix_len, find_move


def ids(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(1000) for _ in range(n)]


def test_common_prefix_len():
    assert common_prefix_len([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix_len([1, 2], [1, 2, 3]) == 2
    assert common_prefix_len([], [1]) == 0


def test_a_changed_block_moves_what_follows_it():
    head, old_block, new_block, current = ids(40, 1), ids(100, 2), ids(130, 3), ids(500, 4)
    cached = head + old_block + current + ids(10, 5)  # the completion generated last time follows the prompt
    prompt = head + new_block + current + [7, 8, 9]  # typed since: the tail is new
    start = common_prefix_len(cached, prompt)
    assert start == 40
    assert find_move(cached, prompt, start, before=170) == Move(cache_at=140, prompt_at=170, length=500)


def test_the_last_prompt_token_is_never_moved():
    head, current = ids(30, 1), ids(200, 2)
    cached = head + ids(50, 3) + current
    prompt = head + ids(20, 4) + current  # ends where the cache ends: its last token must still be evaluated
    move = find_move(cached, prompt, 30, before=50)
    assert move == Move(cache_at=80, prompt_at=50, length=199)
    assert move.prompt_at + move.length == len(prompt) - 1


def test_short_runs_and_unchanged_prompts_move_nothing():
    head = ids(300, 1)
    assert find_move(head + [5], head + [6], 300, before=0) is None  # only the cursor's token changed
    shared = ids(40, 2)  # shorter than MIN_MOVE
    assert find_move(ids(10, 3) + shared + ids(10, 4), ids(12, 5) + shared + ids(10, 6), 0, 12) is None
    assert find_move(ids(10, 3) + shared + ids(10, 4), ids(12, 5) + shared + ids(10, 6), 0, 12, min_len=32) == Move(10, 12, 40)


def test_only_a_change_inside_the_context_block_moves_the_current_file():
    """A prefix whose cells were computed after another suffix (the cursor moved) is evaluated again: the run
    must start at or before the current file's first id, and the prompts must differ before it."""
    block, suffix, other_suffix, prefix = ids(200, 1), ids(50, 2), ids(60, 3), ids(400, 4)
    cached = block + suffix + prefix
    moved_cursor = block + other_suffix + prefix + [9]
    assert find_move(cached, moved_cursor, 200, before=200) is None  # they differ in the current file only
    new_block = ids(150, 5) + block[150:]
    assert find_move(cached, new_block + other_suffix + prefix + [9], 0, before=200) is None  # run ends at the suffix
    assert find_move(cached, new_block + suffix + prefix + [9], 0, before=200) == Move(150, 150, 500)


def test_the_longest_run_wins_and_repeated_text_is_aligned():
    indent = [32] * (2 * GRAM)  # a run of blanks: the same key at many offsets
    small, big = ids(80, 1) + indent, indent + ids(300, 2)
    cached = ids(20, 3) + small + ids(30, 4) + big
    prompt = ids(25, 5) + big + ids(10, 6) + small + [1]
    move = find_move(cached, prompt, 0, before=len(prompt))
    assert move is not None and move.length >= 300
    assert cached[move.cache_at : move.cache_at + move.length] == prompt[move.prompt_at : move.prompt_at + move.length]
