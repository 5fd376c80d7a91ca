"""Bookkeeping every simulated token endpoint shares: issued tokens are remembered in insertion
order and the oldest is forgotten first, so a long demo or a token-minting loop never grows the
simulator's memory without bound."""

from __future__ import annotations

from typing import TypeVar

MAX_TOKENS = 10_000

V = TypeVar("V")


def remember(store: dict[str, V], key: str, value: V) -> None:
    while len(store) >= MAX_TOKENS:
        del store[next(iter(store))]
    store[key] = value
