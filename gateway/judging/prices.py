"""Model prices from litellm's model cost map, read without importing litellm.

Importing litellm takes seconds, and the gateway must start in well under two,
so this module only *locates* the JSON file litellm ships
(``model_prices_and_context_window_backup.json`` in its package directory,
found with :func:`importlib.util.find_spec`, which does not execute the
package) and parses it on the first lookup.

Contract:

* Prices are USD per one million tokens: the file's ``input_cost_per_token``
  and ``output_cost_per_token`` times 1e6.
* An entry without a numeric ``input_cost_per_token`` is not a price and is
  skipped; a missing output price counts as 0.
* ``context_window`` is the entry's ``max_input_tokens`` (else ``max_tokens``),
  ``None`` when neither is an integer.
* A missing or unreadable file gives an empty book, not an error: a target
  without a known price falls back to the ``price`` its policy declares.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

LITELLM_PRICES_FILE = "model_prices_and_context_window_backup.json"

#: litellm documents its schema in an entry by this name; it is not a model
_SCHEMA_ENTRY = "sample_spec"


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per one million tokens, and the model's input context window."""

    input_per_mtok: float
    output_per_mtok: float
    context_window: int | None


def litellm_prices_path() -> Path | None:
    """Where litellm's cost map is installed, or ``None`` when litellm is not."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / LITELLM_PRICES_FILE
        if candidate.is_file():
            return candidate
    return None


def _per_mtok(value: object) -> float | None:
    # bool is an int subclass; a flag is never a price
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # round away float noise: 2.5e-06 * 1e6 is 2.5000000000000004
    return round(float(value) * 1_000_000, 9)


def _context_window(entry: Mapping[str, Any]) -> int | None:
    for key in ("max_input_tokens", "max_tokens"):
        value = entry.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def parse_cost_map(raw: Mapping[str, Any]) -> dict[str, ModelPrice]:
    """Turn litellm's cost map (model name -> entry) into prices, skipping non-prices."""
    prices: dict[str, ModelPrice] = {}
    for name, entry in raw.items():
        if name == _SCHEMA_ENTRY or not isinstance(entry, Mapping):
            continue
        input_price = _per_mtok(entry.get("input_cost_per_token"))
        if input_price is None:
            continue
        output_price = _per_mtok(entry.get("output_cost_per_token"))
        prices[name] = ModelPrice(
            input_per_mtok=input_price,
            output_per_mtok=output_price if output_price is not None else 0.0,
            context_window=_context_window(entry),
        )
    return prices


class PriceBook:
    """Prices by model name, loaded from a file on first use (thread-safe).

    :meth:`lookup` tries, in order: ``"{provider}/{model}"``, ``model``, then
    ``model`` without its first ``provider/`` prefix (so
    ``"anthropic/claude-sonnet-4-5"`` finds ``"claude-sonnet-4-5"`` and
    ``"gemini/gemini-2.5-pro"`` finds its own entry first); each exactly, then
    ignoring case.
    """

    __slots__ = ("_entries", "_folded", "_lock", "_path")

    def __init__(
        self, entries: Mapping[str, ModelPrice] | None = None, *, path: Path | None = None
    ) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._entries: dict[str, ModelPrice] | None = None
        self._folded: dict[str, ModelPrice] = {}
        if entries is not None:
            self._install(dict(entries))

    @classmethod
    def from_litellm(cls) -> PriceBook:
        """The book of litellm's shipped cost map; empty when litellm or its file is missing."""
        path = litellm_prices_path()
        if path is None:
            return cls({})
        return cls(path=path)

    @classmethod
    def from_file(cls, path: Path) -> PriceBook:
        """A book read lazily from a JSON file in litellm's cost-map format."""
        return cls(path=path)

    def _install(self, entries: dict[str, ModelPrice]) -> None:
        folded: dict[str, ModelPrice] = {}
        for name, price in entries.items():
            # the first spelling wins when two names differ only by case
            folded.setdefault(name.lower(), price)
        self._folded = folded
        self._entries = entries

    def _loaded(self) -> dict[str, ModelPrice]:
        entries = self._entries
        if entries is not None:
            return entries
        with self._lock:
            if self._entries is None:
                self._install(self._read())
            assert self._entries is not None
            return self._entries

    def _read(self) -> dict[str, ModelPrice]:
        if self._path is None:
            return {}
        try:
            raw = orjson.loads(self._path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            # documented: an unreadable cost map is an empty book, and the
            # policy's declared prices apply
            return {}
        if not isinstance(raw, dict):
            return {}
        return parse_cost_map(raw)

    def __len__(self) -> int:
        return len(self._loaded())

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def lookup(self, model: str, provider: str | None = None) -> ModelPrice | None:
        """The price of ``model`` (optionally qualified by ``provider``), or ``None``."""
        entries = self._loaded()
        for name in self._candidates(model, provider):
            price = entries.get(name)
            if price is None:
                price = self._folded.get(name.lower())
            if price is not None:
                return price
        return None

    @staticmethod
    def _candidates(model: str, provider: str | None) -> Iterator[str]:
        model = model.strip()
        if provider:
            yield f"{provider.strip()}/{model}"
        yield model
        prefix, slash, rest = model.partition("/")
        if slash and prefix and rest:
            yield rest
