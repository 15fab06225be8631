"""The response head rides with the first body bytes (one write, not two)."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.api.http_protocol import _HeadHoldingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recording(asyncio.Transport):
    """A transport that records what is written to it, in calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))

    def writelines(self, list_of_data: Any) -> None:
        self.calls.append(("writelines", [bytes(d) for d in list_of_data]))

    def close(self) -> None:
        self.calls.append(("close", None))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


async def test_head_and_body_go_out_in_one_call() -> None:
    inner = Recording()
    held = _HeadHoldingTransport(inner, asyncio.get_running_loop())
    held.write(HEAD)
    assert inner.calls == []
    held.write(b"{}")
    assert inner.calls == [("writelines", [HEAD, b"{}"])]
    await asyncio.sleep(0)  # the safety flush finds nothing left
    assert len(inner.calls) == 1


async def test_a_head_without_a_body_goes_out_at_the_next_loop_iteration() -> None:
    inner = Recording()
    held = _HeadHoldingTransport(inner, asyncio.get_running_loop())
    held.write(HEAD)
    await asyncio.sleep(0)
    assert inner.calls == [("write", HEAD)]
    held.write(b"{}")
    assert inner.calls[-1] == ("write", b"{}")


async def test_continue_and_body_chunks_are_never_held() -> None:
    inner = Recording()
    held = _HeadHoldingTransport(inner, asyncio.get_running_loop())
    held.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    held.write(b"5\r\nhello\r\n")
    assert inner.calls == [
        ("write", b"HTTP/1.1 100 Continue\r\n\r\n"),
        ("write", b"5\r\nhello\r\n"),
    ]


async def test_close_sends_a_held_head_first_and_the_rest_is_the_transport() -> None:
    inner = Recording()
    held = _HeadHoldingTransport(inner, asyncio.get_running_loop())
    held.write(HEAD)
    held.close()
    assert inner.calls == [("write", HEAD), ("close", None)]
    assert held.get_extra_info("peername") == ("127.0.0.1", 1)
