"""The llama.cpp engine on a real (tiny, generated) GGUF: KV reuse, parked per-document sessions, cancellation."""

from __future__ import annotations

import pytest

from codegemma_lsp.engine import GenerationRequest, LlamaEngine


@pytest.fixture(scope="module")
def engine(tiny_model):
    return LlamaEngine(tiny_model, n_ctx=2048, n_gpu_layers=0, threads=1)


def prompt(engine, text: str) -> tuple[int, ...]:
    return (2, 67, *engine.tokenize(text), 69, 68)


def request(ids, session="", max_tokens=4, **kw) -> GenerationRequest:
    return GenerationRequest(prompt=ids, max_tokens=max_tokens, stop_ids=frozenset({1}), session=session, **kw)


def test_repeated_prompt_reuses_all_but_one_token(engine):
    ids = prompt(engine, "def add(a, b):\n    return a + b\n" * 20)
    first = engine.generate(request(ids, "a"), lambda: False)
    again = engine.generate(request(ids, "a"), lambda: False)
    assert first.stats.evaluated_tokens == len(ids) - first.stats.reused_tokens
    assert again.stats.reused_tokens == len(ids) - 1 and again.stats.evaluated_tokens == 1
    assert again.text == first.text  # greedy: same prompt, same answer


def test_typing_what_was_generated_reuses_the_generated_cells(engine):
    ids = prompt(engine, "def sub(a, b):\n    return a - b\n" * 10)[:-2]  # ends in the prefix, as in SPM
    endless = GenerationRequest(prompt=ids, max_tokens=6, stop_ids=frozenset(), session="g")
    first = engine.generate(endless, lambda: False)
    assert len(first.ids) == 6
    typed = ids + first.ids[:3]
    again = engine.generate(request(typed, "g"), lambda: False)
    assert again.stats.reused_tokens == len(typed) - 1 and again.stats.evaluated_tokens == 1


def test_reuse_off_evaluates_the_whole_prompt_with_the_same_answer(engine):
    ids = prompt(engine, "def mul(a, b):\n    return a * b\n" * 20)
    warm = engine.generate(request(ids, "r"), lambda: False)
    cold = engine.generate(request(ids, "r", reuse=False), lambda: False)
    assert cold.stats.reused_tokens == 0 and cold.stats.evaluated_tokens == len(ids)
    assert cold.text == warm.text


def test_switching_documents_restores_each_documents_cache(engine):
    doc_a = prompt(engine, "class Point:\n    x: int\n    y: int\n" * 30)
    doc_b = prompt(engine, "import os\nprint(os.getcwd())\n" * 30)
    engine.generate(request(doc_a, "file:///a.py"), lambda: False)
    b = engine.generate(request(doc_b, "file:///b.py"), lambda: False)
    assert b.stats.reused_tokens < 5  # b was never seen
    back = engine.generate(request(doc_a, "file:///a.py"), lambda: False)
    assert back.stats.reused_tokens == len(doc_a) - 1
    back_b = engine.generate(request(doc_b, "file:///b.py"), lambda: False)
    assert back_b.stats.reused_tokens == len(doc_b) - 1


def test_cancel_flag_is_polled_between_tokens(engine):
    ids = prompt(engine, "x = 1\n")
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 3

    result = engine.generate(request(ids, "c", max_tokens=64), cancelled)
    assert result.stats.stop_reason == "cancelled"
    assert result.stats.generated_tokens <= 3


def test_stop_text_ends_generation_early(engine):
    ids = prompt(engine, "y = 2\n")
    result = engine.generate(request(ids, "d", max_tokens=64, stop_text=lambda text: len(text) >= 3), lambda: False)
    assert result.stats.stop_reason == "stop_text" and len(result.text) >= 3
    assert result.stats.generated_tokens < 64



