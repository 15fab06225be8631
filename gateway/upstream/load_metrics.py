"""The open model servers' own load, read from their Prometheus ``/metrics``.

:class:`LoadReader` fetches every target's ``metrics_url`` each ``interval_s``
in the background (never on a request's path) and gives
:class:`~gateway.upstream.capacity.LoadBoard` what it found. The series read,
by server (recognised by the names it exports):

===========  ==============================  ===============================  ===============================================
server       running                         waiting                          KV cache in use (0..1)
===========  ==============================  ===============================  ===============================================
vLLM         ``vllm:num_requests_running``   ``vllm:num_requests_waiting``    ``vllm:kv_cache_usage_perc`` (or the older ``vllm:gpu_cache_usage_perc``)
SGLang       ``sglang:num_running_reqs``     ``sglang:num_queue_reqs``        ``sglang:token_usage``
TGI          ``tgi_batch_current_size``      ``tgi_queue_size``               (none)
===========  ==============================  ===============================  ===============================================

A series exported once per model or engine (labels) is summed (the usage
fractions: the highest is kept). Each round replaces the last reading: a read
that fails, takes longer than two intervals (at most 5 s) or finds none of
these series makes the target's server load *unknown* (never zero). Each round
also refreshes the shared in-flight counts of the targets with a
``shared_max_in_flight``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable

from gateway.targets import Target, Timeouts
from gateway.upstream.capacity import LoadBoard, ServerLoad
from gateway.upstream.http1 import Client, HTTPClientError, Request

log = logging.getLogger("gateway.upstream")

#: series name -> (server, what it measures)
SERIES: dict[str, tuple[str, str]] = {
    "vllm:num_requests_running": ("vllm", "running"),
    "vllm:num_requests_waiting": ("vllm", "waiting"),
    "vllm:kv_cache_usage_perc": ("vllm", "kv"),
    "vllm:gpu_cache_usage_perc": ("vllm", "kv"),
    "sglang:num_running_reqs": ("sglang", "running"),
    "sglang:num_queue_reqs": ("sglang", "waiting"),
    "sglang:token_usage": ("sglang", "kv"),
    "tgi_batch_current_size": ("tgi", "running"),
    "tgi_queue_size": ("tgi", "waiting"),
}
#: the most bytes of a ``/metrics`` page read (vLLM's is ~100 KB with histograms)
MAX_PAGE_BYTES = 4 * 1024 * 1024


def parse_load(page: bytes) -> ServerLoad | None:
    """The load in a Prometheus text page, or None when it has none of :data:`SERIES`.

    Only sample lines of the known series are read: ``name{labels} value [ts]``;
    comments, other series and malformed lines are skipped.
    """
    sums: dict[str, float] = {}
    server: str | None = None
    for raw in page.split(b"\n"):
        if not raw or raw[:1] == b"#":
            continue
        line = raw.decode("utf-8", "replace").strip()
        brace = line.find("{")
        space = line.find(" ")
        if space < 0:
            continue
        if 0 <= brace < space:
            name = line[:brace]
            close = line.rfind("}")
            if close < brace:
                continue
            rest = line[close + 1 :].split()
        else:
            name = line[:space]
            rest = line[space:].split()
        known = SERIES.get(name)
        if known is None or not rest:
            continue
        try:
            value = float(rest[0])
        except ValueError:
            continue
        if math.isnan(value) or math.isinf(value):
            continue
        server, what = known
        if what == "kv":
            sums[what] = max(sums.get(what, 0.0), value)
        else:
            sums[what] = sums.get(what, 0.0) + value
    if server is None:
        return None
    kv = sums.get("kv")
    return ServerLoad(
        server,
        running=sums.get("running"),
        waiting=sums.get("waiting"),
        kv_cache_usage=None if kv is None else min(1.0, max(0.0, kv)),
    )


class LoadReader:
    """Reads the servers' load in the background into a :class:`LoadBoard`."""

    def __init__(self, board: LoadBoard, *, client: Client | None = None) -> None:
        self._board = board
        self._client = client or Client(limit=8, keepalive_s=60.0)
        #: the targets whose readings are on the board (a target gone is cleared)
        self._known: set[str] = set()

    async def read(self, target: Target, timeout_s: float) -> ServerLoad | None:
        """One reading of ``target``'s ``metrics_url`` (None: it could not be read)."""
        assert target.metrics_url is not None
        timeouts = Timeouts(connect=timeout_s, first_byte=timeout_s, total=timeout_s)
        try:
            request = Request(target.metrics_url, [("accept", "text/plain")], method="GET")
            response = await self._client.fetch(request, b"", timeouts)
        except HTTPClientError as exc:
            log.debug("load of %s not read: %s", target.name, exc)
            return None
        if response.status != 200 or len(response.body) > MAX_PAGE_BYTES:
            return None
        return parse_load(response.body)

    async def read_all(self, targets: Iterable[Target], interval_s: float) -> None:
        """One round: every target with a ``metrics_url``, concurrently."""
        targets = list(targets)
        timeout_s = max(0.05, min(2 * interval_s, 5.0))
        readable = [t for t in targets if t.metrics_url]
        readings = await asyncio.gather(*(self.read(t, timeout_s) for t in readable))
        names = set()
        for target, reading in zip(readable, readings, strict=True):
            names.add(target.name)
            self._board.set_server(target.name, reading)
        for gone in self._known - names:
            self._board.set_server(gone, None)
        self._known = names
        await self._board.refresh_shared(targets)

    async def run(self, targets: Callable[[], Iterable[Target]], interval_s: float) -> None:
        """Read ``targets()`` (the policy in force) every ``interval_s`` until cancelled."""
        while True:
            try:
                await self.read_all(targets(), interval_s)
            except Exception:  # a bug here must not stop the readings for good (logged)
                log.exception("reading the targets' load failed; trying again in %g s", interval_s)
            await asyncio.sleep(interval_s)

    async def aclose(self) -> None:
        await self._client.aclose()
