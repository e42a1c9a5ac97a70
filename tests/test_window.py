"""Cursor windows: exact budgets, whole lines, snapping that keeps the KV prefix stable while typing."""

from codegemma_lsp.window import LineTokenizer, cursor_window, statement_margins


def byte_tokens(text: str) -> list[int]:
    """One id per UTF-8 byte: token counts are easy to reason about."""
    return list(text.encode("utf-8"))


SOURCE = "".join(f"line {i:03d} = compute({i})\n" for i in range(200))  # 24 bytes per line


def test_small_file_fits_whole_and_splits_exactly_at_cursor():
    text = "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n"
    offset = text.index("a + b")
    w = cursor_window(text, offset, byte_tokens, prefix_tokens=1000, suffix_tokens=1000)
    assert w.prefix_text == text[:offset]
    assert w.suffix_text == text[offset:]
    assert bytes(w.prefix_ids).decode() == text[:offset]
    assert bytes(w.suffix_ids).decode() == text[offset:]
    assert w.line_prefix == "    return "
    assert w.line_suffix == "a + b"
    assert w.cursor_line == 1 and w.start_line == 0


def test_heal_leaves_the_cursor_lines_trailing_blanks_out_of_the_prompt_as_the_lead():
    text = "def f(x):\n    y = \n        \n    return y\n"
    after_equals = text.index("= ") + 2
    w = cursor_window(text, after_equals, byte_tokens, prefix_tokens=1000, suffix_tokens=1000, heal=True)
    assert w.lead == " "
    assert bytes(w.prefix_ids).decode() == "def f(x):\n    y ="  # the model spells the blank with the next word
    assert w.prefix_text == text[:after_equals] and w.line_prefix == "    y = "  # the document is unchanged
    assert bytes(w.suffix_ids).decode() == text[after_equals:]

    indented = text.index("        \n") + 8  # a new line, the cursor after its indentation
    w = cursor_window(text, indented, byte_tokens, prefix_tokens=1000, suffix_tokens=1000, heal=True)
    assert w.lead == " " * 8 and bytes(w.prefix_ids).decode() == text[: indented - 8]


def test_without_heal_or_trailing_blanks_the_lead_is_empty():
    text = "def f(x):\n    y = \n    return y\n"
    after_equals = text.index("= ") + 2
    plain = cursor_window(text, after_equals, byte_tokens, prefix_tokens=1000, suffix_tokens=1000)
    assert plain.lead == "" and bytes(plain.prefix_ids).decode() == text[:after_equals]
    word = cursor_window(text, text.index(" y\n"), byte_tokens, prefix_tokens=1000, suffix_tokens=1000, heal=True)
    assert word.lead == "" and bytes(word.prefix_ids).decode() == text[: text.index(" y\n")]