def test_lead_is_spelled_first_and_left_out_of_the_text(engine):
    ids = prompt(engine, "def f(x):\n")
    # No stop ids: the random tiny model would otherwise be free to end before spelling the lead.
    result = engine.generate(GenerationRequest(prompt=ids, max_tokens=3, stop_ids=frozenset(), session="h",
                                               lead="    "), lambda: False)
    spelled = engine._llm.detokenize(list(result.ids)).decode()
    assert spelled.startswith("    ") and result.text == spelled[4:]
    lead_tokens = next(n for n in range(1, len(result.ids) + 1)
                       if len(engine._llm.detokenize(list(result.ids[:n])).decode()) >= 4)
    assert len(result.ids) - lead_tokens == 3  # the lead's tokens do not count against max_tokens


def test_lead_tokens_never_run_past_the_context(engine):
    ids = prompt(engine, "x = 1\n" * 2000)[: engine.info.n_ctx - 2]  # room for two generated tokens
    result = engine.generate(GenerationRequest(prompt=ids, max_tokens=8, stop_ids=frozenset(), session="full",
                                               lead="    "), lambda: False)
    assert result.stats.stop_reason == "max_tokens" and len(result.ids) == 2


def test_time_budget_stops_generation_with_the_text_so_far(engine):
    ids = prompt(engine, "z = 3\n")
    # No stop ids: only the budget can end this before 1,500 tokens (~1 s on the tiny model, 2 ms a token at most).
    endless = GenerationRequest(prompt=ids, max_tokens=1500, stop_ids=frozenset(), session="e", time_budget_s=0.05)
    result = engine.generate(endless, lambda: False)
    assert result.stats.stop_reason == "time_budget"
    assert 0 < result.stats.generated_tokens < 1500


def test_work_ahead_never_evicts_the_prompt_of_the_last_real_request(engine):
    """A speculative request that extends the user's prompt runs; one that diverges early (a new line changed the
    context block) or needs another document's cache is declined before it touches the cache."""
    body = "def div(a, b):\n    return a / b\n" * 20
    ids = prompt(engine, body)[:-2]  # ends in the prefix, as in SPM
    engine.generate(request(ids, "s"), lambda: False)
    extends = engine.generate(request(ids + tuple(engine.tokenize("\n")), "s", speculative=True), lambda: False)
    assert extends.stats.stop_reason != "declined" and extends.stats.reused_tokens == len(ids)
    early = (2, 67, *engine.tokenize("# another context block\n" + body))
    declined = engine.generate(request(early, "s", speculative=True), lambda: False)
    assert declined.stats.stop_reason == "declined" and declined.text == ""
    elsewhere = engine.generate(request(ids, "other", speculative=True), lambda: False)
    assert elsewhere.stats.stop_reason == "declined"
    back = engine.generate(request(ids, "s"), lambda: False)
    assert back.stats.reused_tokens == len(ids) - 1  # the user's prompt is all still there


def prompt_logits(engine, ids, session: str, **kw):
    """The logits after the prompt: with max_tokens=1 nothing is decoded after it."""
    engine.generate(request(ids, session, max_tokens=1, **kw), lambda: False)
    return engine._logits_last().copy()


