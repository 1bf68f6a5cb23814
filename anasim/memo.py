"""A bounded cache keyed by an object's identity: what a Monte Carlo worker makes once per plan.

Where it sits: the foundation layer. A worker runs every realization on the same plan's circuit
objects, so what it derives from one (the runner's rewritten parts, a variation's selection, the
lane's map, a deck template) is made once and found again by ``id``. Each entry holds its object,
so the id is not reused while it is cached; the oldest entries go first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable


class ByIdentity:
    """Values made from objects, at most ``keep`` of them, made once per (object, extra key)."""

    def __init__(self, keep: int):
        self.keep = keep
        self._items: dict[tuple, tuple] = {}
        # held while a value is made: the threads of a rerun batch ask at once and would each make it
        self._lock = threading.Lock()

    def get(self, obj, make: Callable[[], object], extra: Hashable = ()):
        key = (id(obj), extra)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] is obj:
                return hit[1]
            value = make()
            self._items[key] = (obj, value)
            while len(self._items) > self.keep:
                del self._items[next(iter(self._items))]
            return value
