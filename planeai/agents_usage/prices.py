"""Prices per model and the estimated cost of tokens.

A price table maps a model name, or a glob pattern of names (``claude-sonnet-*``), to USD per
million tokens of each kind. Provider files carry one (``[prices]``), the config's
``[prices] models`` overrides it per name. The most specific entry wins: the exact name, else
the longest pattern that matches. Costs are estimates: list prices, no discounts, no batch or
long-context rates.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass

from planeai.agents_usage.usage import TOKEN_KINDS, Tokens


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_write: float
    cache_read: float

    def cost(self, t: Tokens) -> float:
        return (t.input * self.input + t.output * self.output
                + t.cache_write * self.cache_write + t.cache_read * self.cache_read) / 1e6


def parse_price(where: str, value) -> Price:
    """One ``{ input = 3.0, output = 15.0, cache_write = 3.75, cache_read = 0.3 }`` entry;
    ``cache_write`` defaults to ``input`` and ``cache_read`` to ``input`` (no cache discount
    known). Raises ValueError saying what is wrong and what is accepted."""
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a table like {{ input = 3.0, output = 15.0 }}")
    extra = set(value) - set(TOKEN_KINDS)
    if extra:
        raise ValueError(f"{where}: unknown key {sorted(extra)[0]!r}; known: "
                         + ", ".join(TOKEN_KINDS))
    for k in ("input", "output"):
        if k not in value:
            raise ValueError(f"{where} needs {k} (USD per million tokens)")
    nums = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or not 0 <= v <= 10_000:
            raise ValueError(f"{where}.{k} = {v!r}: accepted: a number of USD per million "
                             "tokens in 0..10000")
        nums[k] = float(v)
    return Price(nums["input"], nums["output"], nums.get("cache_write", nums["input"]),
                 nums.get("cache_read", nums["input"]))


def parse_table(where: str, table) -> dict[str, Price]:
    """A whole ``[prices]`` table: model name or pattern -> Price. Raises ValueError."""
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table of model = {{ input = ..., output = ... }}")
    return {str(model): parse_price(f"{where}.{model}", v) for model, v in table.items()}


def price_for(model: str, table: dict[str, Price]) -> Price | None:
    """The price of ``model``: its exact entry, else the longest pattern matching it."""
    if model in table:
        return table[model]
    best = None
    for pattern, price in table.items():
        if any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(model, pattern):
            if best is None or len(pattern) > len(best[0]):
                best = (pattern, price)
    return best[1] if best else None


def estimate(models: dict[str, Tokens], table: dict[str, Price]
             ) -> tuple[float | None, tuple[str, ...]]:
    """(cost in USD, models without a price). The cost is None when no model with tokens has
    a price; models with none are named so a partial figure is never taken for the whole."""
    total, priced, unpriced = 0.0, False, []
    for model, t in models.items():
        p = price_for(model, table)
        if p is None:
            if t.total:
                unpriced.append(model)
            continue
        total += p.cost(t)
        priced = True
    return (total if priced else (0.0 if models and not unpriced else None)), tuple(unpriced)