def moved_prompts(engine, new_block: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The same current file after two different context blocks, as when a new line changes the block."""
    current = engine.tokenize("def area(w, h):\n    return w * h\n" * 12)
    old = (2, *engine.tokenize("class Shape:\n    sides = 4\n"), 70, *current, 68)
    new = (2, *engine.tokenize(new_block), 70, *current, 68)
    return old, new


def test_a_moved_run_is_shifted_into_place_and_equals_exact_evaluation(engine):
    """After the context block changes, the current file's cells are shifted, not evaluated again. In this
    one-layer model a cell's key and value depend only on its token and position, so shifting is exact here:
    the logits must equal those of evaluating the whole prompt (a misplaced cell would change them)."""
    import numpy as np

    old, new = moved_prompts(engine, "from geometry import Circle, Square\nRADIUS = 2.5\n")
    exact = prompt_logits(engine, new, "exact", reuse=False)
    prompt_logits(engine, old, "m")
    shifted = engine.generate(request(new, "m", max_tokens=1, shift=True, current_at=new.index(70) + 1), lambda: False)
    got = engine._logits_last().copy()
    s = shifted.stats
    assert s.moved_tokens > len(new) // 2 and s.reused_tokens + s.moved_tokens + s.evaluated_tokens == len(new)
    assert np.abs(got - exact).max() < 1e-3 * np.abs(exact).max()
    again = engine.generate(request(new, "m", shift=True, current_at=new.index(70) + 1), lambda: False)
    assert again.stats.reused_tokens == len(new) - 1  # the cache now holds `new` in order
    assert again.text == engine.generate(request(new, "exact", reuse=False), lambda: False).text


def test_a_prefix_whose_window_start_moved_is_shifted_in_the_suffix_first_layout(engine):
    """When the prefix ends the prompt (SPM) and the suffix and all before it are unchanged, a change inside the
    prefix (its window's start moved down past lines now left out) keeps the rest of the prefix, shifted. With
    the prefix elsewhere (PSM, `prefix_at` None) or a changed suffix (the cursor moved), it is evaluated again."""
    import numpy as np

    suffix = engine.tokenize("    return total\n")
    dropped = engine.tokenize("import os\n" * 20)
    rest = engine.tokenize("".join(f"def area{i}(w, h):\n    return w * h + {i}\n" for i in range(12)))
    typed = engine.tokenize("total = area(2, 3)\n")
    head = (2, *engine.tokenize("class Shape:\n    sides = 4\n"), 70, *suffix, 68)
    old = (*head, *dropped, *rest)
    new = (*head, *rest, *typed)
    exact = prompt_logits(engine, new, "exact", reuse=False)
    prompt_logits(engine, old, "w")
    moved = engine.generate(request(new, "w", max_tokens=1, shift=True, current_at=1, prefix_at=len(head)),
                            lambda: False)
    assert moved.stats.moved_tokens >= len(rest) - 1 and moved.stats.evaluated_tokens <= len(typed) + 1
    assert np.abs(engine._logits_last() - exact).max() < 1e-3 * np.abs(exact).max()

    prompt_logits(engine, old, "w")
    psm = engine.generate(request(new, "w", max_tokens=1, shift=True, current_at=len(head)), lambda: False)
    assert psm.stats.moved_tokens == 0
    prompt_logits(engine, old, "w")
    other_suffix = (*head[:-2], *engine.tokenize("x"), 68, *rest, *typed)
    jumped = engine.generate(request(other_suffix, "w", max_tokens=1, shift=True, current_at=1,
                                     prefix_at=len(head) + 1), lambda: False)
    assert jumped.stats.moved_tokens == 0


def test_shift_off_and_cancelled_moves_keep_the_cache_consistent(engine):
    old, new = moved_prompts(engine, "# notes\n" * 200)  # over one evaluation slice before the moved run
    engine.generate(request(old, "off"), lambda: False)
    plain = engine.generate(request(new, "off"), lambda: False)
    assert plain.stats.moved_tokens == 0 and plain.stats.evaluated_tokens == len(new) - plain.stats.reused_tokens

    engine.generate(request(old, "cx"), lambda: False)
    checks = []

    def second_slice() -> bool:  # cancelled before the second slice of the tokens ahead of the moved run
        checks.append(1)
        return len(checks) > 1

    stopped = engine.generate(request(new, "cx", shift=True, current_at=new.index(70) + 1), second_slice)
    assert stopped.stats.stop_reason == "cancelled" and stopped.stats.moved_tokens == 0
    after = engine.generate(request(new, "cx", shift=True, current_at=new.index(70) + 1), lambda: False)
    assert after.stats.reused_tokens >= 128  # what was evaluated before the cancel stayed valid
    assert after.text == plain.text
