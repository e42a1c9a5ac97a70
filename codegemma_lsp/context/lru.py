"""A least-recently-used cache bounded by entries and by weight (characters of source text): a server that runs
for days in a monorepo must not keep every file it ever read. Not locked: its owner's lock guards it."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Lru(Generic[K, V]):
    """Entries beyond `max_items`, or beyond `max_weight` in total, go oldest first (the newest always stays)."""

    def __init__(self, max_items: int, max_weight: float = float("inf")) -> None:
        self.max_items = max_items
        self.max_weight = max_weight
        self.weight = 0
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: K, value: V, weight: int = 0) -> None:
        self.pop(key)
        self._entries[key] = (value, weight)
        self.weight += weight
        while len(self._entries) > 1 and (len(self._entries) > self.max_items or self.weight > self.max_weight):
            _, (_, old) = self._entries.popitem(last=False)
            self.weight -= old

    def pop(self, key: K) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.weight -= entry[1]
