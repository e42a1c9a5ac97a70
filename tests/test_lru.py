"""The caches' bound (context/lru.py): by entries and by weight, oldest unused first, the newest always kept."""

from __future__ import annotations

from codegemma_lsp.context.lru import Lru


def test_entries_go_oldest_unused_first_when_over_either_bound():
    cache: Lru[str, str] = Lru(max_items=3, max_weight=10)
    for key in "abc":
        cache.put(key, key.upper(), 2)
    assert cache.get("a") == "A"  # a is now the most recent: b is the oldest unused
    cache.put("d", "D", 2)
    assert [cache.get(k) for k in "abcd"] == ["A", None, "C", "D"] and cache.weight == 6
    cache.put("e", "E", 7)  # 13 > 10: the oldest unused (a, then c) go until it fits
    assert len(cache) == 2 and cache.get("d") == "D" and cache.get("e") == "E" and cache.weight == 9
    cache.put("huge", "H", 50)  # over the bound alone: kept, being the newest
    assert len(cache) == 1 and cache.get("huge") == "H" and cache.weight == 50


def test_put_replaces_and_pop_gives_back_the_weight():
    cache: Lru[str, int] = Lru(max_items=10, max_weight=100)
    cache.put("a", 1, 30)
    cache.put("a", 2, 40)
    assert cache.get("a") == 2 and cache.weight == 40 and len(cache) == 1
    cache.pop("a")
    cache.pop("missing")
    assert cache.get("a") is None and cache.weight == 0 and len(cache) == 0


def test_without_a_weight_bound_only_the_entry_count_bounds_it():
    cache: Lru[int, int] = Lru(max_items=2)
    for key in range(3):
        cache.put(key, key)
    assert len(cache) == 2 and cache.get(0) is None and cache.get(2) == 2 and cache.weight == 0
