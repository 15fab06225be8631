"""Model prices from litellm's model cost map, read without importing litellm.

Importing litellm takes seconds, and the gateway must start in well under two,
so this module only *locates* the JSON file litellm ships
(``model_prices_and_context_window_backup.json`` in its package directory,
found with :func:`importlib.util.find_spec`, which does not execute the
package) and parses it on the first lookup.

Contract:

* Prices are USD per one million tokens: the file's ``input_cost_per_token``
  and ``output_cost_per_token`` times 1e6; likewise ``cache_read_input_token_cost``,
  ``cache_creation_input_token_cost`` and ``output_cost_per_reasoning_token``
  when the entry has them (``None`` otherwise: such tokens cost what an
  ordinary input or output token does, as litellm counts them).
* An entry without a numeric ``input_cost_per_token`` is not a price and is
  skipped; a missing output price counts as 0.
* ``context_window`` is the entry's ``max_input_tokens`` (else ``max_tokens``),
  ``None`` when neither is an integer; ``max_output_tokens`` is the entry's
  ``max_output_tokens``.
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
    cache_read_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None
    reasoning_per_mtok: float | None = None
    max_output_tokens: int | None = None


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


def _context_window(
    entry: Mapping[str, Any], keys: tuple[str, ...] = ("max_input_tokens", "max_tokens")
) -> int | None:
    for key in keys:
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
            cache_read_per_mtok=_per_mtok(entry.get("cache_read_input_token_cost")),
            cache_write_per_mtok=_per_mtok(entry.get("cache_creation_input_token_cost")),
            reasoning_per_mtok=_per_mtok(entry.get("output_cost_per_reasoning_token")),
            max_output_tokens=_context_window(entry, ("max_output_tokens",)),
        )
    return prices


class PriceBook:
    """Prices by model name, loaded from files on first use (thread-safe).

    The files are read in order, a later one's entries replacing an earlier
    one's (litellm's map first, then the operator's ``GATEWAY_PRICES_FILE``).
    A file that cannot be read or parsed adds nothing and is named in
    :attr:`errors` (shown in ``/readyz``); it never raises.

    :meth:`lookup` tries, in order: ``"{provider}/{model}"``, ``model``, then
    ``model`` without its first ``provider/`` prefix (so
    ``"anthropic/claude-sonnet-4-5"`` finds ``"claude-sonnet-4-5"`` and
    ``"gemini/gemini-2.5-pro"`` finds its own entry first); each exactly, then
    ignoring case.
    """

    __slots__ = ("_entries", "_errors", "_folded", "_lock", "_paths")

    def __init__(
        self,
        entries: Mapping[str, ModelPrice] | None = None,
        *,
        path: Path | None = None,
        paths: tuple[Path, ...] = (),
    ) -> None:
        self._paths = ((path,) if path is not None else ()) + paths
        self._lock = threading.Lock()
        self._entries: dict[str, ModelPrice] | None = None
        self._folded: dict[str, ModelPrice] = {}
        self._errors: list[str] = []
        if entries is not None:
            self._install(dict(entries))

    @classmethod
    def from_litellm(cls, extra: Path | None = None) -> PriceBook:
        """litellm's shipped cost map (nothing when litellm or its file is
        missing), then ``extra`` (a file in the same format) over it."""
        path = litellm_prices_path()
        return cls(paths=tuple(p for p in (path, extra) if p is not None))

    @classmethod
    def from_file(cls, path: Path) -> PriceBook:
        """A book read lazily from a JSON file in litellm's cost-map format."""
        return cls(path=path)

    @property
    def errors(self) -> tuple[str, ...]:
        """What went wrong reading the files (after the first lookup)."""
        self._loaded()
        return tuple(self._errors)

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
                merged: dict[str, ModelPrice] = {}
                for path in self._paths:
                    merged.update(self._read(path))
                self._install(merged)
            assert self._entries is not None
            return self._entries

    def _read(self, path: Path) -> dict[str, ModelPrice]:
        try:
            raw = orjson.loads(path.read_bytes())
        except OSError as exc:
            # documented: an unreadable cost map adds nothing, and the
            # policy's declared prices apply
            self._errors.append(f"price file {path}: {exc.strerror or exc}")
            return {}
        except orjson.JSONDecodeError as exc:
            self._errors.append(f"price file {path} is not valid JSON: {exc}")
            return {}
        if not isinstance(raw, dict):
            self._errors.append(f"price file {path}: expected an object of model entries")
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
