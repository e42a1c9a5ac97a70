"""Typed-ahead: characters typed that match the shown ghost text are answered from the cache, undo too."""

import time

from codegemma_lsp.typeahead import TypeAheadCache

URI = "file:///p/a.py"
DOC = "def area(r):\n    return \n\nprint(area(2))\n"
CURSOR = DOC.index("return ") + len("return ")


def typed(n: int, completion: str = "3.14159 * r * r") -> tuple[str, int]:
    return DOC[:CURSOR] + completion[:n] + DOC[CURSOR:], CURSOR + n


def test_typing_the_suggestion_hits_with_the_rest():
    cache = TypeAheadCache()
    cache.remember(URI, DOC, CURSOR, "3.14159 * r * r")
    for n in range(1, len("3.14159 * r * r")):
        text, offset = typed(n)
        assert cache.lookup(URI, text, offset) == ("3.14159 * r * r"[n:], 0)
    assert cache.hits == len("3.14159 * r * r") - 1


def test_diverging_typing_misses_and_undo_hits():
    cache = TypeAheadCache()
    cache.remember(URI, DOC, CURSOR, "3.14159 * r * r")
    text, offset = typed(3, "3.2")  # the user typed something else
    assert cache.lookup(URI, text, offset) is None
    assert cache.lookup(URI, DOC, CURSOR) == ("3.14159 * r * r", 0)  # undo back to where it was shown


def test_a_change_after_the_cursor_or_another_document_misses():
    cache = TypeAheadCache()
    cache.remember(URI, DOC, CURSOR, "r * r", replace=0)
    changed = DOC[:CURSOR] + DOC[CURSOR:].replace("area(2)", "area(3)")
    assert cache.lookup(URI, changed, CURSOR) is None
    assert cache.lookup("file:///p/b.py", DOC, CURSOR) is None


def test_lru_bound_and_speed():
    cache = TypeAheadCache(per_document=4)
    for i in range(10):
        cache.remember(URI, DOC + f"# {i}\n", CURSOR, f"value_{i}")
    assert cache.lookup(URI, DOC + "# 0\n", CURSOR) is None  # evicted
    big = "x = 1\n" * 200_000
    cache.remember(URI, big, len(big) // 2, "y = 2")
    started = time.perf_counter()
    for _ in range(100):
        cache.lookup(URI, big, len(big) // 2 + 0)
    assert (time.perf_counter() - started) / 100 < 0.005


def test_an_empty_answer_is_kept_for_its_own_state_only():
    cache = TypeAheadCache()
    cache.remember(URI, DOC, CURSOR, "")
    assert cache.known(URI, DOC, CURSOR)
    assert cache.lookup(URI, DOC, CURSOR) == ("", 0)
    text, offset = typed(1, "r")
    assert cache.lookup(URI, text, offset) is None
