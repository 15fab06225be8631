"""gateway.observability.series exposes exactly what prometheus_client's own classes would.

The same operations are applied to a gateway series and to the
prometheus_client metric it replaces, each on its own registry; the two
``/metrics`` texts must be equal but for the ``_created`` timestamps.
"""

from __future__ import annotations

import re

import prometheus_client as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from gateway.observability import series

BUCKETS = (0.00005, 0.001, 0.25, 1.0, 60.0)
LABEL = st.sampled_from(["a", "b", 'q"uote', "back\\slash", "new\nline", "é"])
AMOUNT = st.floats(min_value=0, max_value=1e9, allow_nan=False)
OBSERVED = st.one_of(
    st.sampled_from([0.0, 0.00005, 0.001, 0.25, 1.0, 60.0, 61.0]),
    st.floats(min_value=0, max_value=1e4, allow_nan=False),
)
_CREATED = re.compile(r"^\S+_created(\{.*\})? .*$", re.MULTILINE)


def _text(registry: CollectorRegistry) -> str:
    return _CREATED.sub("<created>", generate_latest(registry).decode())


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.tuples(LABEL, LABEL, AMOUNT), max_size=20),
    observations=st.lists(st.tuples(LABEL, OBSERVED), max_size=30),
    gauges=st.lists(st.tuples(LABEL, st.sampled_from(["set", "inc", "dec"]), AMOUNT), max_size=10),
)
def test_exposition_matches_prometheus_client(
    counts: list[tuple[str, str, float]],
    observations: list[tuple[str, float]],
    gauges: list[tuple[str, str, float]],
) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    counter = series.Counter("x_requests_total", "Requests.", ["a", "b"], registry=ours)
    pc_counter = pc.Counter("x_requests_total", "Requests.", ["a", "b"], registry=theirs)
    histogram = series.Histogram("x_seconds", "Time.", ["e"], registry=ours, buckets=BUCKETS)
    pc_histogram = pc.Histogram("x_seconds", "Time.", ["e"], registry=theirs, buckets=BUCKETS)
    gauge = series.Gauge("x_level", "Level.", ["t"], registry=ours)
    pc_gauge = pc.Gauge("x_level", "Level.", ["t"], registry=theirs)
    plain = series.Gauge("x_open", "Open now.", registry=ours)
    pc_plain = pc.Gauge("x_open", "Open now.", registry=theirs)
    for a, b, amount in counts:
        counter.labels(a, b).inc(amount)
        pc_counter.labels(a, b).inc(amount)
    for e, value in observations:
        histogram.labels(e).observe(value)
        pc_histogram.labels(e).observe(value)
    for t, op, amount in gauges:
        getattr(gauge.labels(t), op)(amount)
        getattr(pc_gauge.labels(t), op)(amount)
        getattr(plain, op)(amount)
        getattr(pc_plain, op)(amount)
    assert _text(ours) == _text(theirs)


def test_families_are_listed_before_any_sample() -> None:
    registry = CollectorRegistry()
    series.Counter("y_total", "Y.", ["a"], registry=registry)
    series.Histogram("y_seconds", "Y time.", ["a"], registry=registry, buckets=(1.0,))
    assert [(m.name, m.type, m.samples) for m in registry.collect()] == [
        ("y", "counter", []),
        ("y_seconds", "histogram", []),
    ]


def test_wrong_label_count_and_negative_increment_are_refused() -> None:
    counter = series.Counter("z_total", "Z.", ["a", "b"])
    with pytest.raises(ValueError, match="takes labels"):
        counter.labels("only-one")
    with pytest.raises(ValueError, match="only go up"):
        counter.labels("a", "b").inc(-1)


def test_names_clash_like_prometheus_client() -> None:
    registry = CollectorRegistry()
    series.Counter("dup_total", "D.", registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        series.Counter("dup_total", "D.", registry=registry)