def test_budgets_are_exact_upper_bounds_and_keep_whole_lines():
    offset = SOURCE.index("line 150")
    w = cursor_window(SOURCE, offset, byte_tokens, prefix_tokens=500, suffix_tokens=100, snap_lines=1)
    assert len(w.prefix_ids) <= 500 and len(w.suffix_ids) <= 100
    assert len(w.prefix_ids) == 24 * (500 // 24)  # as many whole 24-token lines as fit
    assert w.prefix_text.startswith("line ") and w.suffix_text.endswith("\n")
    assert len(w.suffix_ids) == 96  # cursor line (24) + 3 whole lines


def test_snapping_rounds_the_start_up_to_a_chunk():
    offset = SOURCE.index("line 150")
    w = cursor_window(SOURCE, offset, byte_tokens, prefix_tokens=500, suffix_tokens=0, snap_lines=16)
    assert w.start_line % 16 == 0
    assert w.start_line >= 150 - 500 // 24


def test_typing_forward_keeps_the_prefix_ids_stable():
    """Each keystroke only appends to the prefix ids: the start line sticks via the anchor."""
    text = SOURCE
    offset = text.index("line 150")
    w = cursor_window(text, offset, byte_tokens, prefix_tokens=500, suffix_tokens=50)
    typed = "result = other_function(argument)"
    for i in range(1, len(typed) + 1):
        new_text = text[:offset] + typed[:i] + text[offset:]
        nxt = cursor_window(new_text, offset + i, byte_tokens, prefix_tokens=500, suffix_tokens=50, anchor=w.start_line)
        assert nxt.prefix_ids[: len(w.prefix_ids)] == w.prefix_ids, f"prefix moved at keystroke {i}"
        w = nxt


EVEN = "".join(f"item {i:03d} = compute({i:03d})\n" for i in range(300))  # 24 bytes on every line


def at(line: int) -> int:
    return line * 24


def _starts_typing_down(first: int, count: int) -> list[int]:
    """The window's start line at each of `count` lines typed down EVEN from line `first` (a 64-line budget)."""
    starts, anchor = [], None
    for line in range(first, first + count):
        w = cursor_window(EVEN, at(line), byte_tokens, prefix_tokens=64 * 24, suffix_tokens=0, anchor=anchor)
        starts.append(anchor := w.start_line)
    return starts


def test_typing_down_moves_the_window_start_past_the_tightest_fit():
    """A window start that typing outgrew jumps a quarter of the budget (16 lines) past the tightest fit, so the
    next jump (which re-evaluates the whole prefix) comes 32 lines later; jumping to the tightest fit, it came
    after the 16 lines of one snap."""
    starts = _starts_typing_down(100, 100)
    assert starts[0] == 48  # fresh: the tightest fit, 36, rounded up to a multiple of 16
    moves = [(line, start) for line, (before, start) in enumerate(zip(starts, starts[1:]), 101) if start != before]
    assert moves == [(113, 80), (145, 112), (177, 144)]  # every 32 lines
    for line, start in moves:
        assert start % 16 == 0 and 48 - 15 <= line - start <= 48  # the slack, 16 lines, free for typing on


def test_an_anchor_is_dropped_when_the_window_from_it_holds_under_half_the_budget():
    """After the cursor moved up, the old start fits; it is kept while its window holds half the budget, then a
    fresh start takes the whole budget again."""
    kept = cursor_window(EVEN, at(110), byte_tokens, prefix_tokens=480, suffix_tokens=0, anchor=100)
    assert kept.start_line == 100  # 10 lines = 240 tokens, half of 480
    fresh = cursor_window(EVEN, at(109), byte_tokens, prefix_tokens=480, suffix_tokens=0, anchor=100)
    assert fresh.start_line == 96 and len(fresh.prefix_ids) == 13 * 24


def test_a_cursor_jump_down_gets_a_tight_window():
    far = cursor_window(EVEN, at(180), byte_tokens, prefix_tokens=480, suffix_tokens=0, anchor=96)
    assert far.start_line == 160  # the tightest (160) snapped, not a quarter of the budget further


def test_huge_cursor_line_is_cut_on_the_left_and_right():
    text = "x = [" + "1, " * 5000 + "]\n"
    offset = len(text) // 2
    w = cursor_window(text, offset, byte_tokens, prefix_tokens=64, suffix_tokens=32)
    assert len(w.prefix_ids) == 64 and len(w.suffix_ids) == 32


def test_cursor_at_start_and_end_of_document():
    text = "a = 1\nb = 2"
    w0 = cursor_window(text, 0, byte_tokens, prefix_tokens=100, suffix_tokens=100)
    assert w0.prefix_ids == () and w0.suffix_text == text
    w1 = cursor_window(text, len(text), byte_tokens, prefix_tokens=100, suffix_tokens=100)
    assert w1.prefix_text == text and w1.suffix_ids == () and w1.line_prefix == "b = 2"
    w2 = cursor_window(text, 10_000, byte_tokens, prefix_tokens=100, suffix_tokens=100)  # clamped
    assert w2.prefix_text == text


def test_astral_and_cjk_text_split_by_code_point():
    text = "s = '😀漢字'\nt = 1\n"
    offset = text.index("漢")
    w = cursor_window(text, offset, byte_tokens, prefix_tokens=100, suffix_tokens=100)
    assert w.line_prefix == "s = '😀" and w.line_suffix == "漢字'"


def test_line_tokenizer_caches_by_text():
    calls = []

    def tok(text):
        calls.append(text)
        return byte_tokens(text)

    cached = LineTokenizer(tok, capacity=2)
    assert cached("abc\n") == tuple(b"abc\n")
    cached("abc\n")
    assert calls == ["abc\n"]
    cached("x\n"), cached("y\n"), cached("abc\n")  # evicted by capacity 2
    assert calls.count("abc\n") == 2
    cached("    ret"), cached("    ret")  # the cursor line's head: a new text per keystroke, never kept
    assert calls.count("    ret") == 2 and cached("    ret") == tuple(b"    ret")


def test_margins_complete_the_top_level_statements_the_window_cuts_through():
    text = 'def f():\n    """Doc.\n\n    More.\n    """\n    return 1\n\n\nTABLE = [\n    1,\n    2,\n]\nx = 1\n'
    start, end = text.index("    More"), text.index("    2,")
    head, tail = statement_margins(text, start, end)
    assert head == text[: start]  # back to `def f():`, so the window's closing quote closes the docstring
    assert tail == "    2,\n]\n"  # on to the closing bracket at column 0, not past `x = 1`
    assert statement_margins(text, text.index("TABLE"), text.index("x = 1")) == ("", "")


def test_margins_give_up_past_their_limit_and_reach_the_window_through_cursor_window():
    text = "data = {\n" + "".join(f"    {i}: {i},\n" for i in range(100)) + "}\n"
    start = text.index("    90:")
    assert statement_margins(text, start, len(text), limit=100) == ("", "")
    w = cursor_window(text, text.index("95:"), byte_tokens, prefix_tokens=40, suffix_tokens=1000)
    assert w.head + w.prefix_text == text[: text.index("95:")] and w.head and w.tail == ""
