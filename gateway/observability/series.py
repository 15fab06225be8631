"""Counters, gauges and histograms cheap enough to update on every request.

prometheus_client's metric classes take a lock and re-check their arguments on
every ``inc`` or ``observe``, and its histograms walk their buckets one by one:
with ~15 updates per request that is a measurable share of the gateway's own
time. The series here are plain attributes updated by the event loop's thread
(the only writer); prometheus_client still does the exposition, through
:meth:`collect`, so the text on ``/metrics`` is the same as with its classes:
counters as ``<name>_total`` and ``<name>_created``, histograms as cumulative
``_bucket`` (with ``+Inf``), ``_count``, ``_sum`` and ``_created``.

Each metric keeps one child per label tuple; callers bound their label values
(see :mod:`gateway.observability.metrics`), so the number of children is bounded too.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString


class CounterChild:
    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters can only go up")
        self.value += amount


class GaugeChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class HistogramChild:
    __slots__ = ("_bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        #: per bucket, not cumulative; the last bucket is +Inf
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, value: float) -> None:
        # the first bucket whose upper bound is >= value
        self.counts[bisect_left(self._bounds, value)] += 1
        self.sum += value


C = TypeVar("C", CounterChild, GaugeChild, HistogramChild)


class _Labelled(ABC, Generic[C]):
    """A metric family: name, help, label names, and one child per label tuple."""

    _type = ""
    #: dropped from the name given, to name the family
    _suffix = ""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._name = name.removesuffix(self._suffix) if self._suffix else name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], C] = {}
        if not self._labelnames:
            # a metric without labels has its one series from the start, at 0
            self._children[()] = self._new_child()
        if registry is not None:
            registry.register(self)

    @abstractmethod
    def _new_child(self) -> C:
        """A series at zero."""

    def labels(self, *values: str) -> C:
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self._labelnames):
                raise ValueError(
                    f"{self._name} takes labels {self._labelnames}, got {len(values)} values"
                )
            child = self._children[values] = self._new_child()
        return child

    def _only(self) -> C:
        """The single child of a metric without labels."""
        return self.labels()

    def describe(self) -> list[Metric]:
        return [Metric(self._name, self._documentation, self._type)]

    def collect(self) -> Iterator[Metric]:
        metric = Metric(self._name, self._documentation, self._type)
        # a snapshot: a scrape may run while the loop adds a child
        for values, child in list(self._children.items()):
            self._samples(metric, dict(zip(self._labelnames, values, strict=True)), child)
        yield metric

    @abstractmethod
    def _samples(self, metric: Metric, labels: dict[str, str], child: C) -> None:
        """Add ``child``'s samples, labelled ``labels``, to ``metric``."""


class Counter(_Labelled[CounterChild]):
    """Named ``x_total`` or ``x``: the family is ``x``, as in prometheus_client."""

    _type = "counter"
    _suffix = "_total"

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def _samples(self, metric: Metric, labels: dict[str, str], child: CounterChild) -> None:
        metric.add_sample(self._name + "_total", labels, child.value)
        metric.add_sample(self._name + "_created", labels, child.created)


class Gauge(_Labelled[GaugeChild]):
    _type = "gauge"

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def _samples(self, metric: Metric, labels: dict[str, str], child: GaugeChild) -> None:
        metric.add_sample(self._name, labels, child.value)

    def set(self, value: float) -> None:
        self._only().set(value)

    def inc(self, amount: float = 1.0) -> None:
        self._only().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self._only().dec(amount)


class Histogram(_Labelled[HistogramChild]):
    _type = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        registry: CollectorRegistry | None = None,
        *,
        buckets: Sequence[float],
    ) -> None:
        bounds = sorted(float(b) for b in buckets)
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self._bounds = tuple(bounds)
        # prometheus_client's own "le" spelling (untyped upstream)
        self._le = tuple(floatToGoString(b) for b in self._bounds)  # type: ignore[no-untyped-call]
        super().__init__(name, documentation, labelnames, registry)

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self._bounds)

    def _samples(self, metric: Metric, labels: dict[str, str], child: HistogramChild) -> None:
        cumulative = 0
        for le, count in zip(self._le, list(child.counts), strict=True):
            cumulative += count
            metric.add_sample(self._name + "_bucket", {**labels, "le": le}, cumulative)
        metric.add_sample(self._name + "_count", labels, cumulative)
        metric.add_sample(self._name + "_sum", labels, child.sum)
        metric.add_sample(self._name + "_created", labels, child.created)
