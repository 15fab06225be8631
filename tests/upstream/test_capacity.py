"""Target capacity: slots, the bounded queue, shared slots across replicas, the
load snapshot the policy reads, and the router's spill, against real local
OpenAI-compatible servers (one of them with vLLM's concurrency and /metrics)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace

import pytest

from gateway.endpoints import Endpoint
from gateway.errors import CapacityExhausted
from gateway.levels import Level
from gateway.observability.metrics import Metrics
from gateway.observability.record import Exchange, finish
from gateway.state.factory import build_state, memory_state
from gateway.targets import Capacity, Kind, ProviderType, Target
from gateway.upstream.capacity import LoadBoard, shared_scope
from gateway.upstream.load_metrics import LoadReader, parse_load
from gateway.upstream.registry import Providers
from gateway.upstream.router import Router, hold_capacity
from tests.servers import RedisServer
from tests.upstream_server import Upstream, free_port

BODY = {"model": "x", "messages": [{"role": "user", "content": "hello"}]}


def target(name: str, url: str = "http://127.0.0.1:9/v1", **capacity: float) -> Target:
    kind = Kind.OPEN if name.startswith("local") else Kind.PROPRIETARY
    return Target(
        name=name,
        kind=kind,
        provider=ProviderType.OPENAI_COMPATIBLE,
        model="echo",
        max_sensitivity=Level.RESTRICTED if kind is Kind.OPEN else Level.INTERNAL,
        base_url=url,
        capacity=Capacity(**capacity) if capacity else None,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Upstream, Upstream]]:
    vllm = Upstream(max_concurrency=2, work_ms=150).start()
    cloud = Upstream().start()
    yield vllm, cloud
    vllm.stop()
    cloud.stop()


# --- slots and the queue ------------------------------------------------------------


async def test_slots_up_to_the_limit_then_refused_and_the_snapshot_follows() -> None:
    board = LoadBoard(Metrics())
    local = target("local", max_in_flight=2)
    first = await board.acquire(local, may_wait=False)
    assert board.current["local"].in_flight == 1
    assert board.current["local"].utilisation == 0.5
    assert not board.current["local"].saturated
    second = await board.acquire(local, may_wait=False)
    snapshot = board.current
    assert snapshot["local"].saturated and snapshot["local"].utilisation == 1.0
    with pytest.raises(CapacityExhausted) as refused:
        await board.acquire(local, may_wait=False)
    assert refused.value.http_status == 429 and refused.value.headers["retry-after"] == "1"
    assert "local is at capacity" in refused.value.message
    first()
    first()  # a second call gives nothing back twice
    assert board.current["local"].in_flight == 1
    # the snapshot a request took is never changed under it
    assert snapshot["local"].in_flight == 2
    second()
    assert board.current["local"].in_flight == 0


async def test_the_queue_is_fifo_and_a_freed_slot_goes_to_the_oldest_waiter() -> None:
    board = LoadBoard(Metrics())
    local = target("local", max_in_flight=1, max_queue=2, max_wait_ms=2000)
    holder = await board.acquire(local, may_wait=True)
    order: list[str] = []

    async def wait(name: str) -> None:
        release = await board.acquire(local, may_wait=True)
        order.append(name)
        await asyncio.sleep(0.01)
        release()

    b = asyncio.create_task(wait("b"))
    await asyncio.sleep(0)
    c = asyncio.create_task(wait("c"))
    await asyncio.sleep(0.01)
    assert board.current["local"].queue_depth == 2
    with pytest.raises(CapacityExhausted, match="queue is full"):
        await board.acquire(local, may_wait=True)
    # a newcomer does not jump the queue even when a slot is free for an instant
    holder()
    await asyncio.gather(b, c)
    assert order == ["b", "c"]
    assert board.current["local"].in_flight == 0
    assert board.current["local"].queue_depth == 0
    assert board.current["local"].queue_wait_ms is not None


async def test_a_wait_that_runs_out_is_a_429_with_retry_after() -> None:
    board = LoadBoard(Metrics())
    local = target("local", max_in_flight=1, max_queue=4, max_wait_ms=1500)
    await board.acquire(local, may_wait=True)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(CapacityExhausted, match="1500 ms") as refused:
        await board.acquire(local, may_wait=True)
    assert 1.4 <= loop.time() - started < 2.5
    assert refused.value.headers["retry-after"] == "2"
    assert board.current["local"].queue_depth == 0


async def test_a_cancelled_waiter_leaves_no_slot_behind() -> None:
    board = LoadBoard(Metrics())
    local = target("local", max_in_flight=1, max_queue=4, max_wait_ms=5000)
    holder = await board.acquire(local, may_wait=True)
    waiter = asyncio.create_task(board.acquire(local, may_wait=True))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    holder()
    assert board.current["local"].in_flight == 0
    again = await board.acquire(local, may_wait=False)
    again()


async def test_a_raised_limit_on_reload_lets_waiters_in() -> None:
    board = LoadBoard(Metrics())
    local = target("local", max_in_flight=1, max_queue=4, max_wait_ms=5000)
    await board.acquire(local, may_wait=True)
    waiter = asyncio.create_task(board.acquire(local, may_wait=True))
    await asyncio.sleep(0.01)
    board.slots(replace(local, capacity=Capacity(2, None, 4, 5000)))
    release = await asyncio.wait_for(waiter, 1)
    assert board.current["local"].in_flight == 2
    release()


# --- shared slots across replicas ------------------------------------------------------


async def _two_replicas_share(first: LoadBoard, second: LoadBoard) -> None:
    local = target("local", max_in_flight=5, shared_max_in_flight=3, max_queue=4, max_wait_ms=300)
    held = [await first.acquire(local, may_wait=False) for _ in range(2)]
    held.append(await second.acquire(local, may_wait=False))
    # the third shared slot is taken: neither replica admits a fourth
    with pytest.raises(CapacityExhausted):
        await second.acquire(local, may_wait=False)
    with pytest.raises(CapacityExhausted):
        await first.acquire(local, may_wait=True)  # polled for 300 ms, in vain
    await first.refresh_shared([local])
    assert first.current["local"].shared_in_flight == 3
    assert first.current["local"].saturated
    # a slot freed at one replica is taken by a request waiting at the other
    waiting = asyncio.create_task(second.acquire(local, may_wait=True))
    await asyncio.sleep(0.05)
    held.pop(0)()
    held.append(await asyncio.wait_for(waiting, 1))
    for release in held:
        release()
    await first.aclose()
    await second.aclose()
    await first.refresh_shared([local])
    assert first.current["local"].shared_in_flight == 0


async def test_shared_slots_in_one_state_store() -> None:
    state = memory_state()
    await _two_replicas_share(
        LoadBoard(Metrics(), state.limiter), LoadBoard(Metrics(), state.limiter)
    )


async def test_shared_slots_across_replicas_through_real_redis(redis_server: RedisServer) -> None:
    one = await build_state(redis_server.url, timeout_s=1.0)
    two = await build_state(redis_server.url, timeout_s=1.0)
    await one.limiter.close_stream(shared_scope("local"))  # nothing left from another test
    try:
        await _two_replicas_share(
            LoadBoard(Metrics(), one.limiter), LoadBoard(Metrics(), two.limiter)
        )
    finally:
        await one.aclose()
        await two.aclose()


async def test_redis_down_keeps_the_per_replica_limit() -> None:
    port = free_port()
    state = await build_state(f"redis://127.0.0.1:{port}/0", timeout_s=0.05)
    metrics = Metrics()
    board = LoadBoard(metrics, state.limiter)
    local = target("local", max_in_flight=1, shared_max_in_flight=10)
    try:
        release = await board.acquire(local, may_wait=False)
        with pytest.raises(CapacityExhausted):
            await board.acquire(local, may_wait=False)
        release()
        await board.aclose()
        await board.refresh_shared([local])
        assert board.current["local"].shared_in_flight is None  # unknown, not zero
        assert metrics.state_errors.labels("capacity").value >= 2
    finally:
        await state.aclose()


# --- the servers' own load ---------------------------------------------------------------

VLLM_PAGE = b"""# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 12.0
vllm:num_requests_running{engine="1",model_name="m"} 4.0
vllm:num_requests_waiting{engine="0",model_name="m"} 3.0
vllm:gpu_cache_usage_perc{engine="0",model_name="m"} 0.42
vllm:gpu_cache_usage_perc{engine="1",model_name="m"} 0.61
vllm:time_to_first_token_seconds_bucket{le="0.001",model_name="m"} 0.0
"""
SGLANG_PAGE = b"""# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{model_name="qwen",tp_rank="0"} 7.0
sglang:num_queue_reqs{model_name="qwen",tp_rank="0"} 0.0
sglang:token_usage{model_name="qwen",tp_rank="0"} 0.25
"""
TGI_PAGE = b"""# TYPE tgi_queue_size gauge
tgi_queue_size 5
tgi_batch_current_size 32
tgi_request_count 100
"""


def test_vllm_sglang_and_tgi_pages() -> None:
    vllm = parse_load(VLLM_PAGE)
    assert vllm is not None
    assert (vllm.server, vllm.running, vllm.waiting, vllm.kv_cache_usage) == ("vllm", 16, 3, 0.61)
    sglang = parse_load(SGLANG_PAGE)
    assert sglang is not None
    assert (sglang.server, sglang.running, sglang.waiting) == ("sglang", 7, 0)
    assert sglang.kv_cache_usage == 0.25
    tgi = parse_load(TGI_PAGE)
    assert tgi is not None
    assert (tgi.server, tgi.running, tgi.waiting, tgi.kv_cache_usage) == ("tgi", 32, 5, None)


@pytest.mark.parametrize(
    "page",
    [
        b"",
        b"# HELP x\nprocess_cpu_seconds_total 3.2\n",
        b"vllm:num_requests_running{broken 3\nvllm:num_requests_waiting NaN\n",
        b"vllm:num_requests_running\n",
        'vllm:num_requests_running{a="\xff"} many\n'.encode(),
    ],
)
def test_pages_without_a_usable_reading_are_unknown(page: bytes) -> None:
    assert parse_load(page) is None


async def test_the_reader_fills_the_board_and_a_failed_read_is_unknown(
    servers: tuple[Upstream, Upstream],
) -> None:
    vllm, _ = servers
    board = LoadBoard(Metrics())
    reader = LoadReader(board)
    local = replace(
        target("local", vllm.url), metrics_url=vllm.url.removesuffix("/v1") + "/metrics"
    )
    providers = Providers()
    router = Router(providers, Metrics(), board=board)
    try:
        # three requests at a server with room for two: one of them waits there
        calls = [
            asyncio.create_task(
                router.run(Endpoint.CHAT, BODY, [local], request_id=f"r{i}", stream=False)
            )
            for i in range(3)
        ]
        await asyncio.sleep(0.08)
        await reader.read_all([local], 1.0)
        load = board.current["local"]
        assert (load.server, load.server_running, load.server_waiting) == ("vllm", 2, 1)
        assert load.kv_cache_usage == 1.0 and load.utilisation == 1.0
        assert load.saturated and load.in_flight is None  # no capacity declared: not counted
        await asyncio.gather(*calls)
        await reader.read_all(
            [replace(local, metrics_url=f"http://127.0.0.1:{free_port()}/metrics")], 1.0
        )
        # a server that cannot be read: its load is unknown (missing), never zero
        assert "local" not in board.current
        await reader.read_all([local], 1.0)
        assert board.current["local"].server_running == 0
        await reader.read_all([], 1.0)  # a target gone from the policy
        assert "local" not in board.current
    finally:
        await reader.aclose()
        await providers.aclose()


# --- the router ---------------------------------------------------------------------------


async def test_spill_passes_a_full_target_at_once_and_says_so(
    servers: tuple[Upstream, Upstream],
) -> None:
    vllm, cloud = servers
    metrics = Metrics()
    metrics.bind_policy(aliases=[], rules=[], targets=["local", "cloud"], entities=[], tasks=[])
    board = LoadBoard(metrics)
    local = target("local", vllm.url, max_in_flight=2, max_queue=8, max_wait_ms=3000)
    cloud_target = target("cloud", cloud.url)
    providers = Providers()
    router = Router(providers, metrics, board=board)
    try:
        runs = [
            router.run(
                Endpoint.CHAT,
                BODY,
                [local, cloud_target],
                request_id=f"s{i}",
                stream=False,
                spill=True,
            )
            for i in range(5)
        ]
        loop = asyncio.get_running_loop()
        started = loop.time()
        served = await asyncio.gather(*runs)
        elapsed = loop.time() - started
        names = sorted(s.target.name for s in served)
        assert names == ["cloud", "cloud", "cloud", "local", "local"]
        assert {s.spilled_from for s in served if s.target.name == "cloud"} == {"local"}
        assert elapsed < 1.0  # nobody queued behind the 150 ms requests
        exchanges = []
        for s in served:
            assert (s.release is not None) is (s.target.name == "local")
            ex = Exchange("req", "chat")
            hold_capacity(ex, s, None, metrics)
            exchanges.append(ex)
        assert metrics.spills.labels("local", "cloud").value == 3
        spilled = [ex.headers().get("x-gateway-spill") for ex in exchanges]
        assert sorted(map(str, spilled)) == ["None", "None"] + ["local->cloud"] * 3
        assert board.current["local"].in_flight == 2
        for ex in exchanges:
            finish(ex, metrics)  # the answer is sent: its slot is free
        assert board.current["local"].in_flight == 0
    finally:
        await providers.aclose()


async def test_the_last_eligible_target_queues_then_refuses(
    servers: tuple[Upstream, Upstream],
) -> None:
    vllm, _ = servers
    metrics = Metrics()
    board = LoadBoard(metrics)
    local = target("local", vllm.url, max_in_flight=1, max_queue=1, max_wait_ms=400)
    providers = Providers()
    router = Router(providers, metrics, board=board)

    async def call(i: int) -> object:
        try:
            served = await router.run(
                Endpoint.CHAT, BODY, [local], request_id=f"q{i}", stream=False, spill=True
            )
        except CapacityExhausted as error:
            return error
        await asyncio.sleep(0.3)  # the answer is still being sent: the slot is held
        assert served.release is not None
        served.release()
        return served.target.name

    try:
        results = await asyncio.gather(*(call(i) for i in range(3)))
        served = [r for r in results if r == "local"]
        refused = [r for r in results if isinstance(r, CapacityExhausted)]
        # one served, one queued and then refused (its wait ran out), one refused at once
        assert len(served) == 1 and len(refused) == 2
        assert {("queue is full" in e.message) for e in refused} == {True, False}
        assert board.current["local"].in_flight == 0
    finally:
        await providers.aclose()


async def test_a_full_target_is_waited_for_when_the_spill_targets_circuit_is_open(
    servers: tuple[Upstream, Upstream],
) -> None:
    vllm, cloud = servers
    metrics = Metrics()
    board = LoadBoard(metrics)
    local = target("local", vllm.url, max_in_flight=1, max_queue=4, max_wait_ms=3000)
    cloud_target = target("cloud", cloud.url)
    providers = Providers()
    router = Router(providers, metrics, board=board)
    for _ in range(cloud_target.circuit.failures_to_open):
        router.breakers.failure(cloud_target.name, cloud_target.circuit)

    async def call(i: int) -> str:
        served = await router.run(
            Endpoint.CHAT, BODY, [local, cloud_target], request_id=f"c{i}", stream=False, spill=True
        )
        assert served.release is not None
        served.release()
        return served.target.name

    try:
        # the spill target cannot be tried: the second request queues for the
        # local slot instead of being passed over to a 429
        assert await asyncio.gather(call(0), call(1)) == ["local", "local"]
    finally:
        await providers.aclose()
