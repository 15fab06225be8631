"""``targets:`` entries compiled into :class:`gateway.targets.Target`.

Contract:

* ``kind`` and ``model`` are required (``model`` defaults to the target's name
  for ``provider: simulated``); ``provider`` defaults to ``openai`` (any
  OpenAI-compatible server), which needs ``base_url``; ``litellm`` needs
  ``litellm_provider``. A ``base_url`` is an ``http://`` or ``https://`` URL with a host.
* ``max_sensitivity`` defaults to ``restricted`` for open targets and
  ``internal`` for proprietary ones.
* ``api_key`` may name an unset variable: for a proprietary target an empty
  key makes the target *unavailable* (``unavailable_reason`` names the
  variable) instead of refusing the policy; an open target with an empty
  ``${VAR:-}`` key simply sends none.
* Prices: the declared ``price`` wins (``input_per_mtok``, ``output_per_mtok``
  and optionally ``cache_read_per_mtok``, ``cache_write_per_mtok``,
  ``reasoning_per_mtok``); else a proprietary target's model is looked up in
  the price book (litellm's cost map); else 0, with a warning for proprietary
  targets. Open targets cost 0 unless they declare a price. The target's
  ``price_source`` says which applied.
* ``max_output_tokens`` (declared, else the price book's) bounds what a
  request without ``max_tokens`` may cost, and so what it reserves.
* ``timeouts``, ``retry`` and ``circuit`` fill unset fields from ``defaults:``.
* ``capacity`` (``max_in_flight``, ``shared_max_in_flight``, ``max_queue``,
  ``max_wait_ms``): a limit that interpolates to the empty string
  (``${OPEN_MODEL_MAX_IN_FLIGHT:-}`` unset) means *no limit*; a capacity with
  no limit at all is no capacity (nothing is counted per request).
  ``max_queue`` 0 or ``max_wait_ms`` 0: nothing waits (a full target is
  passed over, or the request refused at once).
* ``metrics_url``: the server's Prometheus ``/metrics``, read in the
  background for its own load; empty means none.
* ``responses`` (``native`` or ``translate``): whether a ``/v1/responses``
  request routed here is forwarded to ``{base_url}/responses`` as a Responses
  body or translated to chat completions and back. Only ``provider: openai``
  targets can be native; the default is ``native`` for proprietary ones
  (OpenAI's API speaks it) and ``translate`` for open ones (vLLM does, when
  its operator says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import urlsplit

from gateway.judging.prices import ModelPrice, PriceBook
from gateway.levels import Level
from gateway.policy.read import Reader
from gateway.policy.source import Node
from gateway.targets import (
    Capacity,
    CircuitPolicy,
    Kind,
    Prices,
    PriceSource,
    ProviderType,
    RetryPolicy,
    SimulatedKnobs,
    Target,
    Timeouts,
)

TARGET_KEYS = (
    "kind",
    "provider",
    "litellm_provider",
    "base_url",
    "api_key",
    "model",
    "price",
    "context_window",
    "max_output_tokens",
    "max_sensitivity",
    "timeouts",
    "retry",
    "circuit",
    "weight",
    "headers",
    "simulated",
    "responses",
    "description",
    "capacity",
    "metrics_url",
)
CAPACITY_KEYS = ("max_in_flight", "shared_max_in_flight", "max_queue", "max_wait_ms")
#: how a target takes a Responses request: forwarded as it is, or translated to chat
RESPONSES_MODES = ("native", "translate")


@dataclass(frozen=True, slots=True)
class TargetDefaults:
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()
    circuit: CircuitPolicy = CircuitPolicy()


def read_knobs(reader: Reader, node: Node, what: str, base: Any) -> Any:
    """Override fields of the frozen dataclass ``base`` from a mapping node."""
    names = [f.name for f in fields(base)]
    entries = reader.mapping(node, what, names)
    if entries is None:
        return base
    changes: dict[str, Any] = {}
    for name, value in entries.items():
        current = getattr(base, name)
        label = f"{what}.{name}"
        parsed: Any
        if name in ("error_status", "fail_after_chunks"):
            parsed = None if value.value is None else reader.integer(value, label, minimum=0)
        elif name == "error_rate":
            parsed = reader.number(value, label, minimum=0.0, maximum=1.0)
        elif isinstance(current, bool):
            parsed = reader.boolean(value, label)
        elif isinstance(current, int):
            parsed = reader.integer(value, label, minimum=1)
        else:
            parsed = reader.number(value, label, minimum=0.0)
        if parsed is not None or value.value is None:
            changes[name] = parsed
    return replace(base, **changes)


def read_defaults(reader: Reader, entries: Mapping[str, Node]) -> TargetDefaults:
    out = TargetDefaults()
    if "timeouts" in entries:
        out = replace(
            out, timeouts=read_knobs(reader, entries["timeouts"], "defaults.timeouts", out.timeouts)
        )
    if "retry" in entries:
        out = replace(out, retry=read_knobs(reader, entries["retry"], "defaults.retry", out.retry))
    if "circuit" in entries:
        out = replace(
            out, circuit=read_knobs(reader, entries["circuit"], "defaults.circuit", out.circuit)
        )
    return out


def read_target(
    reader: Reader, name: str, node: Node, defaults: TargetDefaults, prices: PriceBook | None
) -> Target | None:
    what = f"target '{name}'"
    entries = reader.mapping(node, what, TARGET_KEYS, required=("kind",))
    if entries is None:
        return None
    before = len(reader.problems)
    kind_name = (
        reader.choice(entries["kind"], f"{what}: kind", [k.value for k in Kind])
        if "kind" in entries
        else None
    )
    provider_name = (
        reader.choice(entries["provider"], f"{what}: provider", [p.value for p in ProviderType])
        if "provider" in entries
        else ProviderType.OPENAI_COMPATIBLE.value
    )
    if kind_name is None or provider_name is None:
        return None
    kind, provider = Kind(kind_name), ProviderType(provider_name)

    def text(key: str) -> str | None:
        return reader.string(entries[key], f"{what}: {key}") if key in entries else None

    model = text("model")
    if model is None and "model" not in entries:
        if provider is ProviderType.SIMULATED:
            model = name
        else:
            reader.error(node, f"{what} needs 'model'", "add model: <the upstream model name>")
    base_url = text("base_url")
    if base_url == "" and provider is ProviderType.LITELLM:
        base_url = None  # litellm's provider knows its own API's URL
    if base_url is not None and _bad_url(base_url):
        reader.error(
            entries["base_url"],
            f"{what}: base_url {base_url!r} is not an http(s) URL",
            "write the scheme and host, e.g. http://localhost:8000/v1 or https://api.openai.com/v1",
        )
    if provider is ProviderType.OPENAI_COMPATIBLE and "base_url" not in entries:
        reader.error(
            node,
            f"{what} (provider openai) needs 'base_url'",
            "add base_url: e.g. http://localhost:8000/v1",
        )
    litellm_provider = text("litellm_provider")
    if provider is ProviderType.LITELLM and "litellm_provider" not in entries:
        reader.error(
            node,
            f"{what} (provider litellm) needs 'litellm_provider'",
            "add litellm_provider: e.g. anthropic, gemini, mistral",
        )
    if provider is not ProviderType.SIMULATED and "simulated" in entries:
        reader.error(
            entries["simulated"],
            f"{what}: 'simulated' only applies to provider: simulated",
            "remove it, or set provider: simulated",
        )

    api_key, unavailable = _api_key(reader, what, entries.get("api_key"), kind)
    level = (
        reader.level(entries["max_sensitivity"], f"{what}: max_sensitivity")
        if "max_sensitivity" in entries
        else (Level.RESTRICTED if kind is Kind.OPEN else Level.INTERNAL)
    )
    weight = (
        reader.number(entries["weight"], f"{what}: weight", minimum=0.0, exclusive_minimum=True)
        if "weight" in entries
        else 1.0
    )
    context_window = (
        reader.integer(entries["context_window"], f"{what}: context_window", minimum=1)
        if "context_window" in entries
        else None
    )
    max_output = (
        reader.integer(entries["max_output_tokens"], f"{what}: max_output_tokens", minimum=1)
        if "max_output_tokens" in entries
        else None
    )
    headers = _headers(reader, what, entries.get("headers"))
    price = (
        read_knobs(reader, entries["price"], f"{what}: price", Prices())
        if "price" in entries
        else None
    )
    timeouts = (
        read_knobs(reader, entries["timeouts"], f"{what}: timeouts", defaults.timeouts)
        if "timeouts" in entries
        else defaults.timeouts
    )
    retry = (
        read_knobs(reader, entries["retry"], f"{what}: retry", defaults.retry)
        if "retry" in entries
        else defaults.retry
    )
    circuit = (
        read_knobs(reader, entries["circuit"], f"{what}: circuit", defaults.circuit)
        if "circuit" in entries
        else defaults.circuit
    )
    simulated = (
        read_knobs(reader, entries["simulated"], f"{what}: simulated", SimulatedKnobs())
        if "simulated" in entries
        else SimulatedKnobs()
    )
    if "description" in entries:
        text("description")
    capacity = _capacity(reader, what, entries["capacity"]) if "capacity" in entries else None
    metrics_url = None
    if "metrics_url" in entries:
        metrics_url = reader.string(entries["metrics_url"], f"{what}: metrics_url") or None
        if metrics_url is not None and _bad_url(metrics_url):
            reader.error(
                entries["metrics_url"],
                f"{what}: metrics_url {metrics_url!r} is not an http(s) URL",
                "write the server's metrics address, e.g. http://localhost:8000/metrics",
            )
    responses_native = _responses_mode(reader, what, entries.get("responses"), kind, provider)

    if len(reader.problems) > before and any(
        p.severity.value == "error" for p in reader.problems[before:]
    ):
        return None
    assert model is not None and level is not None and weight is not None
    source = PriceSource.DECLARED
    if price is None:
        price, source, found = _price(
            reader, node, what, kind, provider, model, litellm_provider, prices
        )
        if found is not None:
            context_window = context_window or found.context_window
            max_output = max_output or found.max_output_tokens
    elif prices is not None and kind is Kind.PROPRIETARY and max_output is None:
        found = prices.lookup(model, litellm_provider)
        max_output = found.max_output_tokens if found is not None else None
    return Target(
        name=name,
        kind=kind,
        provider=provider,
        model=model,
        max_sensitivity=level,
        base_url=base_url,
        api_key=api_key,
        litellm_provider=litellm_provider,
        prices=price,
        price_source=source,
        context_window=context_window,
        max_output_tokens=max_output,
        timeouts=timeouts,
        retry=retry,
        circuit=circuit,
        simulated=simulated,
        headers=headers,
        unavailable_reason=unavailable,
        weight=weight,
        capacity=capacity,
        metrics_url=metrics_url,
        responses_native=responses_native,
    )


def _capacity(reader: Reader, what: str, node: Node) -> Capacity | None:
    """``capacity:``; an empty limit (an unset ``${VAR:-}``) is no limit."""
    label = f"{what}: capacity"
    entries = reader.mapping(node, label, CAPACITY_KEYS)
    if entries is None:
        return None

    def limit(key: str, minimum: int) -> int | None:
        item = entries.get(key)
        if item is None or item.value is None or item.value == "":
            return None
        return reader.integer(item, f"{label}.{key}", minimum=minimum)

    per_replica = limit("max_in_flight", 1)
    shared = limit("shared_max_in_flight", 1)
    queue = limit("max_queue", 0) or 0
    wait_node = entries.get("max_wait_ms")
    wait = 0.0
    if wait_node is not None and wait_node.value not in (None, ""):
        wait = reader.number(wait_node, f"{label}.max_wait_ms", minimum=0.0) or 0.0
    if per_replica is None and shared is None:
        return None
    return Capacity(per_replica, shared, queue, wait)


def _responses_mode(
    reader: Reader, what: str, node: Node | None, kind: Kind, provider: ProviderType
) -> bool:
    if node is None:
        return provider is ProviderType.OPENAI_COMPATIBLE and kind is Kind.PROPRIETARY
    mode = reader.choice(node, f"{what}: responses", list(RESPONSES_MODES))
    if mode == "native" and provider is not ProviderType.OPENAI_COMPATIBLE:
        reader.error(
            node,
            f"{what}: responses: native needs provider: openai (an OpenAI-compatible server)",
            "remove it, or write responses: translate",
        )
        return False
    return mode == "native"


def _bad_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme not in ("http", "https") or not parts.hostname


def _api_key(
    reader: Reader, what: str, node: Node | None, kind: Kind
) -> tuple[str | None, str | None]:
    if node is None:
        return None, None
    key = reader.string(node, f"{what}: api_key", allow_unset_env=True)
    if key:
        return key, None
    if node.missing or (kind is Kind.PROPRIETARY and node.env_names):
        var = (node.missing or node.env_names)[0]
        return None, f"{var} is not set"
    if kind is Kind.PROPRIETARY and key == "":
        return None, "its api_key is empty"
    return None, None


def _headers(reader: Reader, what: str, node: Node | None) -> tuple[tuple[str, str], ...]:
    if node is None:
        return ()
    entries = reader.named_mapping(node, f"{what}: headers")
    out = []
    for header, value in (entries or {}).items():
        text = reader.string(value, f"{what}: header '{header}'")
        if text is not None:
            out.append((header.lower(), text))
    return tuple(out)


def _price(
    reader: Reader,
    node: Node,
    what: str,
    kind: Kind,
    provider: ProviderType,
    model: str,
    litellm_provider: str | None,
    book: PriceBook | None,
) -> tuple[Prices, PriceSource, ModelPrice | None]:
    if kind is Kind.OPEN or provider is ProviderType.SIMULATED:
        return Prices(), PriceSource.FREE, None
    found = book.lookup(model, litellm_provider) if book is not None else None
    if found is not None:
        price = Prices(
            found.input_per_mtok,
            found.output_per_mtok,
            cache_read_per_mtok=found.cache_read_per_mtok,
            cache_write_per_mtok=found.cache_write_per_mtok,
            reasoning_per_mtok=found.reasoning_per_mtok,
        )
        return price, PriceSource.LITELLM, found
    reader.warn(
        node,
        f"{what}: no known price for model '{model}'; its cost counts as 0",
        "add price: {input_per_mtok: ..., output_per_mtok: ...}",
    )
    return Prices(), PriceSource.UNKNOWN, None
